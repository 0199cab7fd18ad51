//! Every error path of the API that needs no published workflow: status and
//! `errorCode` of each, and the problem+json shape.

use crate::api_support;

use api_support::{TestApp, expect_problem};
use serde_json::json;

const START: &str = "/api/v1/core/workflows/onboarding/instances/start";

#[tokio::test]
async fn unknown_route_and_method() {
    let app = TestApp::spawn().await;
    expect_problem(app.get("/api/v1/nothing/here").await, 404, "route.not-found").await;
    let r = app.client.delete(app.url("/health")).send().await.unwrap();
    expect_problem(r, 405, "route.method-not-allowed").await;
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = TestApp::spawn().await;
    let body = expect_problem(app.post_raw(START, "{\"attributes\": {").await, 400, "request.invalid-json").await;
    assert!(body["detail"].as_str().unwrap().contains("line 1"), "{body}");
    expect_problem(app.post_raw(START, vec![0xff_u8, 0xfe]).await, 400, "request.invalid-json").await;
    expect_problem(app.post_raw("/api/v1/definitions/publish", "not json").await, 400, "request.invalid-json").await;
}

#[tokio::test]
async fn nul_characters_are_refused_at_the_edge() {
    let app = TestApp::spawn().await;
    let body = expect_problem(
        app.post_raw(START, r#"{"attributes":{"name":"a\u0000b"}}"#).await,
        400,
        "request.nul-character",
    )
    .await;
    assert_eq!(body["violations"][0]["pointer"], "/attributes/name");
    let path = "/api/v1/core/workflows/onboarding/instances/i1/transitions/go";
    let r = app.client.patch(app.url(path)).body(r#"{"attributes":{"k\u0000":1}}"#).send().await.unwrap();
    expect_problem(r, 400, "request.nul-character").await;
    let r = app.get("/api/v1/core/workflows/onboarding/instances?filter=key%3Deq%3Aa%00b").await;
    expect_problem(r, 400, "request.invalid-parameter").await;
}

#[tokio::test]
async fn body_over_the_limit_is_a_413() {
    let app = TestApp::spawn_with(|c| c.app.body_limit_bytes = 1024).await;
    let big = json!({ "attributes": { "blob": "x".repeat(4096) } }).to_string();
    expect_problem(app.post_raw(START, big.clone()).await, 413, "request.body-too-large").await;
    expect_problem(app.post_raw("/api/v1/definitions/publish", big).await, 413, "request.body-too-large").await;
}

#[tokio::test]
async fn wrong_body_shapes_name_the_member() {
    let app = TestApp::spawn().await;
    let body = expect_problem(app.post_json(START, &json!({ "tags": "x" })).await, 400, "request.invalid-body").await;
    assert_eq!(body["violations"][0]["pointer"], "/tags");
    let body = expect_problem(app.post_json(START, &json!({ "attributes": 5 })).await, 400, "request.invalid-body").await;
    assert_eq!(body["violations"][0]["pointer"], "/attributes");
    expect_problem(app.post_json(START, &json!([1, 2])).await, 400, "request.invalid-body").await;
}

#[tokio::test]
async fn bad_query_parameters_are_400s() {
    let app = TestApp::spawn().await;
    let r = app.post_json(&format!("{START}?sync=maybe"), &json!({})).await;
    let body = expect_problem(r, 400, "request.invalid-parameter").await;
    assert!(body["detail"].as_str().unwrap().contains("sync"), "{body}");
    let r = app.post_json(&format!("{START}?version=one.two"), &json!({})).await;
    expect_problem(r, 400, "request.invalid-parameter").await;
    let list = "/api/v1/core/workflows/onboarding/instances";
    expect_problem(app.get(&format!("{list}?page=0")).await, 400, "request.invalid-parameter").await;
    expect_problem(app.get(&format!("{list}?pageSize=101")).await, 400, "request.invalid-parameter").await;
    expect_problem(app.get(&format!("{list}?page=abc")).await, 400, "request.invalid-parameter").await;
}

#[tokio::test]
async fn bad_filters_and_sorts_name_the_culprit() {
    let app = TestApp::spawn().await;
    let list = "/api/v1/core/workflows/onboarding/instances";
    let cases = [
        (r#"{"colour":{"eq":"red"}}"#, "colour"),
        (r#"{"attributes":{"amount":{"gte":5}}}"#, "gte"),
        (r#"{"status":{"between":["A","C"]}}"#, "between"),
        ("attributes=amount=between:1", "between"),
        ("shoeSize=eq:42", "shoeSize"),
        (r#"{"status":{"eq":"Sleeping"}}"#, "Sleeping"),
        (r#"{"attributes":"#, "JSON"),
    ];
    for (filter, culprit) in cases {
        let r = app.client.get(app.url(list)).query(&[("filter", filter)]).send().await.unwrap();
        let body = expect_problem(r, 400, "request.invalid-filter").await;
        assert!(body["detail"].as_str().unwrap().contains(culprit), "{filter}: {body}");
    }
    for (sort, culprit) in [("colour", "colour"), ("key:sideways", "sideways")] {
        let r = app.client.get(app.url(list)).query(&[("sort", sort)]).send().await.unwrap();
        let body = expect_problem(r, 400, "request.invalid-sort").await;
        assert!(body["detail"].as_str().unwrap().contains(culprit), "{sort}: {body}");
    }
}

#[tokio::test]
async fn impossible_names_are_not_found() {
    let app = TestApp::spawn().await;
    expect_problem(app.get("/api/v1/Not%20A%20Domain/workflows/x/instances/i").await, 404, "domain.not-found").await;
    expect_problem(app.get("/api/v1/core/workflows/sys_flows/instances/i").await, 404, "workflow.not-found").await;
    expect_problem(app.post_json("/api/v1/BAD/workflows/x/instances/start", &json!({})).await, 404, "domain.not-found").await;
}

#[tokio::test]
async fn unknown_domain_is_a_404() {
    let app = TestApp::spawn().await;
    expect_problem(app.get("/api/v1/nowhere/workflows/x/instances/i").await, 404, "domain.not-found").await;
    expect_problem(app.get("/api/v1/nowhere/workflows/x/instances").await, 404, "domain.not-found").await;
}

#[tokio::test]
async fn internal_trigger_lives_on_its_own_listener_and_needs_the_secret() {
    let app = TestApp::spawn().await;
    // Not routed on the public listener, with or without the secret.
    let r = app.post_json("/api/v1/internal/trigger", &json!({})).await;
    expect_problem(r, 404, "route.not-found").await;
    let r = app.client.post(app.url("/api/v1/internal/trigger")).bearer_auth(&app.config.execution.shared_secret).json(&json!({})).send().await.unwrap();
    expect_problem(r, 404, "route.not-found").await;
    // The internal listener serves it, and nothing of the public API.
    let internal = format!("{}/api/v1/internal/trigger", app.internal_base);
    let r = app.client.post(&internal).json(&json!({})).send().await.unwrap();
    expect_problem(r, 401, "auth.unauthorized").await;
    let r = app.client.get(format!("{}/api/v1/shop/workflows/order/instances", app.internal_base)).send().await.unwrap();
    expect_problem(r, 404, "route.not-found").await;
    assert_eq!(app.client.get(format!("{}/health", app.internal_base)).send().await.unwrap().status(), 200);
    let r = app
        .client
        .post(&internal)
        .bearer_auth(&app.config.execution.shared_secret)
        .json(&json!({ "nonsense": true }))
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "request.invalid-body").await;
}

#[tokio::test]
async fn health_ready_metrics_and_request_ids() {
    let app = TestApp::spawn().await;
    let r = app.get("/health").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let r = app.client.get(app.url("/ready")).header("x-request-id", "trace-me-1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-me-1");
    // The trace id of a problem is the request id.
    let r = app.client.get(app.url("/nope")).header("x-request-id", "trace-me-2").send().await.unwrap();
    let body = expect_problem(r, 404, "route.not-found").await;
    assert_eq!(body["traceId"], "trace-me-2");
    let m = app.scrape().await;
    assert!(m.value("vnext_http_requests_total", &[("method", "GET"), ("route", "/health"), ("status", "200")]) >= 1.0);
    assert!(m.value("vnext_http_requests_total", &[("route", "unmatched"), ("status", "404")]) >= 1.0);
    assert!(m.value("vnext_http_request_duration_seconds", &[("route", "/health")]) >= 1.0);
    // Process metrics come with every scrape.
    assert!(m.has("process_resident_memory_bytes"));
}
