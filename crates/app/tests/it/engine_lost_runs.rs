//! Runs lost with their process: a synchronous transition whose HTTP task is
//! in flight when the run is dropped (what a kill -9 leaves: the lease
//! committed, the outcome never written). Lease recovery counts the lost call
//! as a failed attempt and the task's error boundary decides; the client's
//! body is kept on every path.

use crate::engine_support;

use std::sync::Arc;

use engine_support::*;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use vnext_app::engine::{InstanceRef, InstanceStatus, RetryRequest};
use vnext_core::traits::{TaskResponse, TriggerOrigin, TriggerOutcome, TriggerRequest};

const FLOW: &str = "lossy";

fn flow() -> Vec<Value> {
    let entry = |boundary: Option<Value>| {
        let mut e = json!({"order": 1, "task": task_ref("remote"), "mapping": nat("fn output(ctx) { #{ got: ctx.response.data } }")});
        if let Some(b) = boundary {
            e["errorBoundary"] = b;
        }
        e
    };
    // The retry rule names 5xx only: a lost call's outcome is unknown, so it applies anyway.
    let retry = json!({"onError": [{"action": 1, "errorCodes": ["Task:5xx"],
        "retryPolicy": {"initialDelay": "PT2S", "maxRetries": 2, "backoffType": 0, "useJitter": false}}]});
    let rollback =
        json!({"onError": [{"action": 2, "errorCodes": ["*"], "transition": "give-up"}]});
    let wf = workflow(
        FLOW,
        "1.0.0",
        json!({
            "type": "F", "labels": label(),
            "startTransition": start_transition("idle"),
            "states": [
                state("idle", 1, json!([manual("try", "retrying"), manual("plain", "unguarded"), manual("risk", "risky"),
                                        manual("give-up", "gave-up")])),
                {"key": "retrying", "stateType": 2, "versionStrategy": "None", "labels": label(),
                 "onEntries": [entry(Some(retry))], "transitions": [manual("back", "idle")]},
                {"key": "unguarded", "stateType": 2, "versionStrategy": "None", "labels": label(),
                 "onEntries": [entry(None)], "transitions": [manual("back", "idle")]},
                {"key": "risky", "stateType": 2, "versionStrategy": "None", "labels": label(),
                 "onEntries": [entry(Some(rollback))], "transitions": [manual("back", "idle")]},
                state("gave-up", 3, json!([]))
            ]
        }),
    );
    vec![http_task("remote"), wf]
}

fn answer_ok(env: &TestEnv) {
    env.executor.set(|_| {
        Box::pin(async {
            TaskResponse {
                status_code: Some(200),
                is_success: true,
                data: json!("ok"),
                ..Default::default()
            }
        })
    });
}

/// Runs `transition` with `body` until its HTTP task is in flight, then drops
/// the run, and lets its lease expire. Returns the lease token.
async fn lose(env: &TestEnv, id: Uuid, transition: &str, body: Value) -> Uuid {
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let never = Arc::new(Notify::new());
    env.executor.set(move |_| {
        let (started_tx, never) = (started_tx.clone(), never.clone());
        Box::pin(async move {
            started_tx.send(()).unwrap();
            never.notified().await;
            TaskResponse::default()
        })
    });
    let engine = env.engine.clone();
    let req = env.transition_req(FLOW, id, transition, body);
    let running = tokio::spawn(async move { engine.transition(req).await });
    started.recv().await.unwrap();
    running.abort();
    let _ = running.await;
    let token: Uuid = sqlx::query_scalar(
        "UPDATE lossy.instances SET lease_until = now() - interval '1 minute' WHERE id = $1 AND status = 'B' RETURNING lease_token",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    token
}

/// Fires the lease recovery job the scheduler's scan would enqueue.
async fn recover(env: &TestEnv, id: Uuid, token: Uuid) -> TriggerOutcome {
    sqlx::query(
        "INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, body, due_at, status) \
         VALUES ($1, 'lease', 'lossy', $2, 'x', jsonb_build_object('leaseToken', $1), now(), 'running')",
    )
    .bind(token)
    .bind(id)
    .execute(&env.pool)
    .await
    .unwrap();
    let body = json!({"leaseToken": token});
    let req = TriggerRequest {
        domain: env.domain.to_string(),
        flow: FLOW.into(),
        instance_id: id,
        transition: "x".into(),
        origin: TriggerOrigin::Lease,
        armed_state: None,
        body,
        job_id: token,
        attempt: 1,
    };
    env.engine.trigger().trigger(req).await.unwrap()
}

async fn row(env: &TestEnv, id: Uuid) -> (String, String, Value) {
    sqlx::query_as("SELECT current_state, status::text, data FROM lossy.instances WHERE id = $1")
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

async fn task_runs(env: &TestEnv, id: Uuid) -> Vec<(i32, String, Option<String>)> {
    sqlx::query_as("SELECT attempt, status, error->>'code' FROM lossy.task_runs WHERE instance_id = $1 ORDER BY started_at")
        .bind(id)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_lease_records_the_request_and_the_call_in_flight() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start(FLOW, json!({})).await;
    lose(&env, s.id, "try", json!({"n": 7})).await;
    let (request, step): (Value, Value) =
        sqlx::query_as("SELECT lease_request, lease_step FROM lossy.instances WHERE id = $1")
            .bind(s.id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(request["attributes"], json!({"n": 7}), "{request}");
    assert_eq!(
        request["first"],
        json!({"kind": "named", "transition": "try", "caller": "client"}),
        "{request}"
    );
    assert_eq!(request["attempt"], json!(1));
    assert_eq!(
        (
            step["hop"].as_str(),
            step["firstHop"].as_bool(),
            step["state"].as_str()
        ),
        (Some("try"), Some(true), Some("retrying")),
        "{step}"
    );
    assert_eq!(step["tasks"][0]["key"], "remote", "{step}");
    // A write that ends the lease clears both.
    answer_ok(&env);
    let token: Uuid = env
        .scalar(
            "SELECT lease_token FROM lossy.instances WHERE id = $1",
            s.id,
        )
        .await;
    assert_eq!(recover(&env, s.id, token).await, TriggerOutcome::Applied);
    let cleared: (Option<Value>, Option<Value>) =
        sqlx::query_as("SELECT lease_request, lease_step FROM lossy.instances WHERE id = $1")
            .bind(s.id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(cleared, (None, None));
    env.cleanup().await;
}

#[tokio::test]
async fn a_lost_call_with_a_retry_policy_is_retried_with_the_clients_body() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start(FLOW, json!({})).await;
    let token = lose(&env, s.id, "try", json!({"n": 7})).await;
    assert_eq!(recover(&env, s.id, token).await, TriggerOutcome::Applied);

    // Busy for its retry job, due after the policy's delay, which runs attempt 2 with the body.
    let (state, status, _) = row(&env, s.id).await;
    assert_eq!((state.as_str(), status.as_str()), ("idle", "B"));
    let (job, due, body, owner): (Uuid, chrono::DateTime<chrono::Utc>, Value, Option<Uuid>) = sqlx::query_as(
        "SELECT j.id, j.due_at, j.body, i.lease_job_id FROM sys_queues.jobs j JOIN lossy.instances i ON i.id = j.instance_id \
         WHERE j.instance_id = $1 AND j.kind = 'retry' AND j.status = 'pending'",
    )
    .bind(s.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(owner, Some(job), "the retry job owns the busy instance");
    let wait = (due - chrono::Utc::now()).num_milliseconds();
    assert!((0..=2_000).contains(&wait), "{wait}");
    assert_eq!(
        (body["attempt"].clone(), body["attributes"].clone()),
        (json!(2), json!({"n": 7})),
        "{body}"
    );
    assert_eq!(
        task_runs(&env, s.id).await,
        vec![(1, "failed".into(), Some("Lease:expired".into()))]
    );
    let incidents: i64 = env
        .scalar(
            "SELECT count(*) FROM lossy.incidents WHERE instance_id = $1",
            s.id,
        )
        .await;
    assert_eq!(incidents, 0);

    answer_ok(&env);
    sqlx::query("UPDATE sys_queues.jobs SET status = 'running' WHERE id = $1")
        .bind(job)
        .execute(&env.pool)
        .await
        .unwrap();
    let fired = env
        .engine
        .trigger()
        .trigger(TriggerRequest {
            domain: env.domain.to_string(),
            flow: FLOW.into(),
            instance_id: s.id,
            transition: "try".into(),
            origin: TriggerOrigin::Retry,
            armed_state: Some("idle".into()),
            body,
            job_id: job,
            attempt: 1,
        })
        .await
        .unwrap();
    assert_eq!(fired, TriggerOutcome::Applied);
    let (state, status, data) = row(&env, s.id).await;
    assert_eq!((state.as_str(), status.as_str()), ("retrying", "A"));
    assert_eq!(
        data,
        json!({"n": 7, "got": "ok"}),
        "the client's body was applied once, with the call's answer"
    );
    let runs = task_runs(&env, s.id).await;
    assert_eq!(
        runs,
        vec![
            (1, "failed".into(), Some("Lease:expired".into())),
            (2, "succeeded".into(), None)
        ]
    );
    let hops: Vec<(String, String)> = sqlx::query_as(
        "SELECT transition_key, origin FROM lossy.transitions WHERE instance_id = $1 ORDER BY seq",
    )
    .bind(s.id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        hops.iter().filter(|(k, _)| k == "try").collect::<Vec<_>>(),
        vec![&("try".to_string(), "retry".to_string())]
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_lost_call_without_a_boundary_faults_and_retry_runs_it_with_the_body() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start(FLOW, json!({})).await;
    let token = lose(&env, s.id, "plain", json!({"n": 8})).await;
    assert_eq!(recover(&env, s.id, token).await, TriggerOutcome::Applied);
    let (state, status, _) = row(&env, s.id).await;
    assert_eq!((state.as_str(), status.as_str()), ("idle", "F"));
    let (code, task, request): (String, Option<String>, Value) = sqlx::query_as(
        "SELECT error_code, task_key, request FROM lossy.incidents WHERE instance_id = $1",
    )
    .bind(s.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (code.as_str(), task.as_deref()),
        ("Lease:expired", Some("remote"))
    );
    assert_eq!(request["attributes"], json!({"n": 8}), "{request}");

    answer_ok(&env);
    let req = RetryRequest {
        domain: env.domain.clone(),
        flow: env.flow(FLOW),
        instance: InstanceRef::Id(s.id),
        sync: true,
    };
    let retried = done(env.engine.retry(req).await.unwrap());
    assert_eq!(
        (retried.status, retried.current_state.as_str()),
        (InstanceStatus::Active, "unguarded")
    );
    assert_eq!(
        retried.data,
        json!({"n": 8, "got": "ok"}),
        "retry ran with the original body"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_lost_call_with_a_rollback_runs_the_boundary_transition() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start(FLOW, json!({})).await;
    let token = lose(&env, s.id, "risk", json!({"n": 9})).await;
    assert_eq!(recover(&env, s.id, token).await, TriggerOutcome::Applied);
    let (state, status, _) = row(&env, s.id).await;
    assert_eq!((state.as_str(), status.as_str()), ("gave-up", "C"));
    let origin: String = env
        .scalar(
            "SELECT origin FROM lossy.transitions WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1",
            s.id,
        )
        .await;
    assert_eq!(origin, "boundary");
    env.cleanup().await;
}
