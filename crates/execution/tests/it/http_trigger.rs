//! The scheduler firing through `HttpTrigger` into a local server that plays
//! the app's internal trigger endpoint (checks the secret, settles the job in
//! the database, answers the outcome).

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use vnext_core::traits::TriggerRequest;
use vnext_execution::scheduler::StaticDomains;
use vnext_execution::{HttpClients, HttpTrigger, Scheduler, SchedulerConfig};
use vnext_init::queue::{self as queues, JobKind, NewJob};

use common::db::TestDomain;

const SECRET: &str = "trigger-test-secret";

#[derive(Clone)]
struct FakeApp {
    pool: PgPool,
    seen: Arc<Mutex<Vec<TriggerRequest>>>,
}

async fn internal_trigger(State(app): State<FakeApp>, headers: HeaderMap, Json(request): Json<TriggerRequest>) -> (StatusCode, Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {SECRET}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"errorCode": "unauthorized", "detail": "bad secret"})));
    }
    app.seen.lock().unwrap().push(request.clone());
    let done = sqlx::query("UPDATE sys_queues.jobs SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'running'")
        .bind(request.job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let outcome = if done.rows_affected() == 1 { "applied" } else { "stale" };
    (StatusCode::OK, Json(json!({"outcome": outcome})))
}

async fn setup(secret: &str) -> (TestDomain, FakeApp, Scheduler, Uuid) {
    let domain = TestDomain::create("httptrig").await;
    let app = FakeApp { pool: domain.pool.clone(), seen: Arc::default() };
    let addr = common::serve(axum::Router::new().route("/api/v1/internal/trigger", post(internal_trigger)).with_state(app.clone())).await;
    let trigger = HttpTrigger::new(&HttpClients::new(), &format!("http://{addr}"), secret, Duration::from_secs(5)).unwrap();
    let scheduler = Scheduler::new(
        Arc::new(StaticDomains::single(domain.name.clone(), domain.pool.clone())),
        Arc::new(trigger),
        SchedulerConfig { worker_id: "http-worker".into(), ..SchedulerConfig::default() },
    );
    let job = NewJob {
        id: Uuid::new_v4(),
        kind: JobKind::Timeout,
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        transition_key: "$timeout".into(),
        armed_state: None,
        body: None,
        due_at: Utc::now(),
    };
    let mut conn = domain.pool.acquire().await.unwrap();
    queues::enqueue(&mut conn, &job).await.unwrap();
    drop(conn);
    (domain, app, scheduler, job.id)
}

#[tokio::test]
async fn jobs_fire_through_the_apps_internal_endpoint() {
    let (domain, app, scheduler, job) = setup(SECRET).await;
    let report = scheduler.tick().await.unwrap();
    assert_eq!((report.claimed, report.applied), (1, 1));
    let seen = app.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].job_id, job);
    assert_eq!(seen[0].transition, "$timeout");
    assert_eq!(seen[0].domain, domain.name.as_str());
    let status: String = sqlx::query_scalar("SELECT status FROM sys_queues.jobs WHERE id = $1").bind(job).fetch_one(&domain.pool).await.unwrap();
    assert_eq!(status, "done");
}

#[tokio::test]
async fn a_rejected_secret_keeps_the_job_for_later() {
    let (domain, app, scheduler, job) = setup("not-the-secret").await;
    let report = scheduler.tick().await.unwrap();
    assert_eq!((report.claimed, report.retried), (1, 1));
    assert!(app.seen.lock().unwrap().is_empty());
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM sys_queues.jobs WHERE id = $1").bind(job).fetch_one(&domain.pool).await.unwrap();
    assert_eq!(status, "pending");
    let error = error.unwrap();
    assert!(error.contains("401") && error.contains("bad secret"), "{error}");
}
