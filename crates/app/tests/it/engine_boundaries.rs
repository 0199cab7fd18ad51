//! Error boundaries on task failures: durable retries, rollback transitions,
//! ignore, and faulting when retries run out.

use crate::engine_support;

use engine_support::*;
use serde_json::{json, Value};
use uuid::Uuid;
use vnext_app::engine::InstanceStatus;
use vnext_core::traits::{TaskError, TaskResponse, TriggerOrigin, TriggerOutcome, TriggerRequest};

fn flow() -> Vec<Value> {
    let entry = |boundary: Value| json!({
        "order": 1, "task": task_ref("remote"),
        "mapping": nat("fn output(ctx) { #{ got: ctx.response.data } }"),
        "errorBoundary": boundary
    });
    let retry = json!({"onError": [{"action": 1, "errorCodes": ["Task:5xx"],
        "retryPolicy": {"initialDelay": "PT2S", "maxRetries": 2, "backoffType": 0, "useJitter": false}}]});
    let rollback = json!({"onError": [{"action": 2, "errorCodes": ["*"], "transition": "give-up"}]});
    let ignore = json!({"onError": [{"action": 3}]});
    let wf = workflow("guarded", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("idle"),
        "states": [
            state("idle", 1, json!([manual("try", "retrying"), manual("risk", "risky"), manual("shrug", "lenient"),
                                    manual("give-up", "gave-up")])),
            {"key": "retrying", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [entry(retry)], "transitions": [manual("back", "idle")]},
            {"key": "risky", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [entry(rollback)], "transitions": [manual("back", "idle")]},
            {"key": "lenient", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [entry(ignore)], "transitions": [manual("back", "idle")]},
            state("gave-up", 3, json!([]))
        ]
    }));
    vec![http_task("remote"), wf]
}

fn fail_503(env: &TestEnv) {
    env.executor.set(|_| {
        Box::pin(async {
            TaskResponse {
                status_code: Some(503),
                is_success: false,
                error: Some(TaskError::new("Task:503", "try later", true)),
                ..Default::default()
            }
        })
    });
}

/// Claims the instance's pending retry job as the scheduler would and fires it.
async fn fire_retry(env: &TestEnv, id: Uuid) -> TriggerOutcome {
    let (job, key, body, armed): (Uuid, String, Value, Option<String>) = sqlx::query_as(
        "UPDATE sys_queues.jobs SET status = 'running' WHERE instance_id = $1 AND kind = 'retry' AND status = 'pending' \
         RETURNING id, transition_key, body, armed_state",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    env.engine
        .trigger()
        .trigger(TriggerRequest {
            domain: env.domain.to_string(),
            flow: "guarded".into(),
            instance_id: id,
            transition: key,
            origin: TriggerOrigin::Retry,
            armed_state: armed,
            body,
            job_id: job,
            attempt: 1,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn retry_rules_become_durable_jobs_then_succeed() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start("guarded", json!({})).await;
    fail_503(&env);
    let b = env.transition("guarded", s.id, "try", json!({"n": 1})).await;
    assert_eq!((b.status, b.current_state.as_str()), (InstanceStatus::Busy, "idle"));
    let (due, attempt, lease_job): (chrono::DateTime<chrono::Utc>, Value, Option<Uuid>) = sqlx::query_as(
        "SELECT j.due_at, j.body->'attempt', i.lease_job_id FROM sys_queues.jobs j JOIN guarded.instances i ON i.id = j.instance_id \
         WHERE j.instance_id = $1 AND j.kind = 'retry'",
    )
    .bind(s.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let wait = (due - chrono::Utc::now()).num_milliseconds();
    assert!((0..=2_000).contains(&wait), "{wait}");
    assert_eq!(attempt, json!(2));
    assert!(lease_job.is_some(), "the retry job owns the busy instance");

    env.executor.set(|_| Box::pin(async { TaskResponse { status_code: Some(200), is_success: true, data: json!("ok"), ..Default::default() } }));
    assert_eq!(fire_retry(&env, s.id).await, TriggerOutcome::Applied);
    let (state, status, data): (String, String, Value) =
        sqlx::query_as("SELECT current_state, status::text, data FROM guarded.instances WHERE id = $1").bind(s.id).fetch_one(&env.pool).await.unwrap();
    assert_eq!((state.as_str(), status.as_str()), ("retrying", "A"));
    assert_eq!(data, json!({"n": 1, "got": "ok"}), "the retried hop re-ran with the original body");
    let attempts: Vec<(i32, String)> = sqlx::query_as("SELECT attempt, status FROM guarded.task_runs WHERE instance_id = $1 ORDER BY started_at")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(attempts, vec![(1, "failed".into()), (2, "succeeded".into())]);
    env.cleanup().await;
}

#[tokio::test]
async fn exhausted_retries_fault_the_instance() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start("guarded", json!({})).await;
    fail_503(&env);
    env.transition("guarded", s.id, "try", json!({})).await;
    assert_eq!(fire_retry(&env, s.id).await, TriggerOutcome::Applied);
    assert_eq!(fire_retry(&env, s.id).await, TriggerOutcome::Applied);
    let (status, state): (String, String) =
        sqlx::query_as("SELECT status::text, current_state FROM guarded.instances WHERE id = $1").bind(s.id).fetch_one(&env.pool).await.unwrap();
    assert_eq!((status.as_str(), state.as_str()), ("F", "idle"));
    let message: String = env.scalar("SELECT message FROM guarded.incidents WHERE instance_id = $1", s.id).await;
    assert!(message.contains("exhausted after 3 attempts"), "{message}");
    let runs: i64 = env.scalar("SELECT count(*) FROM guarded.task_runs WHERE instance_id = $1", s.id).await;
    assert_eq!(runs, 3);
    env.cleanup().await;
}

#[tokio::test]
async fn rollback_runs_the_boundary_transition_and_ignore_continues() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    fail_503(&env);
    let s = env.start("guarded", json!({})).await;
    let r = env.transition("guarded", s.id, "risk", json!({})).await;
    assert_eq!((r.status, r.current_state.as_str()), (InstanceStatus::Completed, "gave-up"));
    let hops: Vec<(String, String)> = sqlx::query_as("SELECT transition_key, origin FROM guarded.transitions WHERE instance_id = $1 ORDER BY seq")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(hops, vec![("start".into(), "api".into()), ("give-up".into(), "boundary".into())]);

    let s = env.start("guarded", json!({})).await;
    let l = env.transition("guarded", s.id, "shrug", json!({})).await;
    assert_eq!((l.status, l.current_state.as_str()), (InstanceStatus::Active, "lenient"));
    assert!(l.data.get("got").is_none(), "an ignored failure merges no output");
    env.cleanup().await;
}
