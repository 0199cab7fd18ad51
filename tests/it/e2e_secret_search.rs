//! No secret of a real run is stored or logged anywhere.
//!
//! `vnext init`, `vnext app` and `vnext execution` run as separate processes
//! with debug logging and a random shared secret (app and execution present
//! it to each other on every task invocation and every fired job). A client
//! uses an API key; its async transitions (kept as jobs until the execution
//! service fires them) carry the credentials of a target in a header
//! (`x-target-token`, configured as secret) and in `?api_key=`; the HTTP
//! task's mapping sends them on as a bearer token and `?api_key=`; a second
//! instance faults on a call with the same credentials (an incident). Then
//! every row of every table of the control and the domain database, and every
//! log line of every process, is searched for each secret: none is found,
//! while the target did receive them.

use crate::e2e_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use e2e_support::*;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, Row};

const D: &str = "vault";
const BEARER: &str = "s3cret-target-bearer-5f1c";
const QUERY_KEY: &str = "s3cret-target-query-9a2e";

fn components(target: &str, refused: &str) -> Vec<Value> {
    let call = |name: &str, base: &str| {
        script(
            &format!("./src/{name}.rhai"),
            &format!(
                r#"fn input(ctx) {{ #{{ url: "{base}/echo?api_key=" + ctx.query.api_key + "&page=1", headers: #{{ "Authorization": "Bearer " + ctx.headers["x-target-token"] }} }} }}
fn output(ctx) {{ #{{ echoed: ctx.response.status_code }} }}"#
            ),
        )
    };
    let mut calling = state("calling", 2, json!([automatic_default("called", "done")]));
    calling["onEntries"] = json!([{ "order": 1, "task": reference(D, "sys-tasks", "echo"), "mapping": call("echo", target) }]);
    let mut failing = state("failing", 2, json!([automatic_default("failed", "done")]));
    failing["onEntries"] = json!([{ "order": 1, "task": reference(D, "sys-tasks", "down"), "mapping": call("down", refused) }]);
    let states = json!([state("idle", 1, json!([manual("call", "calling"), manual("fail", "failing")])), calling, failing, final_state("done")]);
    vec![
        http_task(D, "echo", json!({ "url": "http://placeholder.invalid/", "method": "GET", "timeoutSeconds": 5 })),
        http_task(D, "down", json!({ "url": "http://placeholder.invalid/", "method": "GET", "timeoutSeconds": 5 })),
        workflow(D, "secretive", "idle", states, json!({})),
    ]
}

/// A target recording the credentials it received.
async fn target() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(move |headers: HeaderMap, uri: axum::http::Uri| {
            let record = record.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                record.lock().unwrap().push(format!("{auth} {}", uri.query().unwrap_or_default()));
                axum::Json(json!({ "ok": true }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// Every row of every table of `database`, as text, one row a line.
async fn every_row(url: &str) -> (String, usize) {
    let mut db = PgConnection::connect(url).await.expect("database");
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
          WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut text = String::new();
    for (schema, table) in &tables {
        let sql = format!("SELECT coalesce(string_agg(t::text, E'\\n'), '') AS rows FROM \"{schema}\".\"{table}\" t");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut db).await.unwrap();
        text.push_str(&format!("-- {schema}.{table}\n{}\n", row.get::<String, _>("rows")));
    }
    (text, tables.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_a_run_is_in_any_stored_row_or_log_line() {
    let shared_secret = format!("shared-{}", uuid::Uuid::new_v4().simple());
    let (target, seen) = target().await;
    let refused = refused_url();
    let env = [
        ("VNEXT_EXECUTION__SHARED_SECRET", shared_secret.as_str()),
        ("VNEXT_REDACTION__HEADERS", "x-target-token"),
        ("RUST_LOG", "debug,hyper=info,hyper_util=info,h2=info,rustls=info,sqlx=debug"),
    ];
    let mut s = Services::start(&components(&target, &refused), &env).await;
    s.spawn_execution(true);
    let client = reqwest::Client::new();

    // An admin key; from now on every request needs it.
    let out = s.prefix.command(&["keys", "create", "--name", "client", "--scope", "admin"]).output().expect("vnext keys create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let api_key = String::from_utf8_lossy(&out.stdout).lines().find(|l| l.starts_with("vnk_")).expect("the key's secret").trim().to_string();
    let api = instances_url(&s.app_url, D, "secretive");
    let (status, _) = send(client.get(&api)).await;
    assert_eq!(status, 401, "keys are enforced");

    // Async requests: the transition waits as a job, which the execution
    // service fires through the app's internal endpoint.
    let mut instances = Vec::new();
    for (key, transition) in [("s-1", "call"), ("s-2", "fail")] {
        let (status, body) = send(client.post(format!("{api}/start?sync=true")).bearer_auth(&api_key).json(&json!({ "key": key }))).await;
        assert_eq!(status, 200, "{body}");
        let url = format!("{api}/{key}");
        let request = client
            .patch(format!("{url}/transitions/{transition}?sync=false&api_key={QUERY_KEY}"))
            .bearer_auth(&api_key)
            .header("x-target-token", BEARER)
            .json(&json!({ "attributes": { "note": "async" } }));
        let (status, body) = send(request).await;
        assert_eq!(status, 202, "{body}");
        instances.push(url);
    }
    let authed = reqwest::Client::builder()
        .default_headers([(reqwest::header::AUTHORIZATION, format!("Bearer {api_key}").parse().unwrap())].into_iter().collect())
        .build()
        .unwrap();
    let done = wait_at(&authed, &instances[0], "done", "C", Duration::from_secs(30)).await;
    assert_eq!(done["attributes"]["echoed"], 200, "{done}");
    // The async run faults where it started.
    wait_at(&authed, &instances[1], "idle", "F", Duration::from_secs(30)).await;
    assert_eq!(*seen.lock().unwrap(), [format!("Bearer {BEARER} api_key={QUERY_KEY}&page=1")], "the target got the real credentials");
    let (_, incidents) = send(authed.get(format!("{}/incidents", instances[1]))).await;
    assert!(!incidents["data"].as_array().unwrap().is_empty(), "{incidents}");

    // Every stored row, both databases.
    let control = format!("postgres://postgres@127.0.0.1:5432/{}control", s.prefix.0);
    let domain = format!("postgres://postgres@127.0.0.1:5432/{}{D}", s.prefix.0);
    let (control_rows, control_tables) = every_row(&control).await;
    let (domain_rows, domain_tables) = every_row(&domain).await;
    assert!(control_tables >= 4 && domain_tables >= 10, "{control_tables} control tables, {domain_tables} domain tables");
    for present in ["vnext_control.api_keys", "sys_queues.jobs", "task_runs", "incidents", "transitions", "api_key=***"] {
        assert!(format!("{control_rows}{domain_rows}").contains(present), "`{present}` is expected in the stored rows");
    }

    let logs = s.full_logs();
    assert!(logs.lines().count() > 20, "debug logs were captured:\n{logs}");
    let key_hex = api_key.trim_start_matches("vnk_");
    for (what, secret) in [
        ("the API key", key_hex),
        ("the bearer sent to the target", BEARER),
        ("the target's api_key", QUERY_KEY),
        ("the shared secret", shared_secret.as_str()),
    ] {
        for (place, text) in [("the control database", &control_rows), ("the domain database", &domain_rows), ("the logs", &logs)] {
            let line = text.lines().find(|l| l.contains(secret));
            assert!(line.is_none(), "{what} is in {place}: {}", line.unwrap_or_default());
        }
    }
    // The async runs had the credentials: their jobs kept them sealed.
    let jobs = domain_rows.split("-- sys_queues.jobs").nth(1).unwrap_or_default();
    assert!(jobs.contains("\"\"sealed\"\": \"\"v1."), "async jobs keep their request sealed:\n{jobs}");
}
