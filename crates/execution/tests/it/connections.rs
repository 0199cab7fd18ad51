//! The scheduler's connection budget: at most `max_listeners` listening
//! connections plus `poll_connections` short-lived ones, never more than one
//! per domain, and none for a domain that went idle; every domain is served
//! either way.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_execution::scheduler::{APPLICATION_NAME, StaticDomains};
use vnext_execution::{Scheduler, SchedulerConfig};
use vnext_init::config::Config;
use vnext_init::queue::{self as queues, JobKind, NewJob};

use common::db::TestDomain;
use common::trigger::RecordingTrigger;

fn job(due_in: chrono::Duration) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        kind: JobKind::Timer,
        flow: "order".into(),
        instance_id: Uuid::new_v4(),
        transition_key: "expire".into(),
        armed_state: Some("waiting".into()),
        body: None,
        due_at: Utc::now() + due_in,
    }
}

async fn enqueue(pool: &PgPool, job: &NewJob) {
    let mut conn = pool.acquire().await.unwrap();
    queues::enqueue(&mut conn, job).await.unwrap();
}

/// Scheduler connections per database, from `pg_stat_activity`.
async fn scheduler_connections(admin: &mut PgConnection, databases: &[String]) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT datname::text, count(*) FROM pg_stat_activity
          WHERE application_name = $1 AND datname = ANY($2) GROUP BY datname",
    )
    .bind(APPLICATION_NAME)
    .bind(databases)
    .fetch_all(admin)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// Samples the scheduler's connections every 20 ms until `stop`: the largest
/// total, and the largest count seen for any one database. A count must hold
/// in two samples in a row: the backend of a connection the scheduler closed
/// stays in `pg_stat_activity` for a moment while it exits, and on a loaded
/// machine one sample can catch it beside the listener that replaced it.
fn sample_connections(databases: Vec<String>, stop: CancellationToken) -> tokio::task::JoinHandle<(i64, i64, usize)> {
    tokio::spawn(async move {
        let mut admin = PgConnection::connect(&Config::load(None).unwrap().database.url).await.unwrap();
        let (mut total, mut per_domain, mut samples) = (0, 0, 0);
        let mut previous: Option<(i64, i64)> = None;
        while !stop.is_cancelled() {
            let now = scheduler_connections(&mut admin, &databases).await;
            let seen = (now.values().sum::<i64>(), now.values().copied().max().unwrap_or(0));
            let (held_total, held_per_domain) = previous.map_or((0, 0), |p| (p.0.min(seen.0), p.1.min(seen.1)));
            total = total.max(held_total);
            per_domain = per_domain.max(held_per_domain);
            previous = Some(seen);
            samples += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (total, per_domain, samples)
    })
}

async fn wait_until<F: FnMut() -> bool>(timeout: Duration, mut check: F) -> bool {
    vnext_testkit::poll_until(timeout, || std::future::ready(check())).await
}

fn database_of(domain: &TestDomain) -> String {
    domain.pool.connect_options().get_database().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_domains_than_listeners_are_all_served_within_the_connection_cap() {
    let mut domains = Vec::new();
    for i in 0..6 {
        domains.push(TestDomain::create(&format!("cap{i}")).await);
    }
    let databases: Vec<String> = domains.iter().map(database_of).collect();
    // The scheduler reaches each domain through a pool of its own, as it would
    // through `Databases`; the pools only supply connection settings.
    let mut pools: Vec<(DomainName, PgPool)> = Vec::new();
    for d in &domains {
        let pool = PgPoolOptions::new().max_connections(2).connect_lazy_with((*d.pool.connect_options()).clone());
        pools.push((d.name.clone(), pool));
    }
    let trigger_pools: Vec<PgPool> = domains.iter().map(|d| d.pool.clone()).collect();
    let trigger = Arc::new(PerDatabaseTrigger::new(&domains, trigger_pools));
    let config = SchedulerConfig {
        worker_id: "capped".into(),
        max_listeners: 3,
        poll_connections: 1,
        idle_poll: Duration::from_millis(500),
        ..SchedulerConfig::default()
    };
    let scheduler = Scheduler::new(Arc::new(StaticDomains::new(pools)), trigger.clone(), config);
    let shutdown = CancellationToken::new();
    let sampling = CancellationToken::new();
    let sampler = sample_connections(databases.clone(), sampling.clone());
    let running = tokio::spawn(scheduler.run(shutdown.clone()));

    // One job due now and one timer due shortly in every domain.
    let mut expected = Vec::new();
    for d in &domains {
        for j in [job(chrono::Duration::zero()), job(chrono::Duration::milliseconds(1500))] {
            enqueue(&d.pool, &j).await;
            expected.push(j.id);
        }
    }
    let enqueued = Instant::now();
    let all_fired = wait_until(Duration::from_secs(20), || {
        let fired = trigger.fired();
        expected.iter().all(|id| fired.contains_key(id))
    })
    .await;
    let took = enqueued.elapsed();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("scheduler stops").unwrap();
    sampling.cancel();
    let (most, most_per_domain, samples) = sampler.await.unwrap();
    assert!(all_fired, "not every domain's jobs fired: {:?}", trigger.fired());
    assert!(trigger.fired().values().all(|&n| n == 1), "a job fired twice");
    println!(
        "12 jobs in 6 domains fired within {took:?}; scheduler connections over {samples} samples: at most {most} in all, {most_per_domain} per domain"
    );
    assert!(most >= 1, "the sampler never saw a scheduler connection");
    assert!(most <= 3 + 1, "{most} connections for max_listeners 3 + poll_connections 1");
    assert_eq!(most_per_domain, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_domain_holds_no_connection_and_is_still_served() {
    let domain = TestDomain::create("idleconn").await;
    let databases = vec![database_of(&domain)];
    let pool = PgPoolOptions::new().max_connections(2).connect_lazy_with((*domain.pool.connect_options()).clone());
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    let config = SchedulerConfig {
        worker_id: "idle-conn".into(),
        idle_poll: Duration::from_millis(500),
        listener_idle: Duration::from_millis(300),
        ..SchedulerConfig::default()
    };
    let scheduler = Scheduler::new(Arc::new(StaticDomains::single(domain.name.clone(), pool)), trigger.clone(), config);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(scheduler.run(shutdown.clone()));
    let mut admin = PgConnection::connect(&Config::load(None).unwrap().database.url).await.unwrap();

    // A new domain starts listened...
    let first = job(chrono::Duration::zero());
    enqueue(&domain.pool, &first).await;
    assert!(wait_until(Duration::from_secs(5), || trigger.calls_per_job().contains_key(&first.id)).await);

    // ...and once idle for `listener_idle`, holds no connection between polls:
    // several samples in a row see none.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut zero_in_a_row = 0;
    while zero_in_a_row < 5 && Instant::now() < deadline {
        let held: i64 = scheduler_connections(&mut admin, &databases).await.values().sum();
        zero_in_a_row = if held == 0 { zero_in_a_row + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(zero_in_a_row, 5, "the idle domain kept a scheduler connection");

    // A job enqueued now is found by the next poll.
    let second = job(chrono::Duration::zero());
    enqueue(&domain.pool, &second).await;
    let enqueued = Instant::now();
    assert!(wait_until(Duration::from_secs(5), || trigger.calls_per_job().contains_key(&second.id)).await);
    println!("job in a polled domain fired {:?} after its enqueue", enqueued.elapsed());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("scheduler stops").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_listeners_every_job_is_found_by_polling() {
    let domain = TestDomain::create("nolisten").await;
    let pool = PgPoolOptions::new().max_connections(2).connect_lazy_with((*domain.pool.connect_options()).clone());
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    let config = SchedulerConfig {
        worker_id: "no-listen".into(),
        max_listeners: 0,
        idle_poll: Duration::from_millis(300),
        ..SchedulerConfig::default()
    };
    let scheduler = Scheduler::new(Arc::new(StaticDomains::single(domain.name.clone(), pool)), trigger.clone(), config);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(scheduler.run(shutdown.clone()));
    let jobs: Vec<NewJob> = (0..20).map(|i| job(chrono::Duration::milliseconds(i * 50))).collect();
    for j in &jobs {
        enqueue(&domain.pool, j).await;
    }
    let fired = wait_until(Duration::from_secs(10), || trigger.calls_per_job().len() == jobs.len()).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running).await.expect("scheduler stops").unwrap();
    assert!(fired, "only {} of {} jobs fired", trigger.calls_per_job().len(), jobs.len());
    assert!(trigger.calls_per_job().values().all(|&n| n == 1));
    let early: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_queues.jobs WHERE finished_at < due_at")
        .fetch_one(&domain.pool)
        .await
        .unwrap();
    assert_eq!(early, 0, "a job fired before its due time");
}

/// Settles each job in its own database, as the app would, and counts calls per job.
struct PerDatabaseTrigger {
    pools: HashMap<String, PgPool>,
    fired: Mutex<HashMap<Uuid, usize>>,
}

impl PerDatabaseTrigger {
    fn new(domains: &[TestDomain], pools: Vec<PgPool>) -> Self {
        let pools = domains.iter().map(|d| d.name.to_string()).zip(pools).collect();
        Self { pools, fired: Mutex::default() }
    }

    fn fired(&self) -> HashMap<Uuid, usize> {
        self.fired.lock().unwrap().clone()
    }
}

impl vnext_core::traits::TransitionTrigger for PerDatabaseTrigger {
    fn trigger(
        &self,
        request: vnext_core::traits::TriggerRequest,
    ) -> futures::future::BoxFuture<'_, Result<vnext_core::traits::TriggerOutcome, vnext_core::traits::TriggerError>> {
        use vnext_core::traits::{TriggerError, TriggerOutcome};
        Box::pin(async move {
            let pool = self.pools.get(&request.domain).ok_or_else(|| TriggerError {
                message: format!("unknown domain {}", request.domain),
                retryable: false,
            })?;
            let done = sqlx::query(
                "UPDATE sys_queues.jobs SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'running'",
            )
            .bind(request.job_id)
            .execute(pool)
            .await
            .map_err(|e| TriggerError { message: e.to_string(), retryable: true })?;
            *self.fired.lock().unwrap().entry(request.job_id).or_default() += 1;
            Ok(if done.rows_affected() == 1 { TriggerOutcome::Applied } else { TriggerOutcome::Stale })
        })
    }
}
