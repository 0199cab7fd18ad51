//! The job scheduler against real PostgreSQL: claiming, settling, reclaiming,
//! concurrent schedulers and lease recovery.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_core::ident::FlowKey;
use vnext_core::traits::{TriggerOrigin, TriggerOutcome};
use vnext_core::clock::{Clock, ManualClock};
use vnext_execution::scheduler::{StaticDomains, TickReport};
use vnext_execution::{Scheduler, SchedulerConfig};
use vnext_init::queue::{self as queues, JobKind, NewJob};

use common::db::TestDomain;
use common::trigger::{RecordingTrigger, Scripted};

fn config(worker: &str) -> SchedulerConfig {
    SchedulerConfig { worker_id: worker.into(), idle_poll: Duration::from_secs(1), ..SchedulerConfig::default() }
}

fn job(kind: JobKind, due_at: DateTime<Utc>) -> NewJob {
    NewJob {
        id: Uuid::new_v4(),
        kind,
        flow: "loan-application".into(),
        instance_id: Uuid::new_v4(),
        transition_key: "expire".into(),
        armed_state: Some("waiting".into()),
        body: Some(json!({"reason": "timer"})),
        due_at,
    }
}

/// Enqueues the jobs in one transaction, as the app does with a state change.
async fn enqueue(pool: &PgPool, jobs: &[NewJob]) {
    let mut tx = pool.begin().await.unwrap();
    for j in jobs {
        queues::enqueue(&mut tx, j).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    status: String,
    attempts: i32,
    locked_by: Option<String>,
    last_error: Option<String>,
    due_at: DateTime<Utc>,
}

type RawRow = (Uuid, String, i32, Option<String>, Option<String>, DateTime<Utc>);

async fn rows(pool: &PgPool) -> HashMap<Uuid, Row> {
    let all: Vec<RawRow> =
        sqlx::query_as("SELECT id, status, attempts, locked_by, last_error, due_at FROM sys_queues.jobs")
            .fetch_all(pool)
            .await
            .unwrap();
    all.into_iter()
        .map(|(id, status, attempts, locked_by, last_error, due_at)| (id, Row { status, attempts, locked_by, last_error, due_at }))
        .collect()
}

fn scheduler(domain: &TestDomain, pool: PgPool, trigger: Arc<RecordingTrigger>, config: SchedulerConfig) -> Scheduler {
    Scheduler::new(Arc::new(StaticDomains::single(domain.name.clone(), pool)), trigger, config)
}

fn scheduler_at(
    domain: &TestDomain,
    trigger: Arc<RecordingTrigger>,
    clock: Arc<ManualClock>,
) -> Scheduler {
    Scheduler::with_clock(
        Arc::new(StaticDomains::single(domain.name.clone(), domain.pool.clone())),
        trigger,
        config("tick-worker"),
        clock,
    )
}

/// Polls `check` until it holds or `timeout` passes.
use vnext_testkit::poll_until as wait_for;

async fn another_pool(domain: &TestDomain, max: u32) -> PgPool {
    PgPoolOptions::new().max_connections(max).connect_with((*domain.pool.connect_options()).clone()).await.unwrap()
}

#[tokio::test]
async fn due_jobs_fire_once_and_future_jobs_wait() {
    let domain = TestDomain::create("due").await;
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let due: Vec<NewJob> = [JobKind::Timer, JobKind::Timeout, JobKind::Async, JobKind::Retry]
        .into_iter()
        .map(|k| job(k, now - chrono::Duration::seconds(1)))
        .collect();
    let later = job(JobKind::Timer, now + chrono::Duration::minutes(10));
    enqueue(&domain.pool, &due).await;
    enqueue(&domain.pool, std::slice::from_ref(&later)).await;

    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    let scheduler = scheduler_at(&domain, trigger.clone(), clock.clone());
    let report = scheduler.tick().await.unwrap();
    assert_eq!(report, TickReport { claimed: 4, applied: 4, ..TickReport::default() });

    let calls = trigger.calls();
    assert_eq!(calls.len(), 4);
    for j in &due {
        let call = calls.iter().find(|c| c.job_id == j.id).expect("fired");
        assert_eq!(call.domain, domain.name.as_str());
        assert_eq!(call.flow, "loan-application");
        assert_eq!(call.instance_id, j.instance_id);
        assert_eq!(call.transition, "expire");
        assert_eq!(call.armed_state.as_deref(), Some("waiting"));
        assert_eq!(call.body, json!({"reason": "timer"}));
        assert_eq!(call.attempt, 1);
        let origin = match j.kind {
            JobKind::Timer => TriggerOrigin::Timer,
            JobKind::Timeout => TriggerOrigin::Timeout,
            JobKind::Async => TriggerOrigin::Async,
            JobKind::Retry => TriggerOrigin::Retry,
            JobKind::Lease => TriggerOrigin::Lease,
        };
        assert_eq!(call.origin, origin);
    }
    let state = rows(&domain.pool).await;
    assert!(due.iter().all(|j| state[&j.id].status == "done"));
    assert_eq!(state[&later.id].status, "pending");

    // Nothing more is due: a second pass does nothing.
    assert_eq!(scheduler.tick().await.unwrap(), TickReport::default());

    // Once the clock passes the later job's due time, it fires.
    clock.advance(chrono::Duration::minutes(11));
    let report = scheduler.tick().await.unwrap();
    assert_eq!((report.claimed, report.applied), (1, 1));
    assert_eq!(trigger.calls_per_job().values().copied().collect::<Vec<_>>(), vec![1; 5]);
}

#[tokio::test]
async fn busy_stale_retryable_and_fatal_answers() {
    let domain = TestDomain::create("answers").await;
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let [busy, stale, flaky, fatal] = std::array::from_fn(|_| job(JobKind::Timer, now));
    enqueue(&domain.pool, &[busy.clone(), stale.clone(), flaky.clone(), fatal.clone()]).await;
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    trigger.script(busy.id, [Scripted::Outcome(TriggerOutcome::Busy)]);
    trigger.script(stale.id, [Scripted::Outcome(TriggerOutcome::Stale)]);
    trigger.script(flaky.id, [Scripted::Error { retryable: true }]);
    trigger.script(fatal.id, [Scripted::Error { retryable: false }]);
    let scheduler = scheduler_at(&domain, trigger.clone(), clock.clone());

    let report = scheduler.tick().await.unwrap();
    assert_eq!(report, TickReport { claimed: 4, stale: 1, busy: 1, retried: 1, failed: 1, ..TickReport::default() });
    let state = rows(&domain.pool).await;
    // Busy: back to pending shortly, and the claim does not count.
    assert_eq!(state[&busy.id].status, "pending");
    assert_eq!(state[&busy.id].attempts, 0);
    assert_eq!(state[&busy.id].locked_by, None);
    let wait = state[&busy.id].due_at - now;
    assert!(wait > chrono::Duration::zero() && wait <= chrono::Duration::seconds(2), "{wait}");
    // Stale: closed without effect.
    assert_eq!(state[&stale.id].status, "done");
    // Retryable: pending after backoff, the attempt and the error recorded.
    assert_eq!(state[&flaky.id].status, "pending");
    assert_eq!(state[&flaky.id].attempts, 1);
    assert!(state[&flaky.id].last_error.as_deref().unwrap().contains("scripted failure"));
    assert!(state[&flaky.id].due_at > now);
    // Not retryable: failed with the reason.
    assert_eq!(state[&fatal.id].status, "failed");
    assert!(state[&fatal.id].last_error.as_deref().unwrap().contains("scripted failure"));

    // Put-back jobs are not fired again in the same pass...
    assert_eq!(scheduler.tick().await.unwrap(), TickReport::default());
    // ...but once their time comes they run, and succeed this time.
    clock.advance(chrono::Duration::seconds(5));
    let report = scheduler.tick().await.unwrap();
    assert_eq!((report.claimed, report.applied), (2, 2));
    let retried = trigger.calls().into_iter().filter(|c| c.job_id == flaky.id).map(|c| c.attempt).collect::<Vec<_>>();
    assert_eq!(retried, vec![1, 2]);
    let state = rows(&domain.pool).await;
    assert_eq!(state[&busy.id].status, "done");
    assert_eq!(state[&flaky.id].status, "done");
    assert_eq!(trigger.calls_per_job()[&fatal.id], 1);
}

#[tokio::test]
async fn a_busy_instance_is_retried_with_growing_waits_up_to_30_seconds() {
    let domain = TestDomain::create("busyback").await;
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let j = job(JobKind::Timer, now);
    enqueue(&domain.pool, std::slice::from_ref(&j)).await;
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    // Busy eight times in a row, then free.
    trigger.script(j.id, std::iter::repeat_n(Scripted::Outcome(TriggerOutcome::Busy), 8));
    let scheduler = scheduler_at(&domain, trigger.clone(), clock.clone());
    let mut waits = Vec::new();
    for streak in 1..=8u32 {
        let report = scheduler.tick().await.unwrap();
        assert_eq!((report.claimed, report.busy), (1, 1), "busy answer {streak}");
        let row = rows(&domain.pool).await.remove(&j.id).unwrap();
        assert_eq!(row.status, "pending");
        // A busy answer is not a failed attempt.
        assert_eq!(row.attempts, 0);
        assert_eq!(row.last_error.as_deref(), Some(format!("instance busy; answers in a row: {streak}").as_str()));
        let wait = row.due_at - clock.now();
        // Equal jitter: between half and all of 1 s doubling per answer, at most 30 s.
        let full = chrono::Duration::seconds(1 << (streak - 1)).min(chrono::Duration::seconds(30));
        assert!(wait >= full / 2 && wait <= full, "answer {streak}: waits {wait}, expected {} to {full}", full / 2);
        waits.push(wait.num_milliseconds());
        // Not due before its time...
        clock.set(row.due_at - chrono::Duration::milliseconds(1));
        assert_eq!(scheduler.tick().await.unwrap().claimed, 0);
        clock.set(row.due_at);
    }
    println!("waits after busy answers: {waits:?} ms");
    // ...and once the instance is free, the transition is applied.
    let report = scheduler.tick().await.unwrap();
    assert_eq!((report.claimed, report.applied), (1, 1));
    assert_eq!(trigger.calls_per_job()[&j.id], 9);
    let row = rows(&domain.pool).await.remove(&j.id).unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("done", 1));
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let domain = TestDomain::create("maxatt").await;
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let j = job(JobKind::Retry, now);
    enqueue(&domain.pool, std::slice::from_ref(&j)).await;
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    trigger.script(j.id, std::iter::repeat_n(Scripted::Error { retryable: true }, 10));
    let scheduler = Scheduler::with_clock(
        Arc::new(StaticDomains::single(domain.name.clone(), domain.pool.clone())),
        trigger.clone(),
        SchedulerConfig { max_attempts: 3, ..config("max-worker") },
        clock.clone(),
    );
    for _ in 0..3 {
        scheduler.tick().await.unwrap();
        clock.advance(chrono::Duration::minutes(10));
    }
    let row = rows(&domain.pool).await.remove(&j.id).unwrap();
    assert_eq!(row.status, "failed");
    assert!(row.last_error.as_deref().unwrap().starts_with("gave up after 3 attempts"), "{row:?}");
    assert_eq!(trigger.calls_per_job()[&j.id], 3);
    assert_eq!(scheduler.tick().await.unwrap(), TickReport::default());
}

#[tokio::test]
async fn a_crashed_workers_job_is_reclaimed() {
    let domain = TestDomain::create("crash").await;
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let orphan = job(JobKind::Async, now - chrono::Duration::minutes(2));
    let held = job(JobKind::Async, now - chrono::Duration::minutes(2));
    enqueue(&domain.pool, &[orphan.clone(), held.clone()]).await;
    // A worker claimed both and died; one lock has expired, the other has not.
    for (id, until) in [(orphan.id, now - chrono::Duration::seconds(1)), (held.id, now + chrono::Duration::seconds(30))] {
        sqlx::query("UPDATE sys_queues.jobs SET status = 'running', locked_by = 'dead-worker', locked_until = $2, attempts = 1 WHERE id = $1")
            .bind(id)
            .bind(until)
            .execute(&domain.pool)
            .await
            .unwrap();
    }
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    let scheduler = scheduler_at(&domain, trigger.clone(), clock.clone());
    let report = scheduler.tick().await.unwrap();
    assert_eq!((report.claimed, report.applied), (1, 1));
    let calls = trigger.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].job_id, calls[0].attempt), (orphan.id, 2));
    let state = rows(&domain.pool).await;
    assert_eq!(state[&orphan.id].status, "done");
    assert_eq!(state[&held.id].status, "running");
    assert_eq!(state[&held.id].locked_by.as_deref(), Some("dead-worker"));

    // When the other lock runs out too, that job is reclaimed as well.
    clock.advance(chrono::Duration::seconds(31));
    assert_eq!(scheduler.tick().await.unwrap().applied, 1);
    assert_eq!(trigger.calls_per_job()[&held.id], 1);
}

#[tokio::test]
async fn two_schedulers_fire_each_of_1000_jobs_once() {
    let domain = TestDomain::create("two").await;
    let trigger = Arc::new(RecordingTrigger::new(another_pool(&domain, 20).await));
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    for name in ["worker-a", "worker-b"] {
        let s = scheduler(&domain, another_pool(&domain, 10).await, trigger.clone(), config(name));
        handles.push(tokio::spawn(s.run(shutdown.clone())));
    }
    // Let both schedulers start listening before the jobs arrive; they are
    // woken by the enqueue's notification, not by polling.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let now = Utc::now();
    let jobs: Vec<NewJob> = (0..1000).map(|_| job(JobKind::Timer, now)).collect();
    enqueue(&domain.pool, &jobs).await;
    let started = Instant::now();
    let pool = domain.pool.clone();
    let all_done = wait_for(Duration::from_secs(60), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sys_queues.jobs WHERE status = 'done'")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 1000
        }
    })
    .await;
    let elapsed = started.elapsed();
    shutdown.cancel();
    for h in handles {
        tokio::time::timeout(Duration::from_secs(10), h).await.expect("scheduler stops").unwrap();
    }
    assert!(all_done, "not all jobs were done within 60 s");
    let per_job = trigger.calls_per_job();
    assert_eq!(per_job.len(), 1000);
    assert!(per_job.values().all(|&n| n == 1), "some job fired more than once");
    assert!(jobs.iter().all(|j| per_job.contains_key(&j.id)));
    let by_worker: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT locked_by, count(*) FROM sys_queues.jobs GROUP BY locked_by ORDER BY locked_by")
            .fetch_all(&domain.pool)
            .await
            .unwrap();
    println!("1000 jobs fired by two schedulers {elapsed:?} after their commit; per worker: {by_worker:?}");
}

#[tokio::test]
async fn run_wakes_on_notify_and_at_the_due_time() {
    let domain = TestDomain::create("wake").await;
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    // A long safety poll: anything that fires quickly was woken otherwise.
    let s = scheduler(
        &domain,
        domain.pool.clone(),
        trigger.clone(),
        SchedulerConfig { idle_poll: Duration::from_secs(60), lease_scan: Duration::from_secs(60), ..config("waker") },
    );
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(s.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let now = Utc::now();
    let soon = job(JobKind::Async, now);
    let started = Instant::now();
    enqueue(&domain.pool, std::slice::from_ref(&soon)).await;
    assert!(wait_for(Duration::from_secs(5), || async { trigger.calls().len() == 1 }).await, "notification did not wake the scheduler");
    println!("async job fired {:?} after enqueue", started.elapsed());

    // A timer 700 ms ahead: the notification arrives early, the worker sleeps
    // until the due time and fires then (not before).
    let timer = job(JobKind::Timer, Utc::now() + chrono::Duration::milliseconds(700));
    enqueue(&domain.pool, std::slice::from_ref(&timer)).await;
    assert!(wait_for(Duration::from_secs(5), || async { trigger.calls().len() == 2 }).await, "timer did not fire on time");
    let fired_at = Utc::now();
    assert!(fired_at >= timer.due_at, "fired before its due time");
    println!("timer fired {} ms after its due time", (fired_at - timer.due_at).num_milliseconds());
    assert!((fired_at - timer.due_at) < chrono::Duration::seconds(3));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.expect("scheduler stops").unwrap();
}

#[tokio::test]
async fn expired_leases_get_one_recovery_job() {
    let domain = TestDomain::create("lease").await;
    let flow = FlowKey::new("loan-application").unwrap();
    vnext_init::flow_schema::ensure_flow_schema(&domain.pool, &flow).await.unwrap();
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let (expired, live, active, token) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (id, status, lease_until, lease_token) in [
        (expired, "B", Some(now - chrono::Duration::seconds(5)), Some(token)),
        (live, "B", Some(now + chrono::Duration::seconds(50)), Some(Uuid::new_v4())),
        (active, "A", None, None),
    ] {
        sqlx::query(
            "INSERT INTO loan_application.instances
                (id, flow_version, status, current_state, data_version, data_version_no, etag,
                 lease_token, lease_until, lease_transition, lease_job_id)
             VALUES ($1, '1.0.0', $2::\"char\", 'scoring', '1.0.0', 1, 'e', $3, $4, 'score', NULL)",
        )
        .bind(id)
        .bind(status)
        .bind(lease_token)
        .bind(lease_until)
        .execute(&domain.pool)
        .await
        .unwrap();
    }
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    let scheduler = scheduler_at(&domain, trigger.clone(), clock.clone());
    let report = scheduler.tick().await.unwrap();
    assert_eq!(report.leases_enqueued, 1);
    assert_eq!(report.applied, 1);
    let calls = trigger.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!((call.origin, call.instance_id, call.job_id), (TriggerOrigin::Lease, expired, token));
    assert_eq!(call.flow, "loan-application");
    assert_eq!(call.transition, "score");
    assert_eq!(call.armed_state.as_deref(), Some("scoring"));
    assert_eq!(call.body["leaseToken"], json!(token));

    // Scanning again (here, or in another scheduler) adds nothing for the same lease.
    assert_eq!(scheduler.recover_leases(&domain.name).await.unwrap(), 0);
    // The test trigger does not clear the lease, as a broken app would not: after
    // the re-arm grace the same expired lease gets its job armed again.
    clock.advance(chrono::Duration::minutes(5));
    sqlx::query("UPDATE sys_queues.jobs SET finished_at = now() - interval '10 minutes' WHERE id = $1")
        .bind(token)
        .execute(&domain.pool)
        .await
        .unwrap();
    let report = scheduler.tick().await.unwrap();
    // The live lease has expired by now as well.
    assert_eq!(report.leases_enqueued, 2);
    assert_eq!(trigger.calls_per_job()[&token], 2);
}

#[tokio::test]
async fn the_lease_scan_counts_open_incidents_per_workflow() {
    vnext_telemetry::metrics::install();
    let domain = TestDomain::create("census").await;
    let flow = FlowKey::new("loan-application").unwrap();
    vnext_init::flow_schema::ensure_flow_schema(&domain.pool, &flow).await.unwrap();
    // Two open incidents and a resolved one, as faults and a retry leave them.
    for resolved in [false, false, true] {
        sqlx::query(
            "INSERT INTO loan_application.incidents (id, instance_id, error_code, message, resolved)
             VALUES ($1, $2, 'Task:unavailable', 'the service answered 503', $3)",
        )
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .bind(resolved)
        .execute(&domain.pool)
        .await
        .unwrap();
    }
    let open = || {
        let text = vnext_telemetry::metrics::render();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "vnext_incidents_open"
                    && s.labels.get("domain") == Some(domain.name.as_str())
                    && s.labels.get("workflow") == Some("loan-application")
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("vnext_incidents_open is a gauge, found {other:?}"),
            })
    };
    let trigger = Arc::new(RecordingTrigger::new(domain.pool.clone()));
    let scheduler = scheduler_at(&domain, trigger, Arc::new(ManualClock::new(Utc::now())));
    scheduler.tick().await.unwrap();
    assert_eq!(open(), Some(2.0));

    // Resolved by a retry: the next scan lowers the gauge.
    sqlx::query("UPDATE loan_application.incidents SET resolved = true, resolved_at = now()")
        .execute(&domain.pool)
        .await
        .unwrap();
    scheduler.tick().await.unwrap();
    assert_eq!(open(), Some(0.0));
}

#[tokio::test]
async fn purge_deletes_only_old_finished_jobs() {
    let domain = TestDomain::create("purge").await;
    let now = Utc::now();
    let [old_done, old_cancelled, old_failed, recent_done, pending] = std::array::from_fn(|_| job(JobKind::Timer, now));
    enqueue(&domain.pool, &[old_done.clone(), old_cancelled.clone(), old_failed.clone(), recent_done.clone(), pending.clone()])
        .await;
    for (id, status, age_days) in
        [(old_done.id, "done", 8), (old_cancelled.id, "cancelled", 8), (old_failed.id, "failed", 8), (recent_done.id, "done", 1)]
    {
        sqlx::query("UPDATE sys_queues.jobs SET status = $2, finished_at = now() - make_interval(days => $3) WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(age_days)
            .execute(&domain.pool)
            .await
            .unwrap();
    }
    let deleted = vnext_init::queue::purge_finished(&domain.pool, now - chrono::Duration::days(7), 1000)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let left = rows(&domain.pool).await;
    let mut kept: Vec<Uuid> = left.keys().copied().collect();
    kept.sort();
    let mut expected = vec![old_failed.id, recent_done.id, pending.id];
    expected.sort();
    assert_eq!(kept, expected);
}
