//! Jobs enqueued in the caller's transaction.

use crate::common;

use chrono::Utc;
use common::TestEnv;
use sqlx::postgres::PgListener;
use uuid::Uuid;
use vnext_init::provision::provision_domain;
use vnext_init::queue::{self as queues, JobKind, NewJob};

fn job(kind: JobKind, instance_id: Uuid) -> NewJob {
    NewJob {
        id: Uuid::now_v7(),
        kind,
        flow: "order".into(),
        instance_id,
        transition_key: "expire".into(),
        armed_state: Some("waiting".into()),
        body: Some(serde_json::json!({"reason": "timer"})),
        due_at: Utc::now(),
    }
}

#[tokio::test]
async fn enqueue_commits_with_the_caller_and_wakes_listeners() {
    let env = TestEnv::new().await;
    let domain = env.domain("shop");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(queues::JOBS_CHANNEL).await.unwrap();

    let instance = Uuid::now_v7();
    // Rolled back: no row, no notification.
    let mut tx = pool.begin().await.unwrap();
    queues::enqueue(&mut tx, &job(JobKind::Async, instance)).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    for kind in [JobKind::Timer, JobKind::Timeout, JobKind::Retry] {
        queues::enqueue(&mut tx, &job(kind, instance)).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut payloads = Vec::new();
    for _ in 0..3 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
        payloads.push(n.payload().to_string());
    }
    assert_eq!(payloads, ["timer", "timeout", "retry"]);

    let rows: Vec<(String, String, Option<String>, serde_json::Value)> =
        sqlx::query_as("SELECT kind, status, armed_state, body FROM sys_queues.jobs ORDER BY created_at, kind")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.1 == "pending" && r.2.as_deref() == Some("waiting")));

    // Cancel timers and timeouts of the instance; a running job is left alone.
    sqlx::query("UPDATE sys_queues.jobs SET status = 'running' WHERE kind = 'timeout'").execute(&pool).await.unwrap();
    let other = Uuid::now_v7();
    let mut conn = pool.acquire().await.unwrap();
    queues::enqueue(&mut conn, &job(JobKind::Timer, other)).await.unwrap();
    let cancelled = queues::cancel_for_instance(&mut conn, "order", instance, &[JobKind::Timer, JobKind::Timeout]).await.unwrap();
    assert_eq!(cancelled, 1);
    assert_eq!(queues::cancel_for_instance(&mut conn, "order", instance, &[]).await.unwrap(), 0);
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, status FROM sys_queues.jobs WHERE instance_id = $1 ORDER BY kind")
            .bind(instance)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [("retry".into(), "pending".into()), ("timeout".into(), "running".into()), ("timer".into(), "cancelled".into())]
    );
    let other_status: String = sqlx::query_scalar("SELECT status FROM sys_queues.jobs WHERE instance_id = $1")
        .bind(other)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(other_status, "pending");
}
