//! The hot path, measured (printed, never asserted): a manual transition with
//! a 1 KB body and no tasks, and a start→final auto chain with script tasks.
//! Also checks the cost rule behind the numbers: such a transition commits once.

use crate::engine_support;

use std::time::Instant;

use engine_support::*;
use serde_json::{json, Value};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The transactions that wrote the instance row and its newest history and
/// task-run rows (`xmin` is the writing transaction): one means one commit.
async fn writers(env: &TestEnv, schema: &str, id: uuid::Uuid, hops: i64) -> i64 {
    let sql = format!(
        "SELECT count(DISTINCT x) FROM (\
           SELECT xmin::text AS x FROM {schema}.instances WHERE id = $1 \
           UNION ALL SELECT xmin::text FROM (SELECT xmin FROM {schema}.transitions WHERE instance_id = $1 ORDER BY seq DESC LIMIT {hops}) h \
           UNION ALL SELECT xmin::text FROM {schema}.task_runs WHERE instance_id = $1) w"
    );
    env.scalar(&sql, id).await
}

/// The instance table's updates and heap-only (HOT) updates so far, once the
/// statistics cover at least `updates` of them (backends report them when idle,
/// within about ten seconds).
async fn update_counts(env: &TestEnv, schema: &str, updates: i64) -> (i64, i64) {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (all, hot): (i64, i64) = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'instances'",
        )
        .bind(schema)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if all >= updates || Instant::now() > deadline {
            return (all, hot);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn state_changing_transitions_update_the_instance_row_heap_only() {
    let env = TestEnv::new().await;
    let pair = workflow("hotpair", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("idle"),
        "states": [state("idle", 1, json!([manual("go", "busy")])), state("busy", 2, json!([manual("back", "idle")]))]
    }));
    env.publish(&[pair]).await;
    let body: Value = json!({"payload": "x".repeat(1000)});
    let s = env.start("hotpair", json!({})).await;
    for i in 0..40 {
        let moved = env.transition("hotpair", s.id, if i % 2 == 0 { "go" } else { "back" }, body.clone()).await;
        assert_eq!(moved.current_state, if i % 2 == 0 { "busy" } else { "idle" });
    }
    let (all, hot) = update_counts(&env, "hotpair", 40).await;
    assert!(all >= 40, "the statistics never showed the 40 updates: {all}");
    // Every transition changed the state; none changed an indexed column. A
    // page now and then has no room left before pruning: allow a few.
    assert!(hot as f64 >= 0.9 * all as f64, "{hot} of {all} instance updates were heap-only");
    env.cleanup().await;
}

#[tokio::test]
async fn manual_transitions_and_auto_chains() {
    let env = TestEnv::new().await;
    let chain = |key: &str, target: &str| json!({"key": key, "target": target, "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": label()});
    let rule = |key: &str, target: &str, src: &str| json!({"key": key, "target": target, "triggerType": 1, "versionStrategy": "None", "labels": label(), "rule": nat(src)});
    let pair = workflow("loop2", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("idle"),
        "states": [state("idle", 1, json!([manual("go", "busy")])), state("busy", 2, json!([manual("back", "idle")]))]
    }));
    let five = workflow("five", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("s1"),
        "states": [
            {"key": "s1", "stateType": 1, "versionStrategy": "None", "labels": label(),
             "onEntries": [log_entry(1, "s1")], "transitions": [rule("r1", "s2", "fn handler(ctx) { ctx.instance.data.log.len() > 0 }"), chain("d1", "s5")]},
            {"key": "s2", "stateType": 2, "versionStrategy": "None", "labels": label(), "transitions": [chain("d2", "s3")]},
            {"key": "s3", "stateType": 2, "versionStrategy": "None", "labels": label(),
             "onEntries": [log_entry(1, "s3")], "transitions": [rule("r3", "s4", "fn handler(ctx) { ctx.instance.data.log.len() == 2 }"), chain("d3", "s5")]},
            {"key": "s4", "stateType": 2, "versionStrategy": "None", "labels": label(), "transitions": [chain("d4", "s5")]},
            state("s5", 3, json!([]))
        ]
    }));
    env.publish(&[script_task("logger"), pair, five]).await;

    let body: Value = json!({"payload": "x".repeat(1000)});
    let s = env.start("loop2", json!({})).await;
    // Warm up (compiles the definition, prepares statements).
    for i in 0..20 {
        env.transition("loop2", s.id, if i % 2 == 0 { "go" } else { "back" }, body.clone()).await;
    }
    env.transition("loop2", s.id, "go", body.clone()).await;
    assert_eq!(writers(&env, "loop2", s.id, 1).await, 1, "a transition without I/O must commit exactly once");
    env.transition("loop2", s.id, "back", body.clone()).await;

    // Engine and raw SQL alternate, so both see the same machine load. Raw SQL
    // writes another instance, whose history numbers it owns.
    let raw_id = env.start("loop2", json!({})).await.id;
    let (mut times, mut raw) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let t0 = Instant::now();
        env.transition("loop2", s.id, if i % 2 == 0 { "go" } else { "back" }, body.clone()).await;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);

        // The same writes as raw SQL: update the row, append one history row, commit.
        let t0 = Instant::now();
        let mut tx = env.pool.begin().await.unwrap();
        sqlx::query("UPDATE loop2.instances SET data = $2, current_state = $3, modified_at = now() WHERE id = $1")
            .bind(raw_id)
            .bind(&body)
            .bind(if i % 2 == 0 { "busy" } else { "idle" })
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO loop2.transitions (id, instance_id, seq, transition_key, to_state, trigger_type, origin, body, started_at, finished_at, duration_ms) \
             VALUES (gen_random_uuid(), $1, 100 + $2, 'raw', 'x', 0, 'raw', $3, now(), now(), 0)",
        )
        .bind(raw_id)
        .bind(i as i64)
        .bind(&body)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        raw.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let (engine_ms, raw_ms) = (median(times), median(raw));
    println!("manual transition (1 KB body, no tasks): median {engine_ms:.3} ms over 200");
    println!("raw update + insert + commit: median {raw_ms:.3} ms over 200 (engine/raw throughput ratio {:.2})", raw_ms / engine_ms);

    for _ in 0..10 {
        env.start("five", json!({"log": []})).await;
    }
    let s = env.start("five", json!({"log": []})).await;
    assert_eq!(s.current_state, "s5");
    let hops: i64 = env.scalar("SELECT count(*) FROM five.transitions WHERE instance_id = $1", s.id).await;
    assert_eq!(hops, 5);
    assert_eq!(writers(&env, "five", s.id, 5).await, 1, "a start with its whole auto-chain must commit exactly once");
    let mut times = Vec::new();
    for _ in 0..100 {
        let t0 = Instant::now();
        let s = env.start("five", json!({"log": []})).await;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(s.current_state, "s5");
    }
    println!("start → final, 4 auto hops, 2 script tasks: median {:.3} ms over 100", median(times));
    env.cleanup().await;
}
