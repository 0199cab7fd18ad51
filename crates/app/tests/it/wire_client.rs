//! A vNext client's view: the sample document approval driven only through
//! the engine's shapes. The client reads `status` at the top level of command
//! answers, follows the state function's links (the schema of a transition by
//! `transitionKey`), pages through `links.next` and reads the history by
//! `fromState`/`toState`.

use crate::api_support;

use std::collections::BTreeSet;
use std::path::Path;

use api_support::TestApp;
use serde_json::{Value, json};

const BASE: &str = "/api/v1/demo/workflows/document-approval/instances";

async fn call(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

/// Runs a transition the state function offers, through its `href`, sync.
async fn run(app: &TestApp, state: &Value, name: &str, attributes: Value) -> Value {
    let offered = state["transitions"].as_array().unwrap().iter().find(|t| t["name"] == name);
    let href = offered.unwrap_or_else(|| panic!("`{name}` is not offered: {state}"))["href"].as_str().unwrap();
    let (status, answer) = call(app, reqwest::Method::PATCH, &format!("{href}?sync=true"), Some(json!({ "attributes": attributes }))).await;
    assert_eq!(status, 200, "{name}: {answer}");
    answer
}

async fn state_of(app: &TestApp, id: &str) -> Value {
    let (status, state) = call(app, reqwest::Method::GET, &format!("{BASE}/{id}/functions/state"), None).await;
    assert_eq!(status, 200, "{state}");
    state
}

#[tokio::test]
async fn a_client_drives_the_document_approval_through_the_engine_shapes() {
    let app = TestApp::spawn().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/demo");
    vnext_init::package::publish_folder(&app.init, &dir, |_| {}).await.expect("publish flows/demo");

    // A few documents to page through later.
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = json!({ "attributes": { "title": format!("Doc {n}"), "documentType": "memo", "author": "dora" } });
        let (status, started) = call(&app, reqwest::Method::POST, &format!("{BASE}/start?sync=true"), Some(body)).await;
        assert_eq!(status, 200, "{started}");
        assert_eq!(started["status"], "A", "the client reads status at the top level: {started}");
        ids.push(started["id"].as_str().unwrap().to_string());
    }
    let id = ids[0].clone();

    // Submit, then ask the approval's schema through the state function's link.
    let state = state_of(&app, &id).await;
    assert_eq!(state["state"], "draft");
    let moved = run(&app, &state, "submit-for-review", json!({})).await;
    assert_eq!(moved["status"], "A");
    let state = state_of(&app, &id).await;
    assert_eq!(state["state"], "in-review");
    let approve = state["transitions"].as_array().unwrap().iter().find(|t| t["name"] == "approve").unwrap();
    assert_eq!(approve["schema"]["hasSchema"], true);
    let schema_href = approve["schema"]["href"].as_str().unwrap();
    assert!(schema_href.ends_with("functions/schema?transitionKey=approve"), "{schema_href}");
    let (status, schema) = call(&app, reqwest::Method::GET, schema_href, None).await;
    assert_eq!(status, 200, "{schema}");
    assert!(schema["schema"]["properties"]["reviewer"].is_object(), "the approval asks for a reviewer: {schema}");

    // A memo needs one approval; publishing completes the document.
    let approved = run(&app, &state, "approve", json!({ "reviewer": "alice" })).await;
    assert_eq!(approved["metadata"]["currentState"], "approved", "{approved}");
    let state = state_of(&app, &id).await;
    let published = run(&app, &state, "publish", json!({ "channel": "portal" })).await;
    assert_eq!(published["status"], "C", "{published}");
    assert_eq!(published["effectiveStatus"], "C");

    // The history read by fromState/toState walks the whole path.
    let (_, history) = call(&app, reqwest::Method::GET, &format!("{BASE}/{id}/transitions"), None).await;
    let path: Vec<(String, String)> = history["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["fromState"].as_str().unwrap().to_string(), t["toState"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(path.first().map(|p| p.1.as_str()), Some("draft"), "{history}");
    assert!(path.contains(&("draft".into(), "in-review".into())), "{path:?}");
    assert!(path.contains(&("approval-check".into(), "approved".into())), "{path:?}");
    assert_eq!(path.last().unwrap(), &("approved".to_string(), "published".to_string()));
    let triggers: Vec<(&str, &str)> = history["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["transitionId"].as_str().unwrap(), t["triggerType"].as_str().unwrap()))
        .collect();
    assert!(triggers.contains(&("fully-approved", "automatic")) && triggers.contains(&("approve", "manual")), "{triggers:?}");

    // Paging through links.next, two at a time, sees every document once.
    let mut seen = BTreeSet::new();
    let mut next = format!("{BASE}?pageSize=2");
    let mut pages = 0;
    while !next.is_empty() {
        let (status, page) = call(&app, reqwest::Method::GET, &next, None).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["id"].as_str().unwrap().to_string()), "seen twice: {item}");
        }
        next = page["links"]["next"].as_str().unwrap().to_string();
        pages += 1;
        assert!(pages <= 5, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids.iter().cloned().collect::<BTreeSet<_>>());

    // The completed document, filtered the engine's way.
    let filter = r#"{"and":[{"status":{"eq":"C"}},{"currentState":{"eq":"published"}}]}"#;
    let r = app.client.get(app.url(BASE)).query(&[("filter", filter)]).send().await.unwrap();
    let page: Value = r.json().await.unwrap();
    let found: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(found, [id.as_str()]);
}
