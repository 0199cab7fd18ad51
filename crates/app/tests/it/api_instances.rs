//! Start, transition and retry through the API with the real pipeline: the
//! answers, and every error path with its status and `errorCode`.

use crate::api_support;

use std::time::{Duration, Instant};

use api_support::{TestApp, expect_problem, fixtures};
use serde_json::{Value, json};

const BASE: &str = "/api/v1/shop/workflows/order/instances";

async fn ready() -> TestApp {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    app
}

async fn start_sync(app: &TestApp, body: Value) -> Value {
    let r = app.post_json(&format!("{BASE}/start?sync=true"), &body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn transition(app: &TestApp, instance: &str, key: &str, body: Value) -> reqwest::Response {
    app.patch_json(&format!("{BASE}/{instance}/transitions/{key}?sync=true"), &body).await
}

#[tokio::test]
async fn sync_start_answers_the_instance_and_start_is_idempotent_by_key() {
    let app = ready().await;
    let r = app.post_json(&format!("{BASE}/start?sync=true"), &json!({ "key": "o-1", "tags": ["vip"], "attributes": { "amount": 120 } })).await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["key"], "o-1");
    assert_eq!(body["status"], "A");
    assert_eq!(body["effectiveStatus"], "A");
    assert_eq!(body["metadata"]["currentState"], "draft");
    assert_eq!(body["attributes"], json!({ "amount": 120 }));
    assert_eq!(body["extensions"], json!({}));
    assert_eq!(etag, body["eTag"].as_str().unwrap());
    // The instance itself carries where it belongs.
    let got: Value = app.get(&format!("{BASE}/o-1")).await.json().await.unwrap();
    assert_eq!(got["flow"], "order");
    assert_eq!(got["domain"], "shop");
    assert_eq!(got["flowVersion"], "1.0.0");
    assert_eq!(got["tags"], json!(["vip"]));

    let again = start_sync(&app, json!({ "key": "o-1", "attributes": { "amount": 999 } })).await;
    assert_eq!(again["id"], body["id"]);
    assert_eq!(again["attributes"]["amount"], 120);

    // A free-form body is the payload itself.
    let raw = start_sync(&app, json!({ "amount": 5 })).await;
    assert_eq!(raw["attributes"], json!({ "amount": 5 }));
}

#[tokio::test]
async fn async_start_is_accepted_and_runs() {
    let app = ready().await;
    let r = app.post_json(&format!("{BASE}/start"), &json!({ "key": "a-1", "attributes": { "amount": 1 } })).await;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_string();
    assert!(body["status"].is_string(), "{body}");
    assert_eq!(location, format!("{BASE}/{id}"));
    // Poll with a deadline until the accepted start has run.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = app.get(&location).await.json().await.unwrap();
        if v["metadata"]["status"] == "A" && v["metadata"]["currentState"] == "draft" {
            break;
        }
        assert!(Instant::now() < deadline, "the accepted start never ran: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_whole_run_with_every_transition_error() {
    let app = ready().await;
    let started = start_sync(&app, json!({ "key": "o-2", "attributes": { "amount": 70 } })).await;
    let id = started["id"].as_str().unwrap().to_string();

    // Unknown transition: 404; defined but not offered in `draft`: 409 with what is.
    let body = expect_problem(transition(&app, "o-2", "fly", json!({})).await, 404, "transition.not-found").await;
    assert!(body["detail"].as_str().unwrap().contains("fly"), "{body}");
    let body = expect_problem(transition(&app, "o-2", "approve", json!({})).await, 409, "transition.not-available").await;
    assert_eq!(body["state"], "draft");
    assert!(body["available"].as_array().unwrap().iter().any(|t| t == "submit"), "{body}");

    let r = transition(&app, "o-2", "submit", json!({})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["metadata"]["currentState"], "review");
    assert_ne!(v["eTag"], started["eTag"]);

    // The payload fails the approval schema: 422 with the pointers.
    let body = expect_problem(transition(&app, &id, "approve", json!({ "attributes": { "approver": 5 } })).await, 422, "payload.invalid").await;
    assert!(body["violations"].as_array().unwrap().iter().any(|e| e["pointer"] == "/approver"), "{body}");
    let r = transition(&app, &id, "approve", json!({ "attributes": { "approver": "rita" } })).await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["metadata"]["currentState"], "done");
    assert_eq!(done["metadata"]["status"], "C");
    assert!(done["metadata"]["completedAt"].is_string());
    assert_eq!(done["attributes"]["approver"], "rita");

    // Completed: no more transitions, nothing to retry.
    expect_problem(transition(&app, "o-2", "comment", json!({})).await, 409, "instance.finished").await;
    expect_problem(app.post_json(&format!("{BASE}/o-2/retry?sync=true"), &json!({})).await, 400, "instance.not-faulted").await;

    // Every data version is readable back, and the history shows each step.
    let history: Value = app.get(&format!("{BASE}/o-2/transitions")).await.json().await.unwrap();
    let steps: Vec<&str> = history["transitions"].as_array().unwrap().iter().map(|t| t["transitionId"].as_str().unwrap()).collect();
    assert_eq!(steps.first(), Some(&"create"));
    assert!(steps.contains(&"submit") && steps.contains(&"approve"), "{steps:?}");
    let first_version = history["transitions"][0]["dataVersion"].as_str().unwrap().to_string();
    let old: Value = app.get(&format!("{BASE}/o-2/functions/data?version={first_version}")).await.json().await.unwrap();
    assert_eq!(old["data"], json!({ "amount": 70 }));
    assert_eq!(old["isLatest"], false);

    // Counted by domain, workflow, kind and outcome (other tests of this
    // process use the same names, so at least this test's own).
    let m = app.scrape().await;
    let count = |kind: &str, outcome: &str| {
        m.value("vnext_transitions_total", &[("domain", "shop"), ("workflow", "order"), ("kind", kind), ("outcome", outcome)])
    };
    assert!(count("transition", "not-available") >= 1.0);
    assert!(count("transition", "completed") >= 1.0);
    assert!(count("start", "active") >= 1.0);
    assert!(m.value("vnext_transition_duration_seconds", &[("domain", "shop"), ("workflow", "order"), ("kind", "start")]) >= 1.0);
}

#[tokio::test]
async fn start_errors() {
    let app = ready().await;
    let body = expect_problem(
        app.post_json(&format!("{BASE}/start?sync=true"), &json!({ "attributes": { "amount": "lots" } })).await,
        422,
        "payload.invalid",
    )
    .await;
    assert!(body["violations"].as_array().unwrap().iter().any(|e| e["pointer"] == "/amount"), "{body}");
    expect_problem(app.post_json(&format!("{BASE}/start?sync=true"), &json!({})).await, 422, "payload.invalid").await;
    expect_problem(
        app.post_json(&format!("{BASE}/start?sync=true&version=9.9.9"), &json!({ "attributes": { "amount": 1 } })).await,
        404,
        "workflow.version-not-found",
    )
    .await;
    expect_problem(
        app.post_json("/api/v1/shop/workflows/nothing/instances/start?sync=true", &json!({})).await,
        404,
        "workflow.not-found",
    )
    .await;
    expect_problem(
        app.post_json("/api/v1/elsewhere/workflows/order/instances/start?sync=true", &json!({})).await,
        404,
        "domain.not-found",
    )
    .await;
    // Nothing was created by the failed starts.
    let list: Value = app.get(BASE).await.json().await.unwrap();
    assert_eq!(list["items"], json!([]), "{list}");
}

#[tokio::test]
async fn unknown_instances_and_busy_instances() {
    let app = ready().await;
    start_sync(&app, json!({ "key": "o-3", "attributes": { "amount": 1 } })).await;
    expect_problem(transition(&app, "nobody", "submit", json!({})).await, 404, "instance.not-found").await;
    expect_problem(
        transition(&app, &uuid::Uuid::new_v4().to_string(), "submit", json!({})).await,
        404,
        "instance.not-found",
    )
    .await;
    expect_problem(app.post_json(&format!("{BASE}/nobody/retry"), &json!({})).await, 404, "instance.not-found").await;

    // Another transition holds the instance (a live lease): 409 busy, nothing changes.
    let pool = app.flow_pool().await;
    sqlx::query(
        "UPDATE \"order\".instances SET status = 'B', lease_token = gen_random_uuid(),
             lease_until = now() + interval '1 hour', lease_transition = 'submit' WHERE key = 'o-3'",
    )
    .execute(&pool)
    .await
    .unwrap();
    expect_problem(transition(&app, "o-3", "submit", json!({})).await, 409, "instance.busy").await;
    let v: Value = app.get(&format!("{BASE}/o-3")).await.json().await.unwrap();
    assert_eq!(v["metadata"]["currentState"], "draft");
}

#[tokio::test]
async fn etag_changes_with_every_write() {
    let app = ready().await;
    let started = start_sync(&app, json!({ "key": "o-4", "attributes": { "amount": 1 } })).await;
    let old = started["eTag"].as_str().unwrap().to_string();
    let r = app.client.get(app.url(&format!("{BASE}/o-4"))).header("if-none-match", &old).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(transition(&app, "o-4", "comment", json!({ "attributes": { "note": "hi" } })).await.status(), 200);
    let r = app.client.get(app.url(&format!("{BASE}/o-4"))).header("if-none-match", &old).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["attributes"]["note"], "hi");
}

#[tokio::test]
async fn runaway_chains_and_failing_scripts_are_422s() {
    let app = TestApp::spawn_with(|c| c.runtime.max_auto_chain_depth = 5).await;
    app.publish_fixtures().await;
    for w in [fixtures::loop_workflow(), fixtures::fragile_workflow()] {
        let r = app.publish(&w).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let body = expect_problem(
        app.post_json("/api/v1/shop/workflows/loop/instances/start?sync=true", &json!({})).await,
        422,
        "transition.chain-too-deep",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains('5'), "{body}");

    let r = app.post_json("/api/v1/shop/workflows/fragile/instances/start?sync=true", &json!({ "key": "f-1" })).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = app
        .patch_json("/api/v1/shop/workflows/fragile/instances/f-1/transitions/explode?sync=true", &json!({ "attributes": { "reason": "no" } }))
        .await;
    let body = expect_problem(r, 422, "script.failed").await;
    assert!(body["detail"].as_str().unwrap().contains("the mapping refused: no"), "{body}");
    // Nothing changed.
    let v: Value = app.get("/api/v1/shop/workflows/fragile/instances/f-1").await.json().await.unwrap();
    assert_eq!(v["metadata"]["currentState"], "ready");
}

#[tokio::test]
async fn armed_timers_show_in_the_state_function() {
    let app = ready().await;
    start_sync(&app, json!({ "key": "o-5", "attributes": { "amount": 1 } })).await;
    assert_eq!(transition(&app, "o-5", "submit", json!({})).await.status(), 200);
    let v: Value = app.get(&format!("{BASE}/o-5/functions/state")).await.json().await.unwrap();
    let expire = v["transitions"].as_array().unwrap().iter().find(|t| t["name"] == "expire").cloned();
    let expire = expire.unwrap_or_else(|| panic!("the expire timer is armed: {v}"));
    assert_eq!(expire["kind"], "scheduled");
    let at: chrono::DateTime<chrono::Utc> = expire["executeAtUtc"].as_str().unwrap().parse().unwrap();
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!((at - in_an_hour).num_seconds().abs() < 60, "{at}");
}

#[tokio::test]
async fn internal_trigger_runs_through_the_engine() {
    let app = ready().await;
    let trigger = |body: Value| {
        app.client
            .post(format!("{}/api/v1/internal/trigger", app.internal_base))
            .bearer_auth(&app.config.execution.shared_secret)
            .json(&body)
            .send()
    };
    // A job of a domain that does not exist cannot succeed, ever.
    let r = trigger(json!({
        "domain": "nowhere", "flow": "order", "instanceId": uuid::Uuid::new_v4(), "transition": "expire",
        "origin": "timer", "jobId": uuid::Uuid::new_v4(), "attempt": 1
    }))
    .await
    .unwrap();
    let body = expect_problem(r, 422, "trigger.failed").await;
    assert_eq!(body["retryable"], false, "{body}");
}

#[tokio::test]
async fn a_vanished_definition_is_a_409_not_a_500() {
    let app = ready().await;
    start_sync(&app, json!({ "key": "o-6", "attributes": { "amount": 1 } })).await;
    let pool = app.flow_pool().await;
    sqlx::query("DELETE FROM sys_flows.components WHERE key = 'order'").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO sys_flows.components (key, version, major, minor, patch, domain, content, sha256)
                 VALUES ('order', '2.0.0', 2, 0, 0, 'shop', '{}', 'x')")
        .execute(&pool)
        .await
        .unwrap();
    let r = app.get(&format!("{BASE}/o-6/functions/state")).await;
    expect_problem(r, 409, "definition.unusable").await;
}

#[tokio::test]
async fn an_unreachable_database_is_a_503() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/ready").await.status(), 200);
    let control = format!("{}control", app.prefix);
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(api_support::ADMIN_URL).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{control}\" WITH (FORCE)"))).execute(&mut admin).await.unwrap();
    expect_problem(app.get("/ready").await, 503, "service.unavailable").await;
}

#[tokio::test]
async fn fifty_concurrent_transitions_apply_once() {
    let app = ready().await;
    start_sync(&app, json!({ "key": "o-7", "attributes": { "amount": 1 } })).await;
    let calls = (0..50).map(|_| transition(&app, "o-7", "submit", json!({})));
    let responses = futures::future::join_all(calls).await;
    let mut applied = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => applied += 1,
            409 => {
                let body: Value = r.json().await.unwrap();
                let code = body["code"].as_str().unwrap();
                assert!(code == "instance.busy" || code == "transition.not-available", "{body}");
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!(applied, 1);
    let history: Value = app.get(&format!("{BASE}/o-7/transitions")).await.json().await.unwrap();
    let submits = history["transitions"].as_array().unwrap().iter().filter(|t| t["transitionId"] == "submit").count();
    assert_eq!(submits, 1);
}
