//! Diagrams served by the app: a workflow version and an instance (its current
//! state marked), as SVG and Mermaid; a bad format is a 400 problem.

use crate::api_support;

use api_support::{TestApp, expect_problem};
use serde_json::json;

#[tokio::test]
async fn workflow_and_instance_diagrams() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;

    let r = app.client.get(app.url("/api/v1/shop/workflows/order/diagram")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("image/svg+xml"));
    let svg = r.text().await.unwrap();
    for state in ["draft", "review", "done", "cancelled"] {
        assert_eq!(svg.matches(&format!("data-state=\"{state}\"")).count(), 1, "{state}: {svg}");
    }
    assert!(!svg.contains(" current\""), "no instance, nothing current: {svg}");

    let r = app.post_json("/api/v1/shop/workflows/order/instances/start?sync=true", &json!({ "key": "dia-1", "attributes": { "amount": 5 } })).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = app.client.get(app.url("/api/v1/shop/workflows/order/instances/dia-1/diagram")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let svg = r.text().await.unwrap();
    assert_eq!(svg.matches(" current\" data-state=\"draft\"").count(), 1, "{svg}");

    let r = app.client.get(app.url("/api/v1/shop/workflows/order/instances/dia-1/diagram?format=mermaid")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("flowchart TD"), "{text}");
    assert!(text.contains("\"draft\"") && text.contains("current"), "{text}");

    let r = app.client.get(app.url("/api/v1/shop/workflows/order/diagram?format=png")).send().await.unwrap();
    expect_problem(r, 400, "request.invalid-parameter").await;
}
