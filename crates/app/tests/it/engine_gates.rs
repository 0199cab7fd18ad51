//! Request gates and side records: `key` on a transition, `cancel`/`exit` on a
//! busy instance, scheduled shared transitions, and the outbox events every
//! write carries.

use crate::engine_support;

use engine_support::*;
use serde_json::{json, Value};
use uuid::Uuid;
use vnext_app::engine::{EngineError, InstanceStatus};
use vnext_core::traits::{TaskError, TaskResponse, TriggerOrigin, TriggerOutcome, TriggerRequest};

fn flow() -> Vec<Value> {
    let retry = json!({"onError": [{"action": 1, "errorCodes": ["*"],
        "retryPolicy": {"initialDelay": "PT1H", "maxRetries": 2, "backoffType": 0, "useJitter": false}}]});
    let scheduled = |key: &str, target: &str, available: Value, duration: &str| json!({
        "key": key, "target": target, "triggerType": 2, "versionStrategy": "None", "labels": label(),
        "availableIn": available, "timer": {"duration": duration}
    });
    let wf = workflow("desk", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("open"),
        "states": [
            state("open", 1, json!([manual("work", "working"), manual("call", "calling")])),
            state("working", 2, json!([manual("rest", "open"), manual("finish", "closed")])),
            {"key": "calling", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [{"order": 1, "task": task_ref("remote"), "errorBoundary": retry}],
             "transitions": [manual("back", "open")]},
            state("closed", 3, json!([])),
            state("cancelled", 3, json!([])),
        ],
        "sharedTransitions": [
            scheduled("nag", "$self", json!(["working"]), "PT10M"),
            scheduled("sweep", "closed", json!([]), "P1D"),
        ],
        "cancel": {"key": "cancel", "target": "cancelled", "triggerType": 0, "versionStrategy": "None", "labels": label()},
        "exit": {"key": "exit", "target": "$self", "triggerType": 0, "versionStrategy": "None", "labels": label()}
    }));
    vec![http_task("remote"), wf]
}

async fn timers(env: &TestEnv, id: Uuid) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT transition_key, armed_state, status FROM sys_queues.jobs WHERE instance_id = $1 AND kind = 'timer' ORDER BY created_at, transition_key")
        .bind(id)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

fn t(key: &str, state: &str, status: &str) -> (String, String, String) {
    (key.into(), state.into(), status.into())
}

#[tokio::test]
async fn a_transition_key_names_an_instance_once() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let a = env.start("desk", json!({})).await;
    let b = env.start("desk", json!({})).await;
    let mut req = env.transition_req("desk", a.id, "work", json!({}));
    req.key = Some("ticket-1".into());
    let s = done(env.engine.transition(req).await.unwrap());
    assert_eq!((s.key.as_deref(), s.current_state.as_str()), (Some("ticket-1"), "working"));
    let key: Option<String> = env.scalar("SELECT key FROM desk.instances WHERE id = $1", a.id).await;
    assert_eq!(key.as_deref(), Some("ticket-1"));
    let event_key: Option<String> = env.scalar("SELECT payload->>'key' FROM sys_queues.outbox WHERE instance_id = $1 ORDER BY id DESC LIMIT 1", a.id).await;
    assert_eq!(event_key.as_deref(), Some("ticket-1"), "events carry the key");

    // Taken by another instance: 409 and nothing changes.
    let mut req = env.transition_req("desk", b.id, "work", json!({"x": 1}));
    req.key = Some("ticket-1".into());
    let err = env.engine.transition(req).await.unwrap_err();
    assert!(matches!(&err, EngineError::KeyTaken { key, .. } if key == "ticket-1"), "{err:?}");
    let (state, key): (String, Option<String>) = sqlx::query_as("SELECT current_state, key FROM desk.instances WHERE id = $1")
        .bind(b.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!((state.as_str(), key), ("open", None));

    // An instance that has a key keeps it.
    let mut req = env.transition_req("desk", a.id, "rest", json!({}));
    req.key = Some("ticket-2".into());
    assert_eq!(done(env.engine.transition(req).await.unwrap()).key.as_deref(), Some("ticket-1"));
    // Async requests set it when they are accepted.
    let mut req = env.transition_req("desk", b.id, "work", json!({}));
    req.key = Some("ticket-3".into());
    req.sync = false;
    env.engine.transition(req).await.unwrap();
    let key: Option<String> = env.scalar("SELECT key FROM desk.instances WHERE id = $1", b.id).await;
    assert_eq!(key.as_deref(), Some("ticket-3"));
    env.cleanup().await;
}

#[tokio::test]
async fn cancel_and_exit_take_an_instance_held_by_a_waiting_job_but_not_one_in_flight() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    env.executor.set(|_| Box::pin(async { TaskResponse { status_code: Some(503), is_success: false, error: Some(TaskError::new("Task:503", "later", true)), ..Default::default() } }));

    // A retry waiting an hour holds the instance busy.
    for (transition, state) in [("cancel", "cancelled"), ("exit", "open")] {
        let s = env.start("desk", json!({})).await;
        let busy = env.transition("desk", s.id, "call", json!({})).await;
        assert_eq!(busy.status, InstanceStatus::Busy);
        let err = env.engine.transition(env.transition_req("desk", s.id, "work", json!({}))).await.unwrap_err();
        assert!(matches!(err, EngineError::Busy { .. }), "other transitions wait: {err:?}");
        let ended = env.transition("desk", s.id, transition, json!({})).await;
        assert_eq!((ended.status, ended.current_state.as_str()), (InstanceStatus::Completed, state));
        let jobs: Vec<(String, String)> = sqlx::query_as("SELECT kind, status FROM sys_queues.jobs WHERE instance_id = $1 AND kind <> 'timer' ORDER BY created_at")
            .bind(s.id)
            .fetch_all(&env.pool)
            .await
            .unwrap();
        assert!(jobs.contains(&("retry".to_string(), "cancelled".to_string())), "{jobs:?}");
        let lease: Option<Uuid> = env.scalar("SELECT lease_token FROM desk.instances WHERE id = $1", s.id).await;
        assert!(lease.is_none());
        let event: String = env.scalar("SELECT event_type FROM sys_queues.outbox WHERE instance_id = $1 ORDER BY id DESC LIMIT 1", s.id).await;
        assert_eq!(event, if transition == "cancel" { "instance.canceled" } else { "instance.completed" });
    }

    // A run in flight (a lease with no job behind it) is not pre-empted.
    let s = env.start("desk", json!({})).await;
    sqlx::query("UPDATE desk.instances SET status = 'B', lease_token = gen_random_uuid(), lease_until = now() + interval '5 minutes', lease_transition = 'call' WHERE id = $1")
        .bind(s.id)
        .execute(&env.pool)
        .await
        .unwrap();
    let err = env.engine.transition(env.transition_req("desk", s.id, "cancel", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Busy { .. }), "{err:?}");
    // Nor is one whose job is running right now.
    let s = env.start("desk", json!({})).await;
    env.transition("desk", s.id, "call", json!({})).await;
    sqlx::query("UPDATE sys_queues.jobs SET status = 'running' WHERE instance_id = $1 AND kind = 'retry'").bind(s.id).execute(&env.pool).await.unwrap();
    let err = env.engine.transition(env.transition_req("desk", s.id, "cancel", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Busy { .. }), "{err:?}");
    env.cleanup().await;
}

#[tokio::test]
async fn scheduled_shared_transitions_are_armed_where_offered_and_cancelled_on_exit() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start("desk", json!({})).await;
    assert_eq!(timers(&env, s.id).await, [t("sweep", "open", "pending")], "empty availableIn: every state");
    env.transition("desk", s.id, "work", json!({})).await;
    assert_eq!(timers(&env, s.id).await, [
        t("sweep", "open", "cancelled"),
        t("nag", "working", "pending"),
        t("sweep", "working", "pending"),
    ]);
    // `nag` fires ($self): re-entering re-arms the state's timers.
    let nag: Uuid = env.scalar("SELECT id FROM sys_queues.jobs WHERE instance_id = $1 AND transition_key = 'nag' AND status = 'pending'", s.id).await;
    sqlx::query("UPDATE sys_queues.jobs SET status = 'running' WHERE id = $1").bind(nag).execute(&env.pool).await.unwrap();
    let trigger = env.engine.trigger();
    let fired = trigger.trigger(TriggerRequest {
        domain: env.domain.to_string(),
        flow: "desk".into(),
        instance_id: s.id,
        transition: "nag".into(),
        origin: TriggerOrigin::Timer,
        armed_state: Some("working".into()),
        body: Value::Null,
        job_id: nag,
        attempt: 1,
    });
    assert_eq!(fired.await.unwrap(), TriggerOutcome::Applied);
    let pending: Vec<(String, String, String)> = timers(&env, s.id).await.into_iter().filter(|j| j.2 == "pending").collect();
    assert_eq!(pending, [t("nag", "working", "pending"), t("sweep", "working", "pending")]);
    let done = env.transition("desk", s.id, "finish", json!({})).await;
    assert_eq!(done.status, InstanceStatus::Completed);
    assert!(timers(&env, s.id).await.iter().all(|j| j.2 != "pending"), "nothing stays armed after the end");
    env.cleanup().await;
}

#[tokio::test]
async fn every_write_carries_its_events() {
    let env = TestEnv::new().await;
    env.publish(&flow()).await;
    let s = env.start("desk", json!({"a": 1})).await;
    env.transition("desk", s.id, "work", json!({"b": 2})).await;
    env.transition("desk", s.id, "finish", json!({})).await;
    let events: Vec<(String, Value)> = sqlx::query_as("SELECT event_type, payload FROM sys_queues.outbox WHERE instance_id = $1 ORDER BY id")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["instance.state-changed", "instance.state-changed", "instance.state-changed", "instance.completed"]);
    let p = &events[1].1;
    assert_eq!(p["domain"], "d");
    assert_eq!(p["flow"], "desk");
    assert_eq!(p["instanceId"], json!(s.id));
    assert_eq!((p["fromState"].as_str(), p["toState"].as_str(), p["status"].as_str()), (Some("open"), Some("working"), Some("A")));
    assert_eq!((p["dataVersion"].as_str(), p["dataVersionNo"].as_i64()), (Some("1.1.0"), Some(2)));
    assert_eq!(events[0].1["fromState"], Value::Null, "a start comes from nowhere");
    assert!(events[0].1.get("fromState").is_some());
    assert!(events[3].1.get("fromState").is_none(), "only state changes carry fromState");
    let end = &events[3].1;
    assert_eq!((end["state"].as_str(), end["status"].as_str(), end["transition"].as_str()), (Some("closed"), Some("C"), Some("finish")));
    // Each event was written by the transaction that made the change.
    let same: bool = env
        .scalar("SELECT (SELECT xmin FROM desk.instances WHERE id = $1)::text = (SELECT xmin FROM sys_queues.outbox WHERE instance_id = $1 ORDER BY id DESC LIMIT 1)::text", s.id)
        .await;
    assert!(same);
    env.cleanup().await;
}
