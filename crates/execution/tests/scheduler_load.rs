//! Load check behind issue 5's timer budget: 10,000 timers due within the same
//! second, two schedulers. Ignored by default (it is a measurement, not a unit
//! test); run with `cargo nextest run -p vnext-execution --run-ignored only`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::Connection;
use vnext_init::config::Config;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_execution::scheduler::StaticDomains;
use vnext_execution::{Scheduler, SchedulerConfig};

use common::db::TestDomain;
use common::trigger::RecordingTrigger;

const JOBS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn ten_thousand_timers_due_in_one_second() {
    let domain = TestDomain::create("load").await;
    let options = (*domain.pool.connect_options()).clone();
    let trigger_pool = PgPoolOptions::new().max_connections(16).connect_with(options.clone()).await.unwrap();
    let trigger = Arc::new(RecordingTrigger::new(trigger_pool));
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    for name in ["load-a", "load-b"] {
        let pool = PgPoolOptions::new().max_connections(8).connect_with(options.clone()).await.unwrap();
        let s = Scheduler::new(
            Arc::new(StaticDomains::single(domain.name.clone(), pool)),
            trigger.clone(),
            SchedulerConfig { worker_id: name.into(), ..SchedulerConfig::default() },
        );
        handles.push(tokio::spawn(s.run(shutdown.clone())));
    }

    // Due times spread over one second, starting shortly after the insert commits.
    let first_due = Utc::now() + chrono::Duration::seconds(3);
    let ids: Vec<Uuid> = (0..JOBS).map(|_| Uuid::new_v4()).collect();
    let instances: Vec<Uuid> = (0..JOBS).map(|_| Uuid::new_v4()).collect();
    let due: Vec<chrono::DateTime<Utc>> =
        (0..JOBS).map(|i| first_due + chrono::Duration::microseconds((i as i64) * 1_000_000 / JOBS as i64)).collect();
    sqlx::query(
        "WITH j AS (
            INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, armed_state, due_at)
            SELECT id, 'timer', 'load', instance_id, 'tick', 'waiting', due_at
              FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS t(id, instance_id, due_at)
            RETURNING 1)
         SELECT pg_notify('vnext_jobs', 'timer') FROM (SELECT count(*) FROM j) c",
    )
    .bind(&ids)
    .bind(&instances)
    .bind(&due)
    .execute(&domain.pool)
    .await
    .unwrap();
    assert!(Utc::now() < first_due, "inserting took longer than the lead time");

    let last_due = *due.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_queues.jobs WHERE status = 'done'")
            .fetch_one(&domain.pool)
            .await
            .unwrap();
        if done as usize == JOBS || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let finished = Utc::now();
    shutdown.cancel();
    for h in handles {
        h.await.unwrap();
    }
    let per_job = trigger.calls_per_job();
    let lost = ids.iter().filter(|id| !per_job.contains_key(id)).count();
    let duplicated = per_job.values().filter(|&&n| n > 1).count();
    let early: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_queues.jobs WHERE finished_at < due_at")
        .fetch_one(&domain.pool)
        .await
        .unwrap();
    let lateness: (f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)::float8
           FROM (SELECT (extract(epoch FROM finished_at - due_at) * 1000)::float8 AS ms FROM sys_queues.jobs) l",
    )
    .fetch_one(&domain.pool)
    .await
    .unwrap();
    println!(
        "{JOBS} timers due within 1 s: all fired {} ms after the last due time; lateness p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; lost {lost}, duplicated {duplicated}, early {early}",
        (finished - last_due).num_milliseconds(),
        lateness.0,
        lateness.1,
        lateness.2
    );
    assert_eq!((lost, duplicated, early), (0, 0, 0));
}

/// Database transactions per second while the scheduler serves ten idle
/// domains of the registry (issue 5: at most 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; takes about a minute"]
async fn idle_cost_with_ten_domains() {
    use common::env::TestEnv;
    let env = TestEnv::new().await;
    for i in 0..10 {
        env.provision(&format!("idle{i}")).await;
    }
    let trigger = Arc::new(RecordingTrigger::new(env.dbs.control().clone()));
    let scheduler = Scheduler::new(
        Arc::new(env.dbs.clone()),
        trigger,
        SchedulerConfig { worker_id: "idle".into(), ..SchedulerConfig::from_config(&env.config) },
    );
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(scheduler.run(shutdown.clone()));
    let prefix = env.config.database.database_prefix.clone();
    let mut admin = sqlx::PgConnection::connect(&Config::load(None).unwrap().database.url).await.unwrap();
    let mut count = async || -> i64 {
        sqlx::query_scalar(
            "SELECT sum(xact_commit + xact_rollback)::int8 FROM pg_stat_database WHERE starts_with(datname, $1)",
        )
        .bind(&prefix)
        .fetch_one(&mut admin)
        .await
        .unwrap()
    };
    // Warm-up: the first lease scans and listeners, and stats of the setup flushed.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let window = Duration::from_secs(40);
    let before = count().await;
    tokio::time::sleep(window).await;
    let after = count().await;
    shutdown.cancel();
    running.await.unwrap();
    let rate = (after - before) as f64 / window.as_secs_f64();
    println!("idle with 10 domains: {} transactions in {} s = {rate:.2}/s", after - before, window.as_secs());
    assert!(rate <= 10.0, "{rate}/s");
}
