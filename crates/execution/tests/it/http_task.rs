//! The HTTP task against a real local server.

use crate::common;

use std::time::Duration;

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskInvocation, TaskResponse};
use vnext_execution::tasks::egress::EgressGuard;
use vnext_execution::{HttpClients, LocalExecutor};

async fn target() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<String>| async move {
                ([("x-served-by", "test")], Json(json!({"id": id, "name": "Ada"})))
            }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "no such thing"}))) }),
        )
        .route("/fail", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database on fire") }))
        .route("/bad", post(|| async { (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"field": "amount"}))) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .route(
            "/echo",
            any(|method: Method, headers: HeaderMap, body: String| async move {
                Json(json!({
                    "method": method.as_str(),
                    "contentType": headers.get("content-type").and_then(|v| v.to_str().ok()),
                    "custom": headers.get("x-custom").and_then(|v| v.to_str().ok()),
                    "body": body,
                }))
            }),
        );
    common::serve(app).await
}

fn executor() -> LocalExecutor {
    LocalExecutor::new(HttpClients::new(), "http://127.0.0.1:9").unwrap().with_egress(EgressGuard::allowing_loopback())
}

async fn run(config: Value) -> TaskResponse {
    let invocation = TaskInvocation {
        domain: "sales".into(),
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        instance_key: None,
        task_key: "call".into(),
        task_version: "1.0.0".into(),
        task_type: TaskType::Http,
        config,
        idempotency_key: None,
    };
    executor().run(&invocation).await
}

#[tokio::test]
async fn success_with_json_response_and_placeholders() {
    let addr = target().await;
    let r = run(json!({
        "url": format!("http://{addr}/users/{{userId}}"),
        "method": "GET",
        "userId": "u 42",
    }))
    .await;
    assert!(r.is_success, "{r:?}");
    assert_eq!(r.status_code, Some(200));
    assert_eq!(r.data, json!({"id": "u 42", "name": "Ada"}));
    assert_eq!(r.headers.get("x-served-by"), Some(&json!("test")));
    assert!(r.error.is_none());
    assert!(r.duration_ms > 0.0);
}

#[tokio::test]
async fn json_and_text_bodies_and_headers_are_sent() {
    let addr = target().await;
    let r = run(json!({
        "url": format!("http://{addr}/echo"),
        "method": "post",
        "headers": {"X-Custom": 7},
        "body": {"amount": 10},
    }))
    .await;
    assert!(r.is_success, "{r:?}");
    assert_eq!(r.data, json!({"method": "POST", "contentType": "application/json", "custom": "7", "body": "{\"amount\":10}"}));

    let r = run(json!({"url": format!("http://{addr}/echo"), "method": "PUT", "body": "plain words"})).await;
    assert_eq!(r.data["contentType"], json!("text/plain; charset=utf-8"));
    assert_eq!(r.data["body"], json!("plain words"));
}

#[tokio::test]
async fn accepted_404_is_a_success() {
    let addr = target().await;
    for pattern in ["404", "4xx", "40x"] {
        let r = run(json!({
            "url": format!("http://{addr}/missing"),
            "method": "GET",
            "acceptedStatusCodes": [pattern],
        }))
        .await;
        assert!(r.is_success, "{pattern}: {r:?}");
        assert_eq!(r.status_code, Some(404));
        assert_eq!(r.data, json!({"error": "no such thing"}));
    }
    let r = run(json!({"url": format!("http://{addr}/missing"), "method": "GET"})).await;
    assert!(!r.is_success);
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:404");
    assert!(!e.retryable);
}

#[tokio::test]
async fn server_error_is_retryable_task_500() {
    let addr = target().await;
    let r = run(json!({"url": format!("http://{addr}/fail"), "method": "POST"})).await;
    assert!(!r.is_success);
    assert_eq!(r.status_code, Some(500));
    assert_eq!(r.data, json!("database on fire"));
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:500");
    assert!(e.retryable);
    assert!(e.message.contains(&format!("POST http://{addr}/fail")), "{}", e.message);
    assert!(e.message.contains("500"), "{}", e.message);

    let r = run(json!({"url": format!("http://{addr}/bad"), "method": "POST"})).await;
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:422");
    assert!(!e.retryable);
}

#[tokio::test]
async fn timeout_is_reported_as_task_timeout() {
    let addr = target().await;
    let started = std::time::Instant::now();
    let r = run(json!({"url": format!("http://{addr}/slow"), "method": "GET", "timeoutSeconds": 1})).await;
    let elapsed = started.elapsed();
    assert!(!r.is_success);
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:timeout", "{e}");
    assert!(e.retryable);
    assert!(e.message.contains("/slow") && e.message.contains("1 s"), "{}", e.message);
    assert!(elapsed < Duration::from_secs(10), "the timeout did not cut the call short: {elapsed:?}");
}

#[tokio::test]
async fn connection_refused_is_task_connection() {
    let port = common::dead_port().await;
    let r = run(json!({"url": format!("http://127.0.0.1:{port}/x"), "method": "GET"})).await;
    assert!(!r.is_success);
    assert_eq!(r.status_code, None);
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:connection", "{e}");
    assert!(e.retryable);
    assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{}", e.message);
}

#[tokio::test]
async fn bad_config_is_not_retryable() {
    let r = run(json!({"url": "http://127.0.0.1/{missing}", "method": "GET"})).await;
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:config");
    assert!(!e.retryable);
    assert!(e.message.contains("missing"), "{}", e.message);
}
