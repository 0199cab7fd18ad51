//! The durable job scheduler: timers, workflow timeouts, async transitions,
//! retries and lease recovery, out of `sys_queues.jobs` of every domain.
//!
//! Per domain, a worker claims due jobs (`FOR UPDATE SKIP LOCKED`, so any
//! number of schedulers can share a database), fires each through the
//! [`TransitionTrigger`] with bounded concurrency, and settles it by the answer
//! (see [`Settled`]), many jobs per statement. Each worker holds at most one
//! connection of its own: a listening one (`LISTEN vnext_jobs`, woken by every
//! enqueue) while its domain is active and one of `max_listeners` slots is
//! free; otherwise a short-lived one per round, polling every `idle_poll` and
//! sleeping until the next due time in between. See `worker` for the details
//! and `docs/execution.md` for the connection budget.
//!
//! Delivery is at-least-once; effects are exactly-once because the app marks a
//! job done in the transaction that commits its transition and answers
//! `Stale` for a job that is no longer `running`.
//!
//! [`Scheduler::run`] serves every registered domain until cancelled;
//! [`Scheduler::tick`] processes what is due now and returns, for tests and
//! one-shot use.

mod fire;
pub mod lease;
mod source;
mod upkeep;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vnext_core::ident::DomainName;
use vnext_core::retry::{Backoff, RetryPolicy};
use vnext_core::traits::TransitionTrigger;
use vnext_init::config::Config;
use vnext_init::queue;

use vnext_core::clock::{Clock, SystemClock};
pub use fire::{Settled, backoff, busy_delay, busy_streak};
pub use worker::APPLICATION_NAME;
pub use source::{DomainSource, SourceError, StaticDomains};

/// How the scheduler behaves. [`SchedulerConfig::from_config`] derives it from
/// the runtime configuration; the other fields have fixed defaults.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Name of this process in job locks (`locked_by`).
    pub worker_id: String,
    /// Jobs one domain holds at most (claimed, waiting or firing); also the
    /// largest claim.
    pub batch_size: u32,
    /// Transitions fired at the same time, over all domains.
    pub concurrency: usize,
    /// Domains listened on at the same time (one connection each) at most.
    pub max_listeners: usize,
    /// Short-lived connections open at the same time for domains without a
    /// listener, at most.
    pub poll_connections: usize,
    /// A listened domain without jobs or notifications for this long gives its
    /// listener back and is polled instead.
    pub listener_idle: Duration,
    /// How long a claim holds; a job still `running` after that is claimed again.
    pub lock: Duration,
    /// Without a notification, look for due jobs at least this often.
    pub idle_poll: Duration,
    /// A trigger call that takes longer counts as a retryable failure. Kept
    /// below `lock` so that a slow call is settled before the claim expires.
    pub trigger_timeout: Duration,
    /// Wait before firing a job again whose instance was busy; doubles per
    /// busy answer in a row (see [`SchedulerConfig::busy_policy`]).
    pub busy_base: Duration,
    /// Longest wait for a busy instance.
    pub busy_max: Duration,
    /// First retry delay after a retryable failure; doubles per attempt
    /// (see [`SchedulerConfig::delivery_policy`]).
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Claims after which a failing job is given up (`failed`).
    pub max_attempts: i32,
    /// How often each domain's flow schemas are scanned for expired leases
    /// (the same scan counts their open incidents for `vnext_incidents_open`).
    pub lease_scan: Duration,
    /// A lease job settled this long ago is armed again if its lease is still expired.
    pub lease_rearm_after: Duration,
    /// Done and cancelled jobs are deleted once finished this long ago
    /// (failed jobs are kept).
    pub retention: Duration,
    /// How often each domain's finished jobs are purged.
    pub purge_every: Duration,
    /// How often the list of domains is refreshed.
    pub domain_refresh: Duration,
    /// On shutdown, how long in-flight jobs may take to finish.
    pub drain_deadline: Duration,
    /// A listening connection is replaced after this long (connections cache
    /// catalog entries of every schema they touched).
    pub connection_lifetime: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

impl SchedulerConfig {
    /// The scheduler's settings from the `execution` section.
    pub fn from_config(config: &Config) -> Self {
        let e = &config.execution;
        let lock = Duration::from_secs(e.job_lock_seconds.max(2));
        let idle_poll = Duration::from_secs(e.idle_poll_seconds.max(1));
        Self {
            worker_id: e.worker_id.clone().unwrap_or_else(default_worker_id),
            batch_size: e.job_batch_size.max(1),
            concurrency: usize::try_from(e.concurrency.max(1)).unwrap_or(32),
            max_listeners: usize::try_from(e.max_listeners).unwrap_or(32),
            poll_connections: usize::try_from(e.poll_connections.max(1)).unwrap_or(4),
            listener_idle: Duration::from_secs(60),
            lock,
            idle_poll,
            trigger_timeout: lock.mul_f64(0.75),
            busy_base: Duration::from_secs(1),
            busy_max: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_attempts: 50,
            lease_scan: Duration::from_secs(15),
            lease_rearm_after: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
            purge_every: Duration::from_secs(3600),
            domain_refresh: idle_poll,
            drain_deadline: Duration::from_secs(30),
            connection_lifetime: Duration::from_secs(config.database.connection_lifetime_seconds.max(60)),
        }
    }
}

impl SchedulerConfig {
    /// How failed deliveries back off, in the same math as error-boundary
    /// retries: exponential from `retry_base` (doubling), capped at `retry_max`,
    /// equal jitter, `max_attempts` deliveries in all.
    pub fn delivery_policy(&self) -> RetryPolicy {
        let delta = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(1));
        RetryPolicy {
            initial_delay: delta(self.retry_base),
            max_retries: u32::try_from(self.max_attempts.max(1) - 1).unwrap_or(0),
            backoff: Backoff::Exponential,
            multiplier: 2.0,
            max_delay: Some(delta(self.retry_max)),
            jitter: true,
        }
    }

    /// How jobs wait for a busy instance: exponential from `busy_base`
    /// (doubling), capped at `busy_max`, equal jitter, without limit.
    pub fn busy_policy(&self) -> RetryPolicy {
        let delta = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(1));
        RetryPolicy {
            initial_delay: delta(self.busy_base),
            max_retries: u32::MAX,
            backoff: Backoff::Exponential,
            multiplier: 2.0,
            max_delay: Some(delta(self.busy_max)),
            jitter: true,
        }
    }
}

/// `exec-<host>-<pid>-<random>`: unique per scheduler, readable in `locked_by`.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("exec-{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// Why a scheduler pass could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("cannot list domains: {0}")]
    Domains(SourceError),
    #[error("domain {domain}: cannot get its database pool: {source}")]
    Pool { domain: String, source: SourceError },
    #[error("domain {domain}: {context}: {source}")]
    Db { domain: String, context: &'static str, source: sqlx::Error },
}

/// What one [`Scheduler::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub claimed: usize,
    pub applied: usize,
    pub stale: usize,
    pub busy: usize,
    pub retried: usize,
    pub failed: usize,
    pub unrecorded: usize,
    /// Lease jobs created or re-armed by the lease scan.
    pub leases_enqueued: u64,
}

impl TickReport {
    fn add(&mut self, settled: &Settled) {
        match settled {
            Settled::Applied => self.applied += 1,
            Settled::Stale => self.stale += 1,
            Settled::Busy { .. } => self.busy += 1,
            Settled::Retried { .. } => self.retried += 1,
            Settled::Failed { .. } => self.failed += 1,
            Settled::Unrecorded { .. } => self.unrecorded += 1,
        }
    }

    fn merge(&mut self, other: TickReport) {
        self.claimed += other.claimed;
        self.applied += other.applied;
        self.stale += other.stale;
        self.busy += other.busy;
        self.retried += other.retried;
        self.failed += other.failed;
        self.unrecorded += other.unrecorded;
        self.leases_enqueued += other.leases_enqueued;
    }
}

/// The job scheduler. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub source: Arc<dyn DomainSource>,
    pub trigger: Arc<dyn TransitionTrigger>,
    pub clock: Arc<dyn Clock>,
    pub config: SchedulerConfig,
    /// Bounds in-flight triggers across all domains.
    pub permits: Arc<Semaphore>,
    /// Bounds the domains listened on.
    pub listener_slots: Arc<Semaphore>,
    /// Bounds the short-lived connections of domains polled without a listener.
    pub poll_slots: Arc<Semaphore>,
}

impl Scheduler {
    pub fn new(source: Arc<dyn DomainSource>, trigger: Arc<dyn TransitionTrigger>, config: SchedulerConfig) -> Self {
        Self::with_clock(source, trigger, config, Arc::new(SystemClock))
    }

    /// A scheduler whose "now" comes from `clock`.
    pub fn with_clock(
        source: Arc<dyn DomainSource>,
        trigger: Arc<dyn TransitionTrigger>,
        config: SchedulerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let listener_slots = Arc::new(Semaphore::new(config.max_listeners));
        let poll_slots = Arc::new(Semaphore::new(config.poll_connections.max(1)));
        Self { shared: Arc::new(Shared { source, trigger, clock, config, permits, listener_slots, poll_slots }) }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.shared.config
    }

    /// Processes everything due now in every domain, then returns: scans for
    /// expired leases, then claims and fires batches until a claim comes back
    /// short. Jobs put back for later (busy, retry) are not fired again.
    ///
    /// # Errors
    /// [`SchedulerError`] for the first domain that could not be read; domains
    /// before it were processed.
    pub async fn tick(&self) -> Result<TickReport, SchedulerError> {
        let domains = self.shared.source.domains().await.map_err(SchedulerError::Domains)?;
        let mut report = TickReport::default();
        for domain in domains {
            report.merge(self.tick_domain(&domain).await?);
        }
        Ok(report)
    }

    /// [`Scheduler::tick`] for one domain, on one connection of the domain's pool.
    ///
    /// # Errors
    /// [`SchedulerError`] when the domain's database cannot be read.
    pub async fn tick_domain(&self, domain: &DomainName) -> Result<TickReport, SchedulerError> {
        let shared = &self.shared;
        let db = |context| move |source| SchedulerError::Db { domain: domain.to_string(), context, source };
        let pool = shared
            .source
            .pool(domain)
            .await
            .map_err(|source| SchedulerError::Pool { domain: domain.to_string(), source })?;
        let mut conn = pool.acquire().await.map_err(db("connecting"))?;
        let mut report =
            TickReport { leases_enqueued: upkeep::scan_flows(shared, domain, &mut conn).await?, ..TickReport::default() };
        let batch = shared.config.batch_size as usize;
        loop {
            let now = shared.clock.now();
            let claim = queue::claim(&mut *conn, now, batch as i64, &shared.config.worker_id, now + lock(&shared.config))
                .await
                .map_err(db("claiming jobs"))?;
            let claimed = claim.jobs.len();
            report.claimed += claimed;
            let fired: Vec<(Settled, queue::Settlement)> = futures::stream::iter(claim.jobs)
                .map(|job| fire::fire(&*shared.trigger, domain, job, || shared.clock.now(), &shared.config))
                .buffer_unordered(shared.config.concurrency.max(1))
                .collect()
                .await;
            let (settled, settlements): (Vec<Settled>, Vec<queue::Settlement>) = fired.into_iter().unzip();
            match queue::settle(&mut *conn, &shared.config.worker_id, &settlements).await {
                Ok(_) => settled.iter().for_each(|s| report.add(s)),
                Err(e) => {
                    tracing::warn!(domain = %domain, error = %e, "cannot record fired jobs; their locks expire and they run again");
                    report.unrecorded += settled.len();
                }
            }
            if claimed < batch {
                return Ok(report);
            }
        }
    }

    /// Scans one domain for expired leases and enqueues their recovery jobs.
    ///
    /// # Errors
    /// [`SchedulerError`] when the domain's database cannot be read.
    pub async fn recover_leases(&self, domain: &DomainName) -> Result<u64, SchedulerError> {
        let pool = self
            .shared
            .source
            .pool(domain)
            .await
            .map_err(|source| SchedulerError::Pool { domain: domain.to_string(), source })?;
        let mut conn = pool
            .acquire()
            .await
            .map_err(|source| SchedulerError::Db { domain: domain.to_string(), context: "connecting", source })?;
        upkeep::recover_leases(&self.shared, domain, &mut conn).await
    }

    /// Serves every domain of the source until `shutdown` fires, then lets
    /// in-flight jobs finish for up to `drain_deadline`. Claimed jobs that had
    /// not started are handed back; jobs still running after the deadline keep
    /// their lock until it expires and are then claimed again elsewhere.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared.clone();
        let tracker = TaskTracker::new();
        let mut workers: std::collections::HashMap<DomainName, CancellationToken> = std::collections::HashMap::new();
        tracing::info!(worker = %shared.config.worker_id, "job scheduler started");
        loop {
            match shared.source.domains().await {
                Ok(domains) => {
                    for domain in &domains {
                        if !workers.contains_key(domain) {
                            let token = shutdown.child_token();
                            tracing::info!(domain = %domain, "serving jobs of domain");
                            tracker.spawn(worker::run_domain(shared.clone(), domain.clone(), token.clone(), tracker.clone()));
                            workers.insert(domain.clone(), token);
                        }
                    }
                    workers.retain(|domain, token| {
                        let keep = domains.contains(domain);
                        if !keep {
                            tracing::info!(domain = %domain, "domain no longer registered; its jobs are no longer served");
                            token.cancel();
                        }
                        keep
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot refresh the domain list; serving the known domains"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(shared.config.domain_refresh) => {}
            }
        }
        tracker.close();
        if tokio::time::timeout(shared.config.drain_deadline, tracker.wait()).await.is_err() {
            tracing::warn!(
                in_flight = tracker.len(),
                "drain deadline passed; unfinished jobs are claimed again once their lock expires"
            );
        } else {
            tracing::info!("job scheduler stopped");
        }
    }
}

fn lock(config: &SchedulerConfig) -> chrono::Duration {
    chrono::Duration::from_std(config.lock).unwrap_or(chrono::Duration::seconds(60))
}
