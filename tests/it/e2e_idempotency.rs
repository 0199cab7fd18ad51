//! HTTP tasks carry an `Idempotency-Key`: the same on every attempt of one
//! call (here: two failures retried by the error boundary, then success), a
//! new one for the next call of the same task.

use crate::api_support;
use crate::e2e_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::InProcess;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use e2e_support::*;
use serde_json::{Value, json};

const D: &str = "idem";

fn components() -> Vec<Value> {
    let mapping = script(
        "./src/call.rhai",
        r#"
fn input(ctx) { #{ url: ctx.instance.data.target } }
fn output(ctx) { #{ answered: ctx.response.data.n } }
"#,
    );
    let boundary = json!({ "onError": [{
        "action": 1,
        "retryPolicy": { "initialDelay": "PT0.2S", "maxRetries": 3, "backoffType": 0, "useJitter": false }
    }] });
    let mut calling = state("calling", 2, json!([automatic_default("back", "idle")]));
    calling["onEntries"] = json!([{ "order": 1, "task": reference(D, "sys-tasks", "call"), "mapping": mapping, "errorBoundary": boundary }]);
    vec![
        http_task(D, "call", json!({ "url": "http://placeholder.invalid/", "method": "POST", "body": {}, "timeoutSeconds": 5 })),
        workflow(D, "keyed", "idle", json!([state("idle", 1, json!([manual("call", "calling")])), calling]), json!({})),
    ]
}

/// Answers 500 to the first two calls, then 200 with the call's number;
/// records each call's `Idempotency-Key`.
async fn target() -> (String, Arc<Mutex<Vec<String>>>) {
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = keys.clone();
    let app = axum::Router::new().route(
        "/pay",
        axum::routing::post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let mut keys = record.lock().unwrap();
                keys.push(headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("<none>").to_string());
                let n = keys.len();
                if n <= 2 {
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    axum::Json(json!({ "n": n })).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/pay"), keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_of_one_call_share_a_key_and_the_next_call_gets_another() {
    let rt = InProcess::start_with(|c| c.execution.idle_poll_seconds = 1).await;
    publish(&rt.client, &rt.base, &components()).await;
    let (url, keys) = target().await;
    let api = instances_url(&rt.base, D, "keyed");
    let (status, body) = send(rt.client.post(format!("{api}/start?sync=true")).json(&json!({ "attributes": { "target": url } }))).await;
    assert_eq!(status, 200, "{body}");
    let instance = format!("{api}/{}", body["id"].as_str().unwrap());
    let call = || send(rt.client.patch(format!("{instance}/transitions/call?sync=true")).json(&json!({ "attributes": {} })));

    let (status, body) = call().await;
    assert_eq!(status, 200, "{body}");
    let done = poll(&rt.client, &instance, Duration::from_secs(20), "the retried call succeeds", |v| {
        v["attributes"]["answered"] == 3 && at(v) == ("idle", "A")
    })
    .await;
    assert_eq!(done["attributes"]["answered"], 3, "{done}");
    let first: Vec<String> = keys.lock().unwrap().clone();
    assert_eq!(first.len(), 3, "two failures, one success: {first:?}");
    assert_eq!(first[0].len(), 32, "{first:?}");
    assert!(first.iter().all(|k| *k == first[0]), "one key for every attempt: {first:?}");

    // The next call of the same task from the same state is another call.
    let (status, body) = call().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attributes"]["answered"], 4, "{body}");
    let all = keys.lock().unwrap().clone();
    assert_eq!(all.len(), 4);
    assert_ne!(all[3], first[0], "a new call, a new key");
}
