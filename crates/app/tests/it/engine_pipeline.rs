//! The transition pipeline against a real PostgreSQL: step order, merge and
//! data versions, automatic chains, updateData, history.

use crate::engine_support;

use engine_support::*;
use serde_json::{json, Value};
use vnext_app::engine::{EngineError, InstanceStatus};

/// A workflow whose every step appends its name to `data.log`.
fn steps_flow() -> Vec<Value> {
    let wf = workflow("steps", "1.0.0", json!({
        "type": "F",
        "labels": label(),
        "startTransition": {
            "key": "begin", "target": "a", "triggerType": 0, "versionStrategy": "Minor", "labels": label(),
            "onExecutionTasks": [log_entry(1, "start-exec")]
        },
        "states": [
            {
                "key": "a", "stateType": 1, "versionStrategy": "None", "labels": label(),
                "onEntries": [log_entry(2, "a-entry-2"), log_entry(1, "a-entry-1a"), log_entry(1, "a-entry-1b")],
                "onExits": [log_entry(1, "a-exit")],
                "transitions": [{
                    "key": "go", "target": "b", "triggerType": 0, "versionStrategy": "Major", "labels": label(),
                    "schema": {"key": "go-payload", "domain": DOMAIN, "flow": "sys-schemas", "version": "1.0.0"},
                    "mapping": nat("fn handler(ctx) { #{ amount: ctx.body.amount, mapped: true } }"),
                    "onExecutionTasks": [log_entry(1, "go-exec")]
                }]
            },
            {
                "key": "b", "stateType": 2, "versionStrategy": "None", "labels": label(),
                "onEntries": [log_entry(1, "b-entry")],
                "onExits": [log_entry(1, "b-exit")],
                "transitions": [
                    {"key": "to-small", "target": "small", "triggerType": 1, "triggerKind": 10, "versionStrategy": "Patch", "labels": label()},
                    {"key": "to-big", "target": "big", "triggerType": 1, "versionStrategy": "Patch", "labels": label(),
                     "rule": nat("fn handler(ctx) { ctx.instance.data.amount > 100 }")}
                ]
            },
            {"key": "big", "stateType": 3, "versionStrategy": "None", "labels": label(), "onEntries": [log_entry(1, "big-entry")]},
            {"key": "small", "stateType": 3, "versionStrategy": "None", "labels": label(), "onEntries": [log_entry(1, "small-entry")]}
        ],
        "updateData": {"key": "update", "target": "$self", "triggerType": 0, "versionStrategy": "Patch", "labels": label(),
                       "onExecutionTasks": [log_entry(1, "update-exec")]}
    }));
    let payload = schema("go-payload", json!({
        "type": "object", "required": ["amount"],
        "properties": {"amount": {"type": "number", "minimum": 0}, "note": {"type": "string"}}
    }));
    vec![script_task("logger"), payload, wf]
}

fn log(s: &vnext_app::engine::InstanceSnapshot) -> Vec<String> {
    serde_json::from_value(s.data["log"].clone()).unwrap()
}

#[tokio::test]
async fn steps_run_in_pipeline_order_and_rules_pick_the_branch() {
    let env = TestEnv::new().await;
    env.publish(&steps_flow()).await;

    let s = env.start("steps", json!({"log": ["body"]})).await;
    assert_eq!(s.current_state, "a");
    assert_eq!(s.status, InstanceStatus::Active);
    assert_eq!(log(&s), ["body", "start-exec", "a-entry-1a", "a-entry-1b", "a-entry-2"]);
    assert_eq!((s.data_version.as_str(), s.data_version_no), ("1.0.0", 1));

    // Rule branch: amount > 100 → big. The mapping's result is merged, not the raw body.
    let s = env.transition("steps", s.id, "go", json!({"amount": 500, "note": "raw"})).await;
    assert_eq!(s.current_state, "big");
    assert_eq!(s.status, InstanceStatus::Completed);
    assert!(s.completed_at.is_some());
    assert_eq!(s.data["mapped"], json!(true));
    assert!(s.data.get("note").is_none(), "raw body must not be merged when a mapping exists");
    assert_eq!(
        log(&s)[5..],
        ["go-exec", "a-exit", "b-entry", "b-exit", "big-entry"].map(String::from)
    );
    // go (Major) then the auto hop (Patch), each changed data.
    assert_eq!((s.data_version.as_str(), s.data_version_no), ("2.0.1", 3));

    type Hop = (i64, String, Option<String>, String, String, i16, bool, Option<i64>);
    let rows: Vec<Hop> = sqlx::query_as(
        "SELECT seq, transition_key, from_state, to_state, origin, trigger_type, data IS NOT NULL, data_version_no \
         FROM steps.transitions WHERE instance_id = $1 ORDER BY seq",
    )
    .bind(s.id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "begin".into(), None, "a".into(), "api".into(), 0, true, Some(1)),
            (2, "go".into(), Some("a".into()), "b".into(), "api".into(), 0, true, Some(2)),
            (3, "to-big".into(), Some("b".into()), "big".into(), "auto".into(), 1, true, Some(3)),
        ]
    );
    // Every data version is readable back from history.
    let v2: Value = sqlx::query_scalar("SELECT data FROM steps.transitions WHERE instance_id = $1 AND data_version_no = 2")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(v2["log"].as_array().unwrap().last().unwrap(), "b-entry");
    let runs: i64 = env.scalar("SELECT count(*) FROM steps.task_runs WHERE instance_id = $1 AND status = 'succeeded'", s.id).await;
    assert_eq!(runs, 9);

    // Default branch: no rule matched → the triggerKind 10 transition.
    let s = env.start("steps", json!({"log": []})).await;
    let s = env.transition("steps", s.id, "go", json!({"amount": 5})).await;
    assert_eq!(s.current_state, "small");
    assert_eq!(log(&s).last().unwrap(), "small-entry");
    env.cleanup().await;
}

#[tokio::test]
async fn payload_errors_carry_pointers_and_change_nothing() {
    let env = TestEnv::new().await;
    env.publish(&steps_flow()).await;
    let s = env.start("steps", json!({"log": []})).await;
    let err = env.engine.transition(env.transition_req("steps", s.id, "go", json!({"amount": -1, "note": 5}))).await.unwrap_err();
    match err {
        EngineError::InvalidPayload { transition, errors } => {
            assert_eq!(transition, "go");
            let mut pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
            pointers.sort();
            assert_eq!(pointers, ["/amount", "/note"]);
        }
        other => panic!("{other:?}"),
    }
    let err = env.engine.transition(env.transition_req("steps", s.id, "go", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidPayload { .. }), "{err:?}");
    let state: String = env.scalar("SELECT current_state FROM steps.instances WHERE id = $1", s.id).await;
    assert_eq!(state, "a");
    let hops: i64 = env.scalar("SELECT count(*) FROM steps.transitions WHERE instance_id = $1", s.id).await;
    assert_eq!(hops, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn gate_errors_name_what_is_available() {
    let env = TestEnv::new().await;
    env.publish(&steps_flow()).await;
    let s = env.start("steps", json!({"log": []})).await;
    let err = env.engine.transition(env.transition_req("steps", s.id, "nope", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::UnknownTransition { .. }), "{err:?}");
    // An automatic transition of another state is not client-callable here.
    let err = env.engine.transition(env.transition_req("steps", s.id, "to-big", json!({}))).await.unwrap_err();
    match err {
        EngineError::NotAvailable { state, available, .. } => {
            assert_eq!(state, "a");
            assert_eq!(available, ["go", "update"]);
        }
        other => panic!("{other:?}"),
    }
    let err = env.engine.transition(env.transition_req("steps", uuid::Uuid::new_v4(), "go", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::UnknownInstance { .. }), "{err:?}");
    let err = env.engine.start(env.start_req("ghost", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::UnknownFlow { .. }), "{err:?}");
    env.cleanup().await;
}

#[tokio::test]
async fn deep_merge_and_update_data_is_data_only() {
    let env = TestEnv::new().await;
    env.publish(&steps_flow()).await;
    let s = env.start("steps", json!({"log": [], "customer": {"name": "ada", "tags": ["x", "y"]}})).await;
    let before_exec = log(&s).len();
    let s2 = env.transition("steps", s.id, "updateData", json!({"customer": {"age": 36, "tags": ["z"]}})).await;
    assert_eq!(s2.current_state, "a");
    assert_eq!(s2.data["customer"], json!({"name": "ada", "tags": ["z"], "age": 36}));
    // Only the updateData execution task ran: no exits, no entries.
    assert_eq!(log(&s2)[before_exec..], ["update-exec".to_string()]);
    assert_eq!((s2.data_version.as_str(), s2.data_version_no), ("1.0.1", 2));
    assert_ne!(s2.etag, s.etag);
    env.cleanup().await;
}

#[tokio::test]
async fn auto_chain_past_the_cap_commits_nothing() {
    let env = TestEnv::with_config(|c| c.runtime.max_auto_chain_depth = 5).await;
    let auto = |key: &str, target: &str| json!({"key": key, "target": target, "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": label()});
    let wf = workflow("loop", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("idle"),
        "states": [
            state("idle", 1, json!([manual("spin", "ping")])),
            {"key": "ping", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [log_entry(1, "ping")], "transitions": [auto("to-pong", "pong")]},
            state("pong", 2, json!([auto("to-ping", "ping")]))
        ]
    }));
    env.publish(&[script_task("logger"), wf]).await;
    let s = env.start("loop", json!({"log": []})).await;
    let err = env.engine.transition(env.transition_req("loop", s.id, "spin", json!({"x": 1}))).await.unwrap_err();
    match err {
        EngineError::ChainTooDeep { depth, .. } => assert_eq!(depth, 5),
        other => panic!("{other:?}"),
    }
    let (state, data, etag): (String, Value, String) =
        sqlx::query_as("SELECT current_state, data, etag FROM loop.instances WHERE id = $1").bind(s.id).fetch_one(&env.pool).await.unwrap();
    assert_eq!((state.as_str(), data, etag), ("idle", json!({"log": []}), s.etag.clone()));
    let hops: i64 = env.scalar("SELECT count(*) FROM loop.transitions WHERE instance_id = $1", s.id).await;
    let runs: i64 = env.scalar("SELECT count(*) FROM loop.task_runs WHERE instance_id = $1", s.id).await;
    assert_eq!((hops, runs), (1, 0));
    env.cleanup().await;
}
