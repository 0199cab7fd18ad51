//! Instance tasks against a local server standing in for the app's REST API:
//! the requests they send, and how answers map to task results.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_core::model::TaskType;
use vnext_core::traits::TaskInvocation;
use vnext_execution::{HttpClients, LocalExecutor};

type Seen = Arc<Mutex<Vec<Value>>>;

/// Records each request and answers like the app would.
async fn app(seen: Seen) -> std::net::SocketAddr {
    let handler = |State(seen): State<Seen>, method: Method, OriginalUri(uri): OriginalUri, headers: HeaderMap, body: String| async move {
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        seen.lock().unwrap().push(json!({
            "method": method.as_str(),
            "uri": uri.to_string(),
            "tenant": headers.get("x-tenant").and_then(|v| v.to_str().ok()),
            "body": body,
        }));
        let path = uri.path();
        if path.contains("/instances/busy-one/") {
            return (
                StatusCode::CONFLICT,
                [("content-type", "application/problem+json")],
                Json(json!({"errorCode": "instance-busy", "detail": "instance busy-one is busy"})),
            );
        }
        if path.contains("/instances/ghost") {
            return (
                StatusCode::NOT_FOUND,
                [("content-type", "application/problem+json")],
                Json(json!({"errorCode": "instance-not-found", "detail": "no instance ghost"})),
            );
        }
        let answer = if path.ends_with("/functions/data") {
            json!({"data": {"total": 12}})
        } else {
            json!({"id": "00000000-0000-0000-0000-000000000001", "status": "A", "path": path})
        };
        (StatusCode::OK, [("content-type", "application/json")], Json(answer))
    };
    common::serve(axum::Router::new().fallback(any(handler)).with_state(seen)).await
}

fn invocation(task_type: TaskType, config: Value) -> TaskInvocation {
    TaskInvocation {
        domain: "sales".into(),
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        instance_key: None,
        task_key: "t".into(),
        task_version: "1.0.0".into(),
        task_type,
        config,
        idempotency_key: None,
    }
}

#[tokio::test]
async fn each_instance_task_calls_its_endpoint() {
    let seen: Seen = Arc::default();
    let addr = app(seen.clone()).await;
    let exec = LocalExecutor::new(HttpClients::new(), &format!("http://{addr}")).unwrap();

    let r = exec
        .run(&invocation(
            TaskType::Start,
            json!({"domain": "billing", "flow": "invoice", "key": "inv-1", "sync": true, "tags": ["a"],
                   "body": {"amount": 5}, "headers": {"x-tenant": "acme"}}),
        ))
        .await;
    assert!(r.is_success, "{r:?}");
    assert_eq!(r.data["path"], "/api/v1/billing/workflows/invoice/instances/start");

    let r = exec
        .run(&invocation(
            TaskType::DirectTrigger,
            json!({"domain": "", "flow": "invoice", "instanceId": "abc", "transitionName": "pay", "body": {"ok": true}}),
        ))
        .await;
    assert!(r.is_success, "{r:?}");
    let r = exec.run(&invocation(TaskType::GetInstanceData, json!({"domain": "billing", "flow": "invoice", "key": "inv-1"}))).await;
    assert_eq!(r.data, json!({"data": {"total": 12}}));
    let r = exec.run(&invocation(TaskType::GetInstance, json!({"domain": "billing", "flow": "invoice", "key": "inv-1"}))).await;
    assert!(r.is_success);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            json!({"method": "POST", "uri": "/api/v1/billing/workflows/invoice/instances/start?sync=true", "tenant": "acme",
                   "body": {"attributes": {"amount": 5}, "key": "inv-1", "tags": ["a"]}}),
            json!({"method": "PATCH", "uri": "/api/v1/sales/workflows/invoice/instances/abc/transitions/pay", "tenant": null,
                   "body": {"attributes": {"ok": true}}}),
            json!({"method": "GET", "uri": "/api/v1/billing/workflows/invoice/instances/inv-1/functions/data", "tenant": null, "body": null}),
            json!({"method": "GET", "uri": "/api/v1/billing/workflows/invoice/instances/inv-1", "tenant": null, "body": null}),
        ]
    );
}

#[tokio::test]
async fn app_errors_become_task_errors() {
    let addr = app(Arc::default()).await;
    let exec = LocalExecutor::new(HttpClients::new(), &format!("http://{addr}")).unwrap();
    let r = exec
        .run(&invocation(TaskType::DirectTrigger, json!({"domain": "s", "flow": "f", "key": "busy-one", "transitionName": "go"})))
        .await;
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:409");
    assert!(e.retryable && e.message.contains("instance busy-one is busy"), "{e}");

    let r = exec.run(&invocation(TaskType::GetInstance, json!({"domain": "s", "flow": "f", "key": "ghost"}))).await;
    let e = r.error.unwrap();
    assert_eq!(e.code, "Task:404");
    assert!(!e.retryable && e.message.contains("instance-not-found"), "{e}");

    let dead = common::dead_port().await;
    let exec = LocalExecutor::new(HttpClients::new(), &format!("http://127.0.0.1:{dead}")).unwrap();
    let r = exec.run(&invocation(TaskType::GetInstance, json!({"domain": "s", "flow": "f", "key": "k"}))).await;
    assert_eq!(r.error.unwrap().code, "Task:connection");
}
