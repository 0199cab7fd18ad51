//! One domain's worker: wake, claim, fire, sleep.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vnext_core::ident::DomainName;
use vnext_init::queues::JOBS_CHANNEL;

use super::{SchedulerError, Settled, Shared, fire, lease, lock, store};

/// How long to wait before trying again after the database failed us.
const ERROR_PAUSE: Duration = Duration::from_secs(2);
/// Shortest sleep between claims that are not woken by a notification.
const MIN_SLEEP: Duration = Duration::from_millis(10);

/// Serves one domain until `stop` fires.
pub(crate) async fn run_domain(shared: Arc<Shared>, domain: DomainName, stop: CancellationToken, tracker: TaskTracker) {
    let wake = Arc::new(Notify::new());
    let config = &shared.config;
    let batch = config.batch_size as usize;
    let (done_marks, done_queue) = mpsc::unbounded_channel();
    let mut done_queue = Some(done_queue);
    let mut listening = false;
    let mut next_lease_scan = Instant::now();
    // Not at start-up: a fleet restarting together should not purge together.
    let mut next_purge = Instant::now() + config.purge_every.mul_f64(rand::random_range(0.05..1.0));
    // Consecutive failures: the pause grows, and only the first is logged loudly.
    let mut failures = 0u32;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let pool = match shared.source.pool(&domain).await {
            Ok(p) => p,
            Err(e) => {
                report_failure(&domain, &e.to_string(), "cannot reach the domain's database", failures);
                pause(&stop, error_pause(failures)).await;
                failures += 1;
                continue;
            }
        };
        if !listening {
            tracker.spawn(listen(pool.clone(), domain.clone(), wake.clone(), stop.clone()));
            listening = true;
        }
        if let Some(queue) = done_queue.take() {
            // Ends once this worker and every job it fired dropped their senders.
            tracker.spawn(fire::run_done_batcher(pool.clone(), queue));
        }
        if Instant::now() >= next_lease_scan {
            next_lease_scan = Instant::now() + config.lease_scan;
            if let Err(e) = recover_leases(&shared, &domain, &pool).await {
                tracing::warn!(error = %e, "lease scan failed");
            }
        }
        if Instant::now() >= next_purge {
            next_purge = Instant::now() + config.purge_every;
            purge(&shared, &domain, &pool).await;
        }
        let now = shared.clock.now();
        let claim = match store::claim(&pool, now, batch as i64, &config.worker_id, now + lock(config)).await {
            Ok(c) => c,
            Err(e) => {
                report_failure(&domain, &e.to_string(), "cannot claim jobs", failures);
                pause(&stop, error_pause(failures)).await;
                failures += 1;
                continue;
            }
        };
        if failures > 0 {
            tracing::info!(domain = %domain, "jobs are served again");
            failures = 0;
        }
        let full = claim.jobs.len() >= batch;
        let mut jobs = claim.jobs.into_iter();
        while let Some(job) = jobs.next() {
            let permit = tokio::select! {
                p = shared.permits.clone().acquire_owned() => p.expect("the permit semaphore is never closed"),
                () = stop.cancelled() => {
                    // Hand back what never started so another scheduler takes it now,
                    // not when the lock expires.
                    let ids: Vec<_> = std::iter::once(job.id).chain(jobs.map(|j| j.id)).collect();
                    if let Err(e) = store::release(&pool, &ids, &config.worker_id).await {
                        tracing::warn!(domain = %domain, error = %e, "cannot hand back claimed jobs; they run once their lock expires");
                    }
                    return;
                }
            };
            let (shared, pool, domain, wake) = (shared.clone(), pool.clone(), domain.clone(), wake.clone());
            let done_marks = done_marks.clone();
            tracker.spawn(async move {
                let settled =
                    fire::fire(&*shared.trigger, &pool, &domain, job, || shared.clock.now(), &shared.config, &done_marks)
                        .await;
                drop(permit);
                if matches!(settled, Settled::Busy { .. } | Settled::Retried { .. }) {
                    // The job is pending again at a new time; the next claim reads it.
                    wake.notify_one();
                }
            });
        }
        if full {
            continue;
        }
        let until_due = claim
            .next_at
            .map(|t| (t - shared.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(config.idle_poll);
        let until_scan = next_lease_scan.saturating_duration_since(Instant::now());
        // Timers are served with a granularity of MIN_SLEEP: jobs falling due
        // close together are claimed together instead of one query each.
        let sleep = until_due.min(config.idle_poll).min(until_scan).max(MIN_SLEEP);
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// 2 s, doubling per consecutive failure, at most a minute.
fn error_pause(failures: u32) -> Duration {
    ERROR_PAUSE.saturating_mul(1 << failures.min(5)).min(Duration::from_secs(60))
}

fn report_failure(domain: &DomainName, error: &str, what: &str, failures: u32) {
    if failures == 0 {
        tracing::warn!(domain = %domain, error, "{what}; retrying with backoff");
    } else {
        tracing::debug!(domain = %domain, error, failures, "{what}");
    }
}

/// Waits `d` unless stopped first.
async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}

/// `LISTEN vnext_jobs` on a connection of its own, waking the worker on every
/// notification. After a lost connection the worker is woken too, since
/// notifications sent in between are gone.
async fn listen(pool: PgPool, domain: DomainName, wake: Arc<Notify>, stop: CancellationToken) {
    // Not the domain pool: a listener holds its connection for good.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    drop(pool);
    loop {
        let connect = async {
            let mut l = PgListener::connect_with(&own).await?;
            l.listen(JOBS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            c = connect => c,
        };
        match connected {
            Ok(mut listener) => {
                wake.notify_one();
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        received = listener.try_recv() => match received {
                            Ok(_) => wake.notify_one(),
                            Err(e) => {
                                tracing::warn!(domain = %domain, error = %e, "job notifications lost; polling until they are back");
                                break;
                            }
                        },
                    }
                }
            }
            Err(e) => tracing::warn!(domain = %domain, error = %e, "cannot listen for job notifications; polling meanwhile"),
        }
        pause(&stop, ERROR_PAUSE * 5).await;
    }
}

/// Deletes jobs finished longer than the retention ago, in bounded batches.
async fn purge(shared: &Shared, domain: &DomainName, pool: &PgPool) {
    let Ok(retention) = chrono::Duration::from_std(shared.config.retention) else { return };
    let before = shared.clock.now() - retention;
    let mut total = 0;
    loop {
        match store::purge_finished(pool, before, PURGE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < PURGE_BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(domain = %domain, error = %e, "cannot purge finished jobs");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(domain = %domain, jobs = total, "finished jobs past retention deleted");
    }
}

/// Jobs deleted per statement when purging.
const PURGE_BATCH: i64 = 5_000;

/// Scans for expired leases and enqueues their recovery jobs.
pub(crate) async fn recover_leases(shared: &Shared, domain: &DomainName, pool: &PgPool) -> Result<u64, SchedulerError> {
    let now = shared.clock.now();
    let db = |context| move |source| SchedulerError::Db { domain: domain.to_string(), context, source };
    let expired = lease::find_expired(pool, now).await.map_err(db("scanning for expired leases"))?;
    if expired.is_empty() {
        return Ok(0);
    }
    let rearm = chrono::Duration::from_std(shared.config.lease_rearm_after).unwrap_or(chrono::Duration::minutes(1));
    let n = lease::enqueue_recovery(pool, &expired, now, rearm).await.map_err(db("enqueueing lease recovery"))?;
    if n > 0 {
        tracing::info!(domain = %domain, jobs = n, "expired leases found; recovery jobs enqueued");
    }
    Ok(n)
}
