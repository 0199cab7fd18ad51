//! Instance lifecycle: concurrency, idempotent start, version pinning, runaway
//! scripts, async requests.

use crate::engine_support;

use engine_support::*;
use serde_json::{json, Value};
use vnext_app::engine::{EngineError, InstanceRef, InstanceStatus, Outcome};

fn two_state(version: &str, extra_state: Option<&str>) -> Value {
    let mut states = vec![
        state("idle", 1, json!([manual("go", "next"), {
            "key": "spin", "target": "$self", "triggerType": 0, "versionStrategy": "None", "labels": label(),
            "mapping": nat("fn handler(ctx) { let s = \"x\"; loop { s += s; } }")
        }, {
            "key": "hang", "target": "$self", "triggerType": 0, "versionStrategy": "None", "labels": label(),
            "mapping": nat("fn handler(ctx) { let n = 0; loop { n += 1; } }")
        }])),
        state("next", 2, json!([manual("back", "idle")])),
    ];
    if let Some(s) = extra_state {
        states.push(state(s, 3, json!([])));
        states[1]["transitions"].as_array_mut().unwrap().push(manual("finish", s));
    }
    workflow("pair", version, json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("idle"),
        "states": states
    }))
}

#[tokio::test]
async fn fifty_concurrent_transitions_apply_once() {
    let env = TestEnv::new().await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let s = env.start("pair", json!({})).await;
    let mut handles = Vec::new();
    for i in 0..50 {
        let engine = env.engine.clone();
        let req = env.transition_req("pair", s.id, "go", json!({"n": i}));
        handles.push(tokio::spawn(async move { engine.transition(req).await }));
    }
    let (mut ok, mut busy, mut gone) = (0, 0, 0);
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(EngineError::Busy { .. }) => busy += 1,
            Err(EngineError::NotAvailable { .. }) => gone += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1, "busy {busy}, not available {gone}");
    assert_eq!(busy + gone, 49);
    let hops: i64 = env.scalar("SELECT count(*) FROM pair.transitions WHERE instance_id = $1 AND transition_key = 'go'", s.id).await;
    assert_eq!(hops, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn start_with_an_existing_key_returns_that_instance() {
    let env = TestEnv::new().await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let mut req = env.start_req("pair", json!({"a": 1}));
    req.key = Some("order-42".into());
    let first = done(env.engine.start(req.clone()).await.unwrap());
    req.attributes = json!({"a": 2});
    let again = done(env.engine.start(req.clone()).await.unwrap());
    assert_eq!(again.id, first.id);
    assert_eq!(again.data, json!({"a": 1}));
    // By key, too.
    let mut t = env.transition_req("pair", first.id, "go", json!({}));
    t.instance = InstanceRef::Key("order-42".into());
    assert_eq!(done(env.engine.transition(t).await.unwrap()).current_state, "next");
    // Concurrent starts with one key create one instance.
    req.key = Some("order-43".into());
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (e, r) = (env.engine.clone(), req.clone());
        handles.push(tokio::spawn(async move { done(e.start(r).await.unwrap()).id }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pair.instances WHERE key = 'order-43'").fetch_one(&env.pool).await.unwrap();
    assert_eq!(n, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn instances_stay_on_the_version_they_started_with() {
    let env = TestEnv::new().await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let v1 = env.start("pair", json!({})).await;
    assert_eq!(v1.flow_version, "1.0.0");
    env.publish(&[two_state("2.0.0", Some("done"))]).await;
    let v2 = env.start("pair", json!({})).await;
    assert_eq!(v2.flow_version, "2.0.0");
    let mut req = env.start_req("pair", json!({}));
    req.version = Some("1".into());
    assert_eq!(done(env.engine.start(req).await.unwrap()).flow_version, "1.0.0");

    // The v1 instance runs v1's definition: `finish` exists only in v2.
    let s = env.transition("pair", v1.id, "go", json!({})).await;
    assert_eq!((s.flow_version.as_str(), s.current_state.as_str()), ("1.0.0", "next"));
    let err = env.engine.transition(env.transition_req("pair", v1.id, "finish", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::UnknownTransition { .. }), "{err:?}");
    env.transition("pair", v2.id, "go", json!({})).await;
    let s = env.transition("pair", v2.id, "finish", json!({})).await;
    assert_eq!(s.status, InstanceStatus::Completed);
    let err = env.engine.transition(env.transition_req("pair", v2.id, "back", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Finished { .. }), "{err:?}");
    env.cleanup().await;
}

#[tokio::test]
async fn runaway_scripts_stop_with_a_clear_error_and_change_nothing() {
    let env = TestEnv::with_config(|c| {
        c.runtime.script_timeout_ms = 300;
        c.runtime.script_max_operations = 50_000_000;
    })
    .await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let s = env.start("pair", json!({"k": 1})).await;
    for transition in ["spin", "hang"] {
        let t0 = std::time::Instant::now();
        let err = env.engine.transition(env.transition_req("pair", s.id, transition, json!({}))).await.unwrap_err();
        assert!(t0.elapsed().as_secs() < 10, "a runaway script must be stopped within a bound");
        match &err {
            EngineError::Script { location, message } => {
                assert_eq!(location, "./src/inline.rhai");
                assert!(message.contains("script stopped"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let (state, data, etag, status): (String, Value, String, String) =
        sqlx::query_as("SELECT current_state, data, etag, status::text FROM pair.instances WHERE id = $1")
            .bind(s.id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), data, etag, status.as_str()), ("idle", json!({"k": 1}), s.etag.clone(), "A"));
    env.cleanup().await;
}

#[tokio::test]
async fn async_requests_are_accepted_then_run() {
    let env = TestEnv::new().await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let mut req = env.start_req("pair", json!({"a": 1}));
    req.sync = false;
    let id = match env.engine.start(req).await.unwrap() {
        Outcome::Accepted { id, status } => {
            assert_eq!(status, InstanceStatus::Busy);
            id
        }
        other => panic!("{other:?}"),
    };
    let pool = env.pool.clone();
    eventually(10, || async {
        let row: Option<(String, String)> = sqlx::query_as("SELECT status::text, current_state FROM pair.instances WHERE id = $1")
            .bind(id)
            .fetch_optional(&pool)
            .await
            .unwrap();
        row.filter(|(s, _)| s == "A")
    })
    .await;

    let mut t = env.transition_req("pair", id, "go", json!({"b": 2}));
    t.sync = false;
    assert!(matches!(env.engine.transition(t).await.unwrap(), Outcome::Accepted { .. }));
    let (state, data): (String, Value) = eventually(10, || async {
        let row: (String, String, Value) = sqlx::query_as("SELECT status::text, current_state, data FROM pair.instances WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        (row.0 == "A" && row.1 == "next").then_some((row.1, row.2))
    })
    .await;
    assert_eq!((state.as_str(), data), ("next", json!({"a": 1, "b": 2})));
    let jobs: Vec<(String, String)> = sqlx::query_as("SELECT kind, status FROM sys_queues.jobs WHERE instance_id = $1 ORDER BY created_at")
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, vec![("async".into(), "done".into()), ("async".into(), "done".into())]);
    let origins: Vec<String> = sqlx::query_scalar("SELECT origin FROM pair.transitions WHERE instance_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(origins, ["async", "async"]);
    // An invalid async request is refused up front.
    let mut bad = env.transition_req("pair", id, "nope", json!({}));
    bad.sync = false;
    assert!(matches!(env.engine.transition(bad).await, Err(EngineError::UnknownTransition { .. })));
    env.cleanup().await;
}

#[tokio::test]
async fn a_publish_elsewhere_invalidates_cached_definitions() {
    let env = TestEnv::new().await;
    env.publish(&[two_state("1.0.0", None)]).await;
    assert_eq!(env.start("pair", json!({})).await.flow_version, "1.0.0");
    assert_eq!(env.start("pair", json!({})).await.flow_version, "1.0.0");
    // Published by another process: only the domain's publish revision tells
    // this engine, at its next comparison.
    vnext_init::components::publish(&env.pool, &two_state("2.0.0", Some("done")).to_string()).await.unwrap();
    eventually(10, || async { (env.start("pair", json!({})).await.flow_version == "2.0.0").then_some(()) }).await;
    // No connection is held per domain to learn about publishes.
    let db = env.dbs.database_name(&env.domain);
    let mut admin = env.admin_domain().await;
    let listening: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'")
        .bind(&db)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(listening, 0);
    env.cleanup().await;
}

#[tokio::test]
async fn a_cold_definition_cache_needs_no_second_connection() {
    // One connection per domain, and a short wait for it: a transition that
    // loaded its workflow on a second pooled connection while holding its
    // row lock on the first would time out.
    let env = TestEnv::with_config(|c| {
        c.database.max_connections_per_domain = 1;
        c.database.acquire_timeout_seconds = 2;
        c.runtime.definitions_recheck_ms = 0;
    })
    .await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let started = env.start("pair", json!({})).await;
    env.engine.invalidate(&env.domain).await;
    let moved = env.transition("pair", started.id, "go", json!({})).await;
    assert_eq!(moved.current_state, "next");
    // Published elsewhere: the revision check also runs on the held connection.
    vnext_init::components::publish(&env.pool, &two_state("2.0.0", Some("done")).to_string()).await.unwrap();
    let back = env.transition("pair", started.id, "back", json!({})).await;
    assert_eq!(back.current_state, "idle");
    env.cleanup().await;
}

#[tokio::test]
async fn a_start_with_no_free_connection_is_unavailable_and_writes_nothing() {
    let env = TestEnv::with_config(|c| {
        c.database.max_connections_per_domain = 1;
        c.database.acquire_timeout_seconds = 1;
    })
    .await;
    env.publish(&[two_state("1.0.0", None)]).await;
    let held = env.pool.acquire().await.unwrap();
    let err = env.engine.start(env.start_req("pair", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    drop(held);
    // Nothing half-written: no instance row (nor even the flow's table yet).
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('pair.instances')::text").fetch_one(&env.pool).await.unwrap();
    if table.is_some() {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM pair.instances").fetch_one(&env.pool).await.unwrap();
        assert_eq!(rows, 0);
    }
    // With the connection back, the same start succeeds.
    assert_eq!(env.start("pair", json!({})).await.flow_version, "1.0.0");
    env.cleanup().await;
}
