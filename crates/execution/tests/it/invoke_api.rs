//! The invoke endpoint and the remote executor, over real sockets.

use crate::common;

use std::sync::Arc;

use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskExecutor, TaskInvocation};
use vnext_execution::api::{ApiState, router};
use vnext_execution::tasks::egress::EgressGuard;
use vnext_execution::{HttpClients, LocalExecutor, RemoteExecutor};

const SECRET: &str = "test-shared-secret";

async fn execution_service() -> std::net::SocketAddr {
    let local = LocalExecutor::new(HttpClients::new(), "http://127.0.0.1:9").unwrap().with_egress(EgressGuard::allowing_loopback());
    common::serve(router(ApiState::new(Arc::new(local), SECRET))).await
}

fn invocation(task_type: TaskType, key: &str, config: Value) -> TaskInvocation {
    TaskInvocation {
        domain: "sales".into(),
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        instance_key: Some("o-1".into()),
        task_key: key.into(),
        task_version: "1.0.0".into(),
        task_type,
        config,
        idempotency_key: None,
    }
}

#[tokio::test]
async fn remote_executor_round_trip() {
    let target = common::serve(axum::Router::new().route("/ping", get(|| async { Json(json!({"pong": true})) }))).await;
    let exec = execution_service().await;
    let remote = RemoteExecutor::new(&HttpClients::new(), &format!("http://{exec}"), SECRET).unwrap();

    let ok = remote
        .execute(invocation(TaskType::Http, "ping", json!({"url": format!("http://{target}/ping"), "method": "GET"})))
        .await;
    assert!(ok.is_success, "{ok:?}");
    assert_eq!(ok.status_code, Some(200));
    assert_eq!(ok.data, json!({"pong": true}));

    // A task failure travels back as a response, with its code and retryability.
    let dead = common::dead_port().await;
    let failed = remote
        .execute(invocation(TaskType::Http, "ping", json!({"url": format!("http://127.0.0.1:{dead}/"), "method": "GET"})))
        .await;
    let e = failed.error.unwrap();
    assert_eq!((e.code.as_str(), e.retryable), ("Task:connection", true));
}

#[tokio::test]
async fn wrong_or_missing_secret_is_401() {
    let exec = execution_service().await;
    let client = reqwest::Client::new();
    let url = format!("http://{exec}/api/v1/execution/invoke/http/ping");
    let body = invocation(TaskType::Http, "ping", json!({"url": "http://127.0.0.1:9/", "method": "GET"}));
    let r = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = client.post(&url).bearer_auth("not-the-secret").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errorCode"], "unauthorized");

    // Through the remote executor, a rejected secret is a non-retryable task error.
    let remote = RemoteExecutor::new(&HttpClients::new(), &format!("http://{exec}"), "not-the-secret").unwrap();
    let r = remote.execute(body).await;
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:execution");
    assert!(!e.retryable && e.message.contains("401"), "{e}");
}

#[tokio::test]
async fn bad_bodies_are_400_problems() {
    let exec = execution_service().await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: String| {
        client
            .post(format!("http://{exec}/api/v1/execution/invoke/{path}"))
            .bearer_auth(SECRET)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        ("http/ping", "{not json".to_string(), "invalid-invocation"),
        ("http/ping", json!({"taskKey": "ping"}).to_string(), "invalid-invocation"),
        ("teleport/ping", serde_json::to_string(&invocation(TaskType::Http, "ping", json!({}))).unwrap(), "unknown-task-type"),
        ("start/ping", serde_json::to_string(&invocation(TaskType::Http, "ping", json!({}))).unwrap(), "task-type-mismatch"),
        ("http/other", serde_json::to_string(&invocation(TaskType::Http, "ping", json!({}))).unwrap(), "task-key-mismatch"),
    ];
    for (path, body, code) in cases {
        let r = post(path, body).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["errorCode"], code, "{path}: {problem}");
    }
    // The type may also be given by its code.
    let r = post("6/ping", serde_json::to_string(&invocation(TaskType::Http, "ping", json!({"method": "GET"}))).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "Task:config");
}

#[tokio::test]
async fn health_and_ready() {
    let exec = execution_service().await;
    let r = reqwest::get(format!("http://{exec}/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("http://{exec}/ready")).await.unwrap();
    assert_eq!(r.status(), 200);

    let local = LocalExecutor::new(HttpClients::new(), "http://127.0.0.1:9").unwrap();
    let state = ApiState::new(Arc::new(local), SECRET)
        .with_readiness(Arc::new(|| Box::pin(async { Err("control database unreachable".to_string()) })));
    let addr = common::serve(router(state)).await;
    let r = reqwest::get(format!("http://{addr}/ready")).await.unwrap();
    assert_eq!(r.status(), 503);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["detail"], "control database unreachable");
}
