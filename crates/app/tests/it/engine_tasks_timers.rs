//! External I/O under a lease, task failures, retries, timers and the trigger
//! the job scheduler calls.

use crate::engine_support;

use std::sync::Arc;

use engine_support::*;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;
use vnext_app::engine::{EngineError, InstanceRef, InstanceStatus, RetryRequest};
use vnext_core::traits::{TaskError, TaskResponse, TriggerOrigin, TriggerOutcome, TriggerRequest};

fn io_flow() -> Vec<Value> {
    let wf = workflow("calls", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("idle"),
        "timeout": {"key": "too-late", "target": "expired", "versionStrategy": "None", "timer": {"duration": "PT1H"}},
        "states": [
            state("idle", 1, json!([manual("call", "called"), manual("wait", "waiting")])),
            {"key": "called", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [{
                 "order": 1, "task": task_ref("remote"),
                 "mapping": nat("fn input(ctx) { #{ body: #{ id: ctx.instance.id } } } fn output(ctx) { #{ remote: ctx.response.data } }")
             }],
             "transitions": [manual("back", "idle")]},
            {"key": "waiting", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "transitions": [
                {"key": "tick", "target": "ticked", "triggerType": 2, "versionStrategy": "None", "labels": label(),
                 "timer": {"duration": "PT30M"}},
                {"key": "tock", "target": "ticked", "triggerType": 2, "versionStrategy": "None", "labels": label(),
                 "timer": nat("fn handler(ctx) { #{ cron: \"0 9 * * *\", timezone: \"Europe/Istanbul\" } }")},
                manual("leave", "idle")
             ]},
            state("ticked", 2, json!([manual("back", "idle")])),
            state("expired", 3, json!([]))
        ]
    }));
    vec![http_task("remote"), wf]
}

async fn jobs(env: &TestEnv, id: Uuid) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as("SELECT kind, transition_key, status, armed_state FROM sys_queues.jobs WHERE instance_id = $1 ORDER BY created_at, transition_key")
        .bind(id)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn io_tasks_run_under_a_lease_with_no_transaction_open() {
    let env = TestEnv::new().await;
    env.publish(&io_flow()).await;
    let s = env.start("calls", json!({})).await;

    let (started_tx, mut started) = mpsc::unbounded_channel::<Value>();
    let release = Arc::new(Notify::new());
    let r = release.clone();
    env.executor.set(move |inv| {
        let (started_tx, r) = (started_tx.clone(), r.clone());
        Box::pin(async move {
            started_tx.send(inv.config.clone()).unwrap();
            r.notified().await;
            TaskResponse { status_code: Some(200), is_success: true, data: json!({"ok": true}), ..Default::default() }
        })
    });
    let engine = env.engine.clone();
    let req = env.transition_req("calls", s.id, "call", json!({}));
    let running = tokio::spawn(async move { engine.transition(req).await });

    let config = started.recv().await.unwrap();
    assert_eq!(config["body"]["id"], json!(s.id.to_string()), "input mapping merged into the config");
    // While the call runs: busy with a lease, committed, and the row is not locked.
    let mut other = env.admin_domain().await;
    let (status, token, leased): (String, Option<Uuid>, Option<String>) =
        sqlx::query_as("SELECT status::text, lease_token, lease_transition FROM calls.instances WHERE id = $1 FOR UPDATE NOWAIT")
            .bind(s.id)
            .fetch_one(&mut other)
            .await
            .expect("no transaction may hold the row during I/O");
    assert_eq!((status.as_str(), token.is_some(), leased.as_deref()), ("B", true, Some("call")));
    let err = env.engine.transition(env.transition_req("calls", s.id, "call", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Busy { .. }), "{err:?}");

    release.notify_one();
    let done = done(running.await.unwrap().unwrap());
    assert_eq!((done.status, done.current_state.as_str()), (InstanceStatus::Active, "called"));
    assert_eq!(done.data["remote"], json!({"ok": true}));
    let (status, token): (String, Option<Uuid>) = sqlx::query_as("SELECT status::text, lease_token FROM calls.instances WHERE id = $1")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), token), ("A", None));
    let run: (String, String, String, Value) =
        sqlx::query_as("SELECT task_key, phase, status, response FROM calls.task_runs WHERE instance_id = $1")
            .bind(s.id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((run.0.as_str(), run.1.as_str(), run.2.as_str()), ("remote", "entry", "succeeded"));
    assert_eq!(run.3["statusCode"], json!(200));
    env.cleanup().await;
}

#[tokio::test]
async fn task_failure_faults_with_an_incident_and_retry_resolves_it() {
    let env = TestEnv::new().await;
    env.publish(&io_flow()).await;
    let s = env.start("calls", json!({"keep": 1})).await;
    env.executor.set(|_| {
        Box::pin(async {
            TaskResponse {
                status_code: Some(503),
                is_success: false,
                error: Some(TaskError::new("Task:503", "service unavailable", true)),
                ..Default::default()
            }
        })
    });
    let f = env.transition("calls", s.id, "call", json!({"attempt": 1})).await;
    assert_eq!((f.status, f.current_state.as_str(), f.has_incident), (InstanceStatus::Faulted, "idle", true));
    let inc: (String, String, Option<String>, Option<String>, Option<i32>, bool) = sqlx::query_as(
        "SELECT error_code, message, task_key, transition_key, status_code, resolved FROM calls.incidents WHERE instance_id = $1",
    )
    .bind(s.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(inc.0, "Task:503");
    assert!(inc.1.contains("remote") && inc.1.contains("service unavailable"), "{}", inc.1);
    assert_eq!((inc.2.as_deref(), inc.3.as_deref(), inc.4, inc.5), (Some("remote"), Some("call"), Some(503), false));
    let err = env.engine.transition(env.transition_req("calls", s.id, "call", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Finished { .. }), "{err:?}");

    env.executor.set(|_| Box::pin(async { TaskResponse { status_code: Some(200), is_success: true, data: json!(7), ..Default::default() } }));
    let retry = RetryRequest { domain: env.domain.clone(), flow: env.flow("calls"), instance: InstanceRef::Id(s.id), sync: true };
    let r = done(env.engine.retry(retry.clone()).await.unwrap());
    assert_eq!((r.status, r.current_state.as_str(), r.has_incident), (InstanceStatus::Active, "called", false));
    assert_eq!(r.data, json!({"keep": 1, "attempt": 1, "remote": 7}), "the retry re-ran the request with its body");
    let resolved: bool = env.scalar("SELECT resolved FROM calls.incidents WHERE instance_id = $1", s.id).await;
    assert!(resolved);
    let failed: i64 = env.scalar("SELECT count(*) FROM calls.task_runs WHERE instance_id = $1 AND status = 'failed'", s.id).await;
    assert_eq!(failed, 1);
    assert!(matches!(env.engine.retry(retry).await, Err(EngineError::NotFaulted { .. })));
    env.cleanup().await;
}

#[tokio::test]
async fn timers_are_armed_on_entry_cancelled_on_exit_and_fired_by_the_trigger() {
    let env = TestEnv::new().await;
    env.publish(&io_flow()).await;
    let s = env.start("calls", json!({})).await;
    assert_eq!(jobs(&env, s.id).await, vec![("timeout".into(), "$timeout".into(), "pending".into(), None)]);

    let w = env.transition("calls", s.id, "wait", json!({})).await;
    assert_eq!(w.current_state, "waiting");
    let armed = jobs(&env, s.id).await;
    assert_eq!(armed[1..].to_vec(), vec![
        ("timer".into(), "tick".into(), "pending".into(), Some("waiting".into())),
        ("timer".into(), "tock".into(), "pending".into(), Some("waiting".into())),
    ]);
    let due: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT min(due_at) FILTER (WHERE transition_key = 'tick'), min(due_at) FILTER (WHERE transition_key = 'tock') FROM sys_queues.jobs WHERE instance_id = $1",
    )
    .bind(s.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let in_30m = (due.0 - chrono::Utc::now()).num_minutes();
    assert!((28..=30).contains(&in_30m), "{in_30m}");
    assert_eq!(due.1.with_timezone(&chrono_tz::Europe::Istanbul).format("%H:%M").to_string(), "09:00");

    // Leaving the state cancels its timers; the workflow timeout stays.
    env.transition("calls", s.id, "leave", json!({})).await;
    let after = jobs(&env, s.id).await;
    assert_eq!(after[0].2, "pending");
    assert!(after[1..].iter().all(|j| j.2 == "cancelled"), "{after:?}");

    // Re-enter, then let the scheduler fire `tick` through the trigger.
    env.transition("calls", s.id, "wait", json!({})).await;
    let tick: Uuid = sqlx::query_scalar("SELECT id FROM sys_queues.jobs WHERE instance_id = $1 AND transition_key = 'tick' AND status = 'pending'")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let stale_tock: Uuid = sqlx::query_scalar("SELECT id FROM sys_queues.jobs WHERE instance_id = $1 AND transition_key = 'tock' AND status = 'pending'")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE sys_queues.jobs SET status = 'running' WHERE id = ANY($1)")
        .bind(vec![tick, stale_tock])
        .execute(&env.pool)
        .await
        .unwrap();
    let trigger = env.engine.trigger();
    let fire = |job: Uuid, key: &str| TriggerRequest {
        domain: env.domain.to_string(),
        flow: "calls".into(),
        instance_id: s.id,
        transition: key.into(),
        origin: TriggerOrigin::Timer,
        armed_state: Some("waiting".into()),
        body: Value::Null,
        job_id: job,
        attempt: 1,
    };
    assert_eq!(trigger.trigger(fire(tick, "tick")).await.unwrap(), TriggerOutcome::Applied);
    let state: String = env.scalar("SELECT current_state FROM calls.instances WHERE id = $1", s.id).await;
    assert_eq!(state, "ticked");
    let status: String = env.scalar("SELECT status FROM sys_queues.jobs WHERE id = $1", tick).await;
    assert_eq!(status, "done");
    // The same job again: already done.
    assert_eq!(trigger.trigger(fire(tick, "tick")).await.unwrap(), TriggerOutcome::Stale);
    // `tock` was armed for a state the instance left.
    assert_eq!(trigger.trigger(fire(stale_tock, "tock")).await.unwrap(), TriggerOutcome::Stale);
    let origin: String = env.scalar("SELECT origin FROM calls.transitions WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1", s.id).await;
    assert_eq!(origin, "timer");

    // The workflow timeout fires `$timeout` to its target, completing the instance.
    let timeout: Uuid = sqlx::query_scalar("SELECT id FROM sys_queues.jobs WHERE instance_id = $1 AND kind = 'timeout'")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE sys_queues.jobs SET status = 'running' WHERE id = $1").bind(timeout).execute(&env.pool).await.unwrap();
    let mut req = fire(timeout, "$timeout");
    req.origin = TriggerOrigin::Timeout;
    req.armed_state = None;
    assert_eq!(trigger.trigger(req).await.unwrap(), TriggerOutcome::Applied);
    let (state, status): (String, String) = sqlx::query_as("SELECT current_state, status::text FROM calls.instances WHERE id = $1")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!((state.as_str(), status.as_str()), ("expired", "C"));
    env.cleanup().await;
}

#[tokio::test]
async fn an_expired_lease_without_a_job_faults_the_instance() {
    let env = TestEnv::new().await;
    env.publish(&io_flow()).await;
    let s = env.start("calls", json!({})).await;
    // As if the process died mid-call: busy, lease expired, no job behind it.
    sqlx::query(
        "UPDATE calls.instances SET status = 'B', lease_token = gen_random_uuid(), lease_until = now() - interval '1 minute', \
         lease_transition = 'call' WHERE id = $1",
    )
    .bind(s.id)
    .execute(&env.pool)
    .await
    .unwrap();
    let job = Uuid::now_v7();
    sqlx::query("INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, due_at, status) VALUES ($1, 'lease', 'calls', $2, 'call', now(), 'running')")
        .bind(job)
        .bind(s.id)
        .execute(&env.pool)
        .await
        .unwrap();
    let out = env
        .engine
        .trigger()
        .trigger(TriggerRequest {
            domain: env.domain.to_string(),
            flow: "calls".into(),
            instance_id: s.id,
            transition: "call".into(),
            origin: TriggerOrigin::Lease,
            armed_state: None,
            body: Value::Null,
            job_id: job,
            attempt: 1,
        })
        .await
        .unwrap();
    assert_eq!(out, TriggerOutcome::Applied);
    let (status, token, code): (String, Option<Uuid>, String) = sqlx::query_as(
        "SELECT i.status::text, i.lease_token, n.error_code FROM calls.instances i JOIN calls.incidents n ON n.instance_id = i.id WHERE i.id = $1",
    )
    .bind(s.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), token, code.as_str()), ("F", None, "Lease:expired"));
    env.cleanup().await;
}

#[tokio::test]
async fn an_expired_lease_of_a_job_re_runs_that_job() {
    let env = TestEnv::new().await;
    env.publish(&io_flow()).await;
    let s = env.start("calls", json!({})).await;
    // As if an async `wait` request had leased the instance and the process died
    // during the run: the job is done (committed with the lease), the lease expired.
    let job = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, armed_state, body, due_at, status) \
         VALUES ($1, 'async', 'calls', $2, 'wait', 'idle', $3, now(), 'done')",
    )
    .bind(job)
    .bind(s.id)
    .bind(json!({"attributes": {"why": "lease"}, "headers": {}, "query": {}, "first": {"kind": "named", "transition": "wait", "caller": "client"}}))
    .execute(&env.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE calls.instances SET status = 'B', lease_token = gen_random_uuid(), lease_until = now() - interval '1 second', \
         lease_transition = 'wait', lease_job_id = $2 WHERE id = $1",
    )
    .bind(s.id)
    .bind(job)
    .execute(&env.pool)
    .await
    .unwrap();
    let recovery = Uuid::now_v7();
    sqlx::query("INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, due_at, status) VALUES ($1, 'lease', 'calls', $2, 'wait', now(), 'running')")
        .bind(recovery)
        .bind(s.id)
        .execute(&env.pool)
        .await
        .unwrap();
    let out = env
        .engine
        .trigger()
        .trigger(TriggerRequest {
            domain: env.domain.to_string(),
            flow: "calls".into(),
            instance_id: s.id,
            transition: "wait".into(),
            origin: TriggerOrigin::Lease,
            armed_state: None,
            body: Value::Null,
            job_id: recovery,
            attempt: 1,
        })
        .await
        .unwrap();
    assert_eq!(out, TriggerOutcome::Applied);
    let (status, state, data, token): (String, String, Value, Option<Uuid>) =
        sqlx::query_as("SELECT status::text, current_state, data, lease_token FROM calls.instances WHERE id = $1")
            .bind(s.id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), state.as_str(), data, token), ("A", "waiting", json!({"why": "lease"}), None));
    let origin: String = env.scalar("SELECT origin FROM calls.transitions WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1", s.id).await;
    assert_eq!(origin, "lease");
    let done: String = env.scalar("SELECT status FROM sys_queues.jobs WHERE id = $1", recovery).await;
    assert_eq!(done, "done");
    env.cleanup().await;
}
