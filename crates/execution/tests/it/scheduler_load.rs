//! Measurements behind issue 5's budgets: 10,000 timers due within the same
//! second with two schedulers, and the idle cost. Ignored by default (they are
//! measurements, not unit tests); run with
//! `cargo nextest run -p vnext-execution --test scheduler_load --run-ignored only --no-capture`.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_core::traits::{TransitionTrigger, TriggerError, TriggerOutcome, TriggerRequest};
use vnext_execution::scheduler::StaticDomains;
use vnext_execution::{Scheduler, SchedulerConfig};
use vnext_init::config::Config;

use common::db::TestDomain;
use common::trigger::RecordingTrigger;

const JOBS: usize = 10_000;
/// Connections of the test trigger: the default `max_connections_per_domain`,
/// which bounds the app's transitions per domain under `vnext up`.
const TRIGGER_CONNECTIONS: u32 = 16;

/// Answers `Applied` without touching the database: what is left is the
/// scheduler's own work (claims and settlements).
#[derive(Default)]
struct CountingTrigger {
    calls: Mutex<HashMap<Uuid, usize>>,
}

impl TransitionTrigger for CountingTrigger {
    fn trigger(&self, request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>> {
        *self.calls.lock().unwrap().entry(request.job_id).or_default() += 1;
        Box::pin(async { Ok(TriggerOutcome::Applied) })
    }
}

/// Inserts `JOBS` timers due over one second, starting 3 s from now, and
/// returns their ids and due times.
async fn insert_timers(pool: &PgPool) -> (Vec<Uuid>, Vec<DateTime<Utc>>) {
    let first_due = Utc::now() + chrono::Duration::seconds(3);
    let ids: Vec<Uuid> = (0..JOBS).map(|_| Uuid::new_v4()).collect();
    let instances: Vec<Uuid> = (0..JOBS).map(|_| Uuid::new_v4()).collect();
    let due: Vec<DateTime<Utc>> =
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
    .execute(pool)
    .await
    .unwrap();
    assert!(Utc::now() < first_due, "inserting took longer than the lead time");
    (ids, due)
}

/// Runs two schedulers over `domain` with `trigger` until every timer is done,
/// prints the figures and checks that none was lost, duplicated or early.
async fn two_schedulers_fire_10k(
    domain: &TestDomain,
    trigger: Arc<dyn TransitionTrigger>,
    calls: impl Fn() -> HashMap<Uuid, usize>,
    label: &str,
) {
    let options = (*domain.pool.connect_options()).clone();
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    for name in ["load-a", "load-b"] {
        let pool = PgPoolOptions::new().max_connections(2).connect_with(options.clone()).await.unwrap();
        let s = Scheduler::new(
            Arc::new(StaticDomains::single(domain.name.clone(), pool)),
            trigger.clone(),
            SchedulerConfig { worker_id: name.into(), ..SchedulerConfig::default() },
        );
        handles.push(tokio::spawn(s.run(shutdown.clone())));
    }
    let (ids, due) = insert_timers(&domain.pool).await;
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
    shutdown.cancel();
    for h in handles {
        h.await.unwrap();
    }
    let per_job = calls();
    let lost = ids.iter().filter(|id| !per_job.contains_key(id)).count();
    let duplicated = per_job.values().filter(|&&n| n > 1).count();
    let (early, last_finished, first_finished): (i64, DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE finished_at < due_at), max(finished_at), min(finished_at) FROM sys_queues.jobs",
    )
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
    let span = (last_finished - first_finished).num_milliseconds().max(1) as f64 / 1000.0;
    println!(
        "{label}: {JOBS} timers due within 1 s: all fired {} ms after the last due time; lateness p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {:.0} jobs/s while firing; lost {lost}, duplicated {duplicated}, early {early}",
        (last_finished - last_due).num_milliseconds(),
        lateness.0,
        lateness.1,
        lateness.2,
        JOBS as f64 / span,
    );
    assert_eq!((lost, duplicated, early), (0, 0, 0));
}

/// Transactions per second updating one row each (begin, update, commit: the
/// test trigger's shape) from `connections` connections for `window`: the
/// ceiling for triggers that commit one transaction per job.
async fn raw_commit_rate(domain: &TestDomain, connections: u32, window: Duration) -> f64 {
    sqlx::query("CREATE TABLE load_raw (id int PRIMARY KEY, n int NOT NULL)").execute(&domain.pool).await.unwrap();
    sqlx::query("INSERT INTO load_raw SELECT g, 0 FROM generate_series(1, 10000) g").execute(&domain.pool).await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect_with((*domain.pool.connect_options()).clone())
        .await
        .unwrap();
    let until = Instant::now() + window;
    let workers: Vec<_> = (0..connections)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut conn = pool.acquire().await.unwrap();
                while Instant::now() < until {
                    let id = (w as i64 * 7919 + n as i64 * 31) % 10000 + 1;
                    let mut tx = conn.begin().await.unwrap();
                    sqlx::query("UPDATE load_raw SET n = n + 1 WHERE id = $1").bind(id as i32).execute(&mut *tx).await.unwrap();
                    tx.commit().await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    pool.close().await;
    total as f64 / window.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn ten_thousand_timers_due_in_one_second() {
    let domain = TestDomain::create("load").await;
    let raw = raw_commit_rate(&domain, TRIGGER_CONNECTIONS, Duration::from_secs(3)).await;
    println!("raw one-row transactions with {TRIGGER_CONNECTIONS} connections: {raw:.0}/s");
    let options = (*domain.pool.connect_options()).clone();
    let trigger_pool = PgPoolOptions::new().max_connections(TRIGGER_CONNECTIONS).connect_with(options).await.unwrap();
    let trigger = Arc::new(RecordingTrigger::new(trigger_pool));
    let recorded = trigger.clone();
    two_schedulers_fire_10k(&domain, trigger, || recorded.calls_per_job(), "one commit per job").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn ten_thousand_timers_scheduler_alone() {
    let domain = TestDomain::create("loadnop").await;
    let trigger = Arc::new(CountingTrigger::default());
    let counted = trigger.clone();
    two_schedulers_fire_10k(&domain, trigger, || counted.calls.lock().unwrap().clone(), "trigger without database work")
        .await;
}

/// Database transactions per second while the scheduler serves ten idle
/// domains of the registry (issue 5: at most 10), listened and polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; takes about two minutes"]
async fn idle_cost_with_ten_domains() {
    use common::env::TestEnv;
    let env = TestEnv::new().await;
    for i in 0..10 {
        env.provision(&format!("idle{i}")).await;
    }
    let prefix = env.config.database.database_prefix.clone();
    let mut admin = sqlx::PgConnection::connect(&Config::load(None).unwrap().database.url).await.unwrap();
    for (label, listener_idle) in [("listened", Duration::from_secs(3600)), ("polled", Duration::from_secs(1))] {
        let trigger = Arc::new(RecordingTrigger::new(env.dbs.control().clone()));
        let scheduler = Scheduler::new(
            Arc::new(env.dbs.clone()),
            trigger,
            SchedulerConfig { worker_id: "idle".into(), listener_idle, ..SchedulerConfig::from_config(&env.config) },
        );
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(scheduler.run(shutdown.clone()));
        // Warm-up: the first lease scans, listeners given back, statistics of the setup flushed.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let window = Duration::from_secs(40);
        let before = xacts(&mut admin, &prefix).await;
        let mut held = 0;
        let started = Instant::now();
        while started.elapsed() < window {
            held = held.max(scheduler_connections(&mut admin, &prefix).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let after = xacts(&mut admin, &prefix).await;
        shutdown.cancel();
        running.await.unwrap();
        let rate = (after - before) as f64 / window.as_secs_f64();
        println!(
            "idle with 10 domains, {label}: {} transactions in {} s = {rate:.2}/s; scheduler connections at most {held}",
            after - before,
            window.as_secs()
        );
        assert!(rate <= 10.0, "{rate}/s");
    }
}

async fn xacts(admin: &mut sqlx::PgConnection, prefix: &str) -> i64 {
    sqlx::query_scalar("SELECT sum(xact_commit + xact_rollback)::int8 FROM pg_stat_database WHERE starts_with(datname, $1)")
        .bind(prefix)
        .fetch_one(admin)
        .await
        .unwrap()
}

async fn scheduler_connections(admin: &mut sqlx::PgConnection, prefix: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND starts_with(datname, $2)",
    )
    .bind(vnext_execution::scheduler::APPLICATION_NAME)
    .bind(prefix)
    .fetch_one(admin)
    .await
    .unwrap()
}
