//! 1,000 timers due at once, fired by two execution processes against one app
//! (the three services as processes): each fires its transition exactly once.
//!
//! The instances are started while no execution service runs, each arming a
//! one-second timer; once every timer is due, two execution processes start
//! together and share the backlog (small claim batches so that both take part).
//! The flow schema's transition rows are then counted per instance.

use crate::e2e_support;

use std::time::{Duration, Instant};

use e2e_support::*;
use futures::StreamExt;
use serde_json::json;

const D: &str = "e2e";
const N: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_due_timers_fire_once_each_with_two_execution_processes() {
    let tick = workflow(
        D,
        "tick",
        "waiting",
        json!([state("waiting", 1, json!([scheduled("ring", "rang", json!({ "duration": "PT1S" }))])), final_state("rang")]),
        json!({}),
    );
    let mut s = Services::start(
        &[tick],
        &[
            ("VNEXT_EXECUTION__IDLE_POLL_SECONDS", "1"),
            ("VNEXT_EXECUTION__JOB_BATCH_SIZE", "50"),
            // Short claims (2 s): a delivery that runs longer is claimed again
            // by the other process while in flight (at-least-once); that must
            // not fire a second transition.
            ("VNEXT_EXECUTION__JOB_LOCK_SECONDS", "2"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let api = instances_url(&s.app_url, D, "tick");

    let t0 = Instant::now();
    let started: Vec<(u16, serde_json::Value)> = futures::stream::iter(0..N)
        .map(|n| send(client.post(format!("{api}/start?sync=true")).json(&json!({ "key": format!("tick-{n}"), "attributes": { "n": n } }))))
        .buffer_unordered(16)
        .collect()
        .await;
    for (status, body) in &started {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(at(body), ("waiting", "A"), "{body}");
    }
    eprintln!("{N} instances started in {:?}", t0.elapsed());

    // Every timer armed and due, none fired (no execution service runs yet).
    let mut db = domain_db(&s.prefix.0, D).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (armed, due): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE due_at <= now()) FROM sys_queues.jobs WHERE kind = 'timer' AND status = 'pending'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert_eq!(armed, N as i64, "one pending timer per instance");
        if due == armed {
            break;
        }
        assert!(Instant::now() < deadline, "timers never came due: {due} of {armed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let t1 = Instant::now();
    s.spawn_executions(&[true, false]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (open,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM sys_queues.jobs WHERE kind = 'timer' AND status IN ('pending', 'running')")
                .fetch_one(&mut db)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} timers still open\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{N} due timers settled {:?} after the execution processes started", t1.elapsed());

    // Exactly one `ring` per instance, and every instance rang.
    let rings: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT n, count(*) FROM (SELECT i.id, count(t.id) AS n FROM tick.instances i
                LEFT JOIN tick.transitions t ON t.instance_id = i.id AND t.transition_key = 'ring' GROUP BY i.id) per
          GROUP BY n ORDER BY n",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(rings, [(1, N as i64)], "(rings per instance, instances)");
    let (rang,): (i64,) = sqlx::query_as("SELECT count(*) FROM tick.instances WHERE status = 'C' AND current_state = 'rang'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(rang, N as i64);

    // Every job done, none failed, and both processes took part.
    let by_worker: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT status, locked_by, count(*), count(*) FILTER (WHERE attempts > 1)
           FROM sys_queues.jobs WHERE kind = 'timer' GROUP BY status, locked_by ORDER BY locked_by",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    eprintln!("timer jobs (status, worker, jobs, delivered more than once): {by_worker:?}");
    assert!(by_worker.iter().all(|(status, ..)| status == "done"), "{by_worker:?}");
    let workers: std::collections::BTreeSet<&str> = by_worker.iter().filter_map(|(_, w, ..)| w.as_deref()).collect();
    assert_eq!(workers.len(), 2, "both processes fired jobs: {by_worker:?}");

    // The API agrees for a sample.
    for n in [0, N / 2, N - 1] {
        let (_, v) = send(client.get(format!("{api}/tick-{n}"))).await;
        assert_eq!(at(&v), ("rang", "C"), "{v}");
    }
}
