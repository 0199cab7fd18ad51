//! Secrets stay out of what is stored: an HTTP task sent with an
//! `Authorization` header, a configured secret header and `?api_key=`, a
//! target answering with `set-cookie`, a client transition carrying its own
//! credentials, and a failing call that leaves an incident. Afterwards no
//! secret appears anywhere in the domain database's history, task runs or
//! incidents, nor in what `…/transitions` answers; the target still received
//! every credential, and the output mapping still saw the response headers.

use crate::api_support;
use crate::e2e_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::InProcess;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use e2e_support::*;
use serde_json::{Value, json};
use sqlx::Row;

const D: &str = "redact";
const SECRETS: [&str; 8] = [
    "s3cret-bearer-1", "s3cret-apikey-2", "s3cret-sig-3", "s3cret-tenant-4", "s3cret-cookie-5", "s3cret-client-6",
    "s3cret-failing-7", "s3cret-clientquery-8",
];

fn components() -> Vec<Value> {
    let mapping = |name: &str| {
        script(
            &format!("./src/{name}.rhai"),
            r#"
fn input(ctx) {
    #{ url: ctx.instance.data.base + "?api_key=s3cret-apikey-2&sig=s3cret-sig-3&page=1",
       headers: #{ "Authorization": "Bearer s3cret-bearer-1", "X-Tenant-Secret": "s3cret-tenant-4" } }
}
fn output(ctx) {
    #{ called: #{ status: ctx.response.status_code, cookieSeen: "set-cookie" in ctx.response.headers } }
}
"#,
        )
    };
    let failing = script(
        "./src/failing.rhai",
        r#"fn input(ctx) { #{ url: ctx.instance.data.refused + "/x?api_key=s3cret-failing-7" } }"#,
    );
    let mut calling = state("calling", 2, json!([manual("fail", "failing")]));
    calling["onEntries"] = json!([{ "order": 1, "task": reference(D, "sys-tasks", "call"), "mapping": mapping("call") }]);
    let mut failing_state = state("failing", 2, json!([automatic_default("failed-done", "done")]));
    failing_state["onEntries"] = json!([{ "order": 1, "task": reference(D, "sys-tasks", "fail-call"), "mapping": failing }]);
    let states = json!([state("idle", 1, json!([manual("call", "calling")])), calling, failing_state, final_state("done")]);
    vec![
        http_task(D, "call", json!({ "url": "http://placeholder.invalid/", "method": "GET", "timeoutSeconds": 5 })),
        http_task(D, "fail-call", json!({ "url": "http://placeholder.invalid/", "method": "GET", "timeoutSeconds": 5 })),
        workflow(D, "secretive", "idle", states, json!({})),
    ]
}

/// A target that records the credentials it received and sets a cookie.
async fn target() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(move |headers: HeaderMap, uri: axum::http::Uri| {
            let record = record.clone();
            async move {
                let mut got = record.lock().unwrap();
                for name in ["authorization", "x-tenant-secret"] {
                    got.push(headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string());
                }
                got.push(uri.query().unwrap_or_default().to_string());
                ([("set-cookie", "session=s3cret-cookie-5; HttpOnly")], axum::Json(json!({ "ok": true }))).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/echo"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_stored_row() {
    let rt = InProcess::start_with(|c| {
        c.redaction.headers = vec!["X-Tenant-Secret".into()];
        c.redaction.query_params = vec!["sig".into()];
    })
    .await;
    publish(&rt.client, &rt.base, &components()).await;
    let (base, seen) = target().await;
    let api = instances_url(&rt.base, D, "secretive");
    let (status, body) = send(rt.client.post(format!("{api}/start?sync=true")).json(&json!({
        "attributes": { "base": base, "refused": refused_url() }
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    let instance = format!("{api}/{}", body["id"].as_str().unwrap());

    // The client's own credentials travel with a transition.
    let (status, body) = send(
        rt.client
            .patch(format!("{instance}/transitions/call?sync=true&access_token=s3cret-clientquery-8"))
            .header("authorization", "Bearer s3cret-client-6")
            .header("cookie", "sid=s3cret-client-6")
            .json(&json!({ "attributes": {} })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attributes"]["called"], json!({ "status": 200, "cookieSeen": true }), "{body}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer s3cret-bearer-1", "s3cret-tenant-4", "api_key=s3cret-apikey-2&sig=s3cret-sig-3&page=1"],
        "the target gets the real values"
    );

    // A failing call with a secret in its query string faults the instance.
    let (status, body) = send(rt.client.patch(format!("{instance}/transitions/fail?sync=true")).json(&json!({ "attributes": {} }))).await;
    assert!(status == 200 || status >= 400, "{status} {body}");
    wait_at(&rt.client, &instance, "calling", "F", Duration::from_secs(20)).await;

    let mut db = domain_db(rt.prefix(), D).await;
    let schemas: Vec<String> = sqlx::query_scalar("SELECT table_schema FROM information_schema.tables WHERE table_name = 'task_runs'")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(!schemas.is_empty());
    let mut stored = String::new();
    for schema in &schemas {
        for table in ["task_runs", "transitions", "incidents"] {
            let sql = format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') AS rows FROM \"{schema}\".{table} t");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut db).await.unwrap();
            stored.push_str(&row.get::<String, _>("rows"));
        }
    }
    // What was stored is there, masked.
    for expected in ["api_key=***", "sig=***", "page=1", "\"\"Authorization\"\": \"\"***\"\"", "set-cookie", "Task:connection"] {
        assert!(stored.contains(expected), "`{expected}` missing from the stored rows:\n{stored}");
    }
    let (_, history) = send(rt.client.get(format!("{instance}/transitions"))).await;
    let (_, incidents) = send(rt.client.get(format!("{instance}/incidents"))).await;
    assert!(!incidents["data"].as_array().unwrap().is_empty(), "{incidents}");
    let answered = format!("{history}{incidents}");
    for secret in SECRETS {
        assert!(!stored.contains(secret), "`{secret}` is stored:\n{stored}");
        assert!(!answered.contains(secret), "`{secret}` is answered:\n{answered}");
    }
}
