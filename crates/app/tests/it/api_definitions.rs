//! Publish, validate and read back components through the API.

use crate::api_support;

use api_support::fixtures;
use vnext_core::script::ScriptHost;
use vnext_core::validate;

#[test]
fn the_test_package_is_valid() {
    let files: Vec<(String, serde_json::Value)> =
        fixtures::package().into_iter().enumerate().map(|(i, v)| (format!("f{i}.json"), v)).collect();
    let diagnostics = validate::validate_package(&files, None, &ScriptHost::new());
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
}

use api_support::{TestApp, expect_problem};
use serde_json::{Value, json};

const PUBLISH: &str = "/api/v1/definitions/publish";
const VALIDATE: &str = "/api/v1/definitions/validate";

#[tokio::test]
async fn publish_created_unchanged_conflict() {
    let app = TestApp::spawn().await;
    app.provision(fixtures::DOMAIN).await;
    let schema = fixtures::start_schema();
    let r = app.publish(&schema).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        "/api/v1/shop/definitions/sys-schemas/order-start?version=1.0.0"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["flow"], "sys-schemas");

    let r = app.publish(&schema).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "unchanged");

    let mut changed = schema.clone();
    changed["attributes"]["schema"]["required"] = json!(["amount", "customer"]);
    let body = expect_problem(app.publish(&changed).await, 409, "definition.conflict").await;
    assert!(body["detail"].as_str().unwrap().contains("order-start"), "{body}");

    // A new version of the changed content is fine.
    changed["version"] = json!("1.0.1");
    assert_eq!(app.publish(&changed).await.status(), 201);
}

#[tokio::test]
async fn invalid_components_get_every_diagnostic_with_its_pointer() {
    let app = TestApp::spawn().await;
    app.provision(fixtures::DOMAIN).await;
    // The workflow references schemas and a view that are not published yet.
    let body = expect_problem(app.publish(&fixtures::workflow()).await, 422, "definition.invalid").await;
    let errors = body["violations"].as_array().unwrap();
    let pointers: Vec<&str> = errors.iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/attributes/startTransition/schema"), "{body}");
    assert!(errors.iter().all(|e| e["code"].is_string() && e["message"].is_string()), "{body}");

    let mut broken = fixtures::start_schema();
    broken["version"] = json!("one");
    broken["key"] = json!("Not Valid");
    let body = expect_problem(app.publish(&broken).await, 422, "definition.invalid").await;
    let pointers: Vec<&str> = body["violations"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/version") && pointers.contains(&"/key"), "{body}");

    let mut csharp = fixtures::workflow();
    csharp["attributes"]["startTransition"]["mapping"] =
        json!({ "location": "./src/Map.csx", "code": "public class M : IMapping { }", "encoding": "NAT" });
    let body = expect_problem(app.publish(&csharp).await, 422, "definition.invalid").await;
    assert!(
        body["violations"].as_array().unwrap().iter().any(|e| e["pointer"] == "/attributes/startTransition/mapping"
            || e["pointer"].as_str().unwrap().starts_with("/attributes/startTransition/mapping")),
        "{body}"
    );

    expect_problem(app.post_json(PUBLISH, &json!([1])).await, 400, "request.invalid-body").await;
    expect_problem(app.post_raw(PUBLISH, "").await, 400, "request.invalid-body").await;
    expect_problem(app.post_raw(PUBLISH, r#"{"key":"x\u0000"}"#).await, 400, "request.nul-character").await;
}

#[tokio::test]
async fn validate_reports_without_writing() {
    let app = TestApp::spawn().await;
    app.provision(fixtures::DOMAIN).await;
    let r = app.post_json(VALIDATE, &fixtures::start_schema()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "valid": true, "diagnostics": [], "warnings": [] }));

    let v: Value = app.post_json(VALIDATE, &fixtures::workflow()).await.json().await.unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["diagnostics"].as_array().unwrap().iter().any(|d| d["pointer"] == "/attributes/startTransition/schema"), "{v}");

    // Nothing was stored.
    let r = app.get("/api/v1/shop/definitions/sys-schemas/order-start").await;
    expect_problem(r, 404, "definition.not-found").await;
    expect_problem(app.post_raw(VALIDATE, "{").await, 400, "request.invalid-json").await;
}

#[tokio::test]
async fn read_back_is_byte_exact() {
    let app = TestApp::spawn().await;
    app.provision(fixtures::DOMAIN).await;
    // Odd formatting and key order must survive.
    let text = "{\n  \"version\": \"1.0.0\",   \"key\": \"order-view\",\n\t\"domain\": \"shop\", \"flow\": \"sys-views\",\n  \"flowVersion\": \"1.0.0\", \"tags\": [\"test\"],\n  \"attributes\": {\"type\": 1, \"content\": {\"z\": 1, \"a\": [3, 2, 1], \"text\": \"caf\\u00e9 \\\"q\\\"\"}}\n}\n";
    let r = app.post_raw(PUBLISH, text).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    for path in [
        "/api/v1/shop/definitions/sys-views/order-view",
        "/api/v1/shop/definitions/sys-views/order-view?version=1.0.0",
        "/api/v1/shop/definitions/sys-views/order-view?version=1",
        "/api/v1/shop/definitions/sys-views/order-view?version=latest",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["x-component-version"], "1.0.0");
        assert_eq!(r.text().await.unwrap(), text, "{path}");
    }
    expect_problem(app.get("/api/v1/shop/definitions/sys-views/order-view?version=2").await, 404, "definition.not-found").await;
    expect_problem(app.get("/api/v1/shop/definitions/sys-views/nothing").await, 404, "definition.not-found").await;
    expect_problem(app.get("/api/v1/shop/definitions/sys-things/order-view").await, 404, "definition.not-found").await;
    expect_problem(app.get("/api/v1/shop/definitions/sys-views/order-view?version=x.y").await, 400, "request.invalid-parameter").await;
    expect_problem(app.get("/api/v1/elsewhere/definitions/sys-views/order-view").await, 404, "domain.not-found").await;
}

#[tokio::test]
async fn publishing_into_a_new_domain_provisions_it() {
    let app = TestApp::spawn().await;
    let mut schema = fixtures::start_schema();
    schema["domain"] = json!("fresh");
    let r = app.publish(&schema).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = app.get("/api/v1/fresh/definitions/sys-schemas/order-start").await;
    assert_eq!(r.status(), 200);
}
