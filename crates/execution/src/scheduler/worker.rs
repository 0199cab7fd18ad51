//! One domain's worker: claim, fire, settle, sleep, on at most one connection.
//!
//! Every query of a domain (claims, settlements, lease scans, purges) runs on
//! the one connection its worker holds, so the scheduler never takes more than
//! one connection per domain, however many jobs are in flight (the triggers
//! use their own connections: the app's). That connection is one of two kinds:
//!
//! - **listening**: while the domain is active (jobs claimed, settled or
//!   notified within `listener_idle`; every domain starts active) and one of
//!   `max_listeners` slots is free, the connection runs `LISTEN vnext_jobs`
//!   and stays open: an enqueue wakes the worker at once. An idle domain gives
//!   its slot back.
//! - **polling**: otherwise the worker opens a connection (one of
//!   `poll_connections` slots) when it has something to do and closes it right
//!   after, unless it needs it again within [`LINGER`]. Without notifications
//!   it claims every `idle_poll`, and sleeps until the next due time the claim
//!   reports: a job due soon is served by a timer, not a listener. A domain
//!   whose claim finds jobs becomes active and gets a listener when one is free.
//!
//! Claimed jobs wait in the domain's queue. Runners fire them, each runner
//! holding one of the trigger permits (`concurrency`, shared by all domains)
//! and taking jobs from the queue until it is empty; every [`RUNNER_TURN`] jobs a
//! runner queues for its permit again, so a burst in one domain does not keep
//! the others waiting. A domain holds at most `batch_size` jobs claimed or in
//! flight, and claims again once half of them are done. Runners leave their
//! [`Settlement`]s with the worker, which writes them many per statement.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};
use sqlx::{Acquire, ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vnext_core::ident::DomainName;
use vnext_init::queue::{self, ClaimedJob, Settlement, JOBS_CHANNEL};

use super::upkeep::{purge, scan_flows};
use super::{Shared, SourceError, fire, lock};

/// `application_name` of every connection the scheduler opens itself, so they
/// can be told apart in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "vnext-scheduler";

/// How long to wait before trying again after the database failed us.
const ERROR_PAUSE: Duration = Duration::from_secs(2);
/// Shortest sleep before a claim that is not woken by a notification: jobs
/// falling due close together are claimed together, not one query each.
const MIN_SLEEP: Duration = Duration::from_millis(10);
/// A polling connection stays open while it is needed again within this long.
const LINGER: Duration = Duration::from_millis(250);
/// Settlements wait this long at most, so that many go in one statement.
const FLUSH_DELAY: Duration = Duration::from_millis(20);
/// After a failed attempt to listen, the domain is polled this long before
/// listening is tried again.
const LISTEN_RETRY: Duration = Duration::from_secs(10);
/// Jobs a runner fires before it queues for its permit again.
const RUNNER_TURN: usize = 16;

/// Serves one domain until `stop` fires, then hands back what it claimed but
/// did not start and waits for the jobs in flight.
pub(crate) async fn run_domain(shared: Arc<Shared>, domain: DomainName, stop: CancellationToken, tracker: TaskTracker) {
    Worker::new(shared, domain, stop, tracker).run().await;
}

/// The connection a worker holds.
enum Link {
    /// Listens for enqueues, and runs the domain's queries in between
    /// (notifications arriving meanwhile are buffered, not lost).
    Listening { listener: PgListener, pool: PgPool, opened: Instant, _slot: OwnedSemaphorePermit },
    /// Opened for a round, closed soon after.
    Polling { conn: PgConnection, last_used: Instant, _slot: OwnedSemaphorePermit },
}

impl Link {
    async fn conn(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        match self {
            Link::Listening { listener, .. } => listener.acquire().await,
            Link::Polling { conn, last_used, .. } => {
                *last_used = Instant::now();
                Ok(conn)
            }
        }
    }

    async fn close(self) {
        match self {
            Link::Listening { listener, pool, .. } => {
                drop(listener);
                // Waits for the connection to come back from `UNLISTEN`, then closes it.
                let _ = tokio::time::timeout(Duration::from_secs(5), pool.close()).await;
            }
            Link::Polling { conn, .. } => {
                let _ = conn.close().await;
            }
        }
    }
}

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
enum Trouble {
    #[error("cannot get the domain's connection settings: {0}")]
    Source(SourceError),
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

/// What woke the worker.
enum Event {
    Stop,
    /// A runner left a settlement, ended, or made room for more jobs.
    Runners,
    Notified(Result<Option<PgNotification>, sqlx::Error>),
    Permit(OwnedSemaphorePermit),
    Timer,
}

/// What a worker shares with its runners.
#[derive(Default)]
struct Queue {
    /// Claimed jobs not started yet, with when they were claimed.
    ready: Mutex<VecDeque<(Instant, ClaimedJob)>>,
    /// Settlements not written yet.
    settled: Mutex<Vec<Settlement>>,
    /// Jobs taken by a runner and not settled yet.
    in_flight: AtomicUsize,
    runners: AtomicUsize,
    /// Wakes the worker.
    wake: Notify,
}

impl Queue {
    fn ready_len(&self) -> usize {
        self.ready.lock().expect("queue lock").len()
    }

    fn take_settled(&self) -> Vec<Settlement> {
        std::mem::take(&mut *self.settled.lock().expect("queue lock"))
    }

    fn settle(&self, s: Settlement) {
        let mut settled = self.settled.lock().expect("queue lock");
        settled.push(s);
        if settled.len() == 1 {
            self.wake.notify_one();
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    domain: DomainName,
    stop: CancellationToken,
    tracker: TaskTracker,
    link: Option<Link>,
    /// How to connect to the domain, with [`APPLICATION_NAME`]; looked up on first use.
    options: Option<PgConnectOptions>,
    queue: Arc<Queue>,
    /// Settlements taken from the runners and not written yet, and by when
    /// they should be.
    unsettled: Vec<Settlement>,
    flush_at: Option<Instant>,
    /// The last claim filled its limit: more jobs may be due already.
    more_due: bool,
    /// When to claim next without being woken.
    claim_at: Instant,
    last_active: Instant,
    /// No listening before this instant (after a failure, or while stopping).
    listen_after: Instant,
    next_lease_scan: Instant,
    next_purge: Instant,
    /// Consecutive failed rounds: the pause grows, and only the first is logged loudly.
    failures: u32,
}

impl Worker {
    fn new(shared: Arc<Shared>, domain: DomainName, stop: CancellationToken, tracker: TaskTracker) -> Worker {
        let now = Instant::now();
        // Not at start-up: a fleet restarting together should not purge together.
        let next_purge = now + shared.config.purge_every.mul_f64(rand::random_range(0.05..1.0));
        Worker {
            shared,
            domain,
            stop,
            tracker,
            link: None,
            options: None,
            queue: Arc::default(),
            unsettled: Vec::new(),
            flush_at: None,
            more_due: false,
            claim_at: now,
            last_active: now,
            listen_after: now,
            next_lease_scan: now,
            next_purge,
            failures: 0,
        }
    }

    fn batch(&self) -> usize {
        (self.shared.config.batch_size as usize).max(1)
    }

    /// How many more jobs this domain may claim now.
    fn room(&self) -> usize {
        self.batch().saturating_sub(self.queue.ready_len() + self.queue.in_flight.load(Ordering::Acquire))
    }

    fn is_active(&self) -> bool {
        self.last_active.elapsed() < self.shared.config.listener_idle
    }

    fn wants_listener(&self) -> bool {
        self.shared.config.max_listeners > 0 && Instant::now() >= self.listen_after && self.is_active()
    }

    async fn run(mut self) {
        loop {
            if self.stop.is_cancelled() {
                break;
            }
            self.collect_settled();
            self.start_runners();
            let now = Instant::now();
            let room = self.room();
            let claim = room > 0 && (now >= self.claim_at || (self.more_due && room >= (self.batch() / 2).max(1)));
            let flush = self.flush_at.is_some_and(|t| now >= t);
            if claim || flush {
                match self.round(claim).await {
                    Ok(()) => {
                        if self.failures > 0 {
                            tracing::info!(domain = %self.domain, "jobs are served again");
                            self.failures = 0;
                        }
                        self.start_runners();
                    }
                    Err(e) => {
                        self.drop_link().await;
                        report_failure(&self.domain, &e.to_string(), self.failures);
                        pause(&self.stop, error_pause(self.failures)).await;
                        self.failures += 1;
                        self.claim_at = Instant::now();
                        continue;
                    }
                }
            }
            self.tidy_link().await;
            match self.wait().await {
                Event::Stop => break,
                Event::Runners | Event::Timer => {}
                Event::Notified(Ok(Some(_))) => {
                    self.last_active = Instant::now();
                    self.claim_at = Instant::now();
                    if let Some(Link::Listening { listener, .. }) = &mut self.link {
                        while listener.next_buffered().is_some() {}
                    }
                }
                // The connection was lost and is back: notifications in between are gone.
                Event::Notified(Ok(None)) => self.claim_at = Instant::now(),
                Event::Notified(Err(e)) => {
                    tracing::warn!(domain = %self.domain, error = %e, "job notifications lost; polling for a while");
                    self.drop_link().await;
                    self.listen_after = Instant::now() + LISTEN_RETRY;
                    self.claim_at = Instant::now();
                }
                Event::Permit(permit) => self.spawn_runner(permit),
            }
        }
        self.shut_down().await;
    }

    /// Writes pending settlements and, when `claim`, scans leases and purges
    /// when due and claims what is due.
    async fn round(&mut self, claim: bool) -> Result<(), Trouble> {
        self.ensure_link().await?;
        let mut link = self.link.take().expect("ensure_link leaves a link");
        let done = self.round_on(&mut link, claim).await;
        self.link = Some(link);
        done
    }

    async fn round_on(&mut self, link: &mut Link, claim: bool) -> Result<(), Trouble> {
        let shared = self.shared.clone();
        let config = &shared.config;
        let conn = link.conn().await?;
        if !self.unsettled.is_empty() {
            queue::settle(&mut *conn, &config.worker_id, &self.unsettled).await?;
            self.unsettled.clear();
            self.flush_at = None;
        }
        if !claim {
            return Ok(());
        }
        let now = Instant::now();
        if now >= self.next_lease_scan {
            self.next_lease_scan = now + config.lease_scan;
            if let Err(e) = scan_flows(&shared, &self.domain, &mut *conn).await {
                tracing::warn!(domain = %self.domain, error = %e, "lease scan failed");
            }
        }
        if now >= self.next_purge {
            self.next_purge = now + config.purge_every;
            purge(&shared, &self.domain, &mut *conn).await;
        }
        let limit = self.room();
        let clock_now = shared.clock.now();
        let claimed =
            queue::claim(&mut *conn, clock_now, limit as i64, &config.worker_id, clock_now + lock(config)).await?;
        self.more_due = claimed.jobs.len() >= limit;
        if !claimed.jobs.is_empty() {
            self.last_active = now;
        }
        self.queue.ready.lock().expect("queue lock").extend(claimed.jobs.into_iter().map(|j| (now, j)));
        let until_due = claimed.next_at.map_or(config.idle_poll, |t| self.until(t));
        self.claim_at = Instant::now() + until_due.min(config.idle_poll).max(MIN_SLEEP);
        Ok(())
    }

    /// How long until `t` by the scheduler's clock.
    fn until(&self, t: DateTime<Utc>) -> Duration {
        (t - self.shared.clock.now()).to_std().unwrap_or(Duration::ZERO)
    }

    /// Makes sure a connection is held: listening when the domain wants to and a
    /// slot is free, polling otherwise.
    async fn ensure_link(&mut self) -> Result<(), Trouble> {
        let wants = self.wants_listener();
        match &self.link {
            Some(Link::Listening { .. }) => return Ok(()),
            Some(Link::Polling { .. }) if !wants => return Ok(()),
            _ => {}
        }
        if wants && let Ok(slot) = self.shared.listener_slots.clone().try_acquire_owned() {
            match self.listen(slot).await {
                Ok(link) => {
                    if let Some(old) = self.link.replace(link) {
                        old.close().await;
                    }
                    // Enqueues committed before `LISTEN` took effect were not notified.
                    self.claim_at = Instant::now();
                    tracing::debug!(domain = %self.domain, "listening for jobs");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(domain = %self.domain, error = %e, "cannot listen for job notifications; polling for a while");
                    self.listen_after = Instant::now() + LISTEN_RETRY;
                }
            }
        }
        if self.link.is_none() {
            let slot = self.shared.poll_slots.clone().acquire_owned().await.expect("poll slots are never closed");
            let conn = self.options().await?.connect().await?;
            self.link = Some(Link::Polling { conn, last_used: Instant::now(), _slot: slot });
        }
        Ok(())
    }

    async fn listen(&mut self, slot: OwnedSemaphorePermit) -> Result<Link, Trouble> {
        // A pool of one: `PgListener` reconnects through it after a lost connection.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(self.options().await?);
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(JOBS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match listening {
            Ok(listener) => Ok(Link::Listening { listener, pool, opened: Instant::now(), _slot: slot }),
            Err(e) => {
                pool.close().await;
                Err(e.into())
            }
        }
    }

    async fn options(&mut self) -> Result<PgConnectOptions, Trouble> {
        if let Some(o) = &self.options {
            return Ok(o.clone());
        }
        let pool = self.shared.source.pool(&self.domain).await.map_err(Trouble::Source)?;
        let options = (*pool.connect_options()).clone().application_name(APPLICATION_NAME);
        self.options = Some(options.clone());
        Ok(options)
    }

    async fn drop_link(&mut self) {
        if let Some(link) = self.link.take() {
            link.close().await;
        }
        // Settings may have changed (a domain moved, a password rotated).
        self.options = None;
    }

    /// Gives a listener back when the domain went idle or the connection is old
    /// (connections cache catalog entries of every schema they touched), and
    /// closes a polling connection that is not needed again soon.
    async fn tidy_link(&mut self) {
        let close = match &self.link {
            None => false,
            Some(Link::Listening { opened, .. }) => {
                let old = opened.elapsed() >= self.shared.config.connection_lifetime;
                if old {
                    // Listen again on a fresh connection right away.
                    self.claim_at = Instant::now();
                }
                old || !self.is_active()
            }
            Some(Link::Polling { last_used, .. }) => {
                let soon = Instant::now() + LINGER;
                let needed = self.queue.in_flight.load(Ordering::Acquire) > 0
                    || self.flush_at.is_some()
                    || (self.room() > 0 && (self.claim_at <= soon || self.more_due));
                !needed || last_used.elapsed() >= LINGER
            }
        };
        if close && let Some(link) = self.link.take() {
            if matches!(link, Link::Listening { .. }) {
                tracing::debug!(domain = %self.domain, "domain idle; polled instead of listened");
            }
            link.close().await;
        }
    }

    /// Sleeps until something happens.
    async fn wait(&mut self) -> Event {
        let now = Instant::now();
        let mut wake = now + self.shared.config.idle_poll;
        if self.room() > 0 {
            wake = wake.min(self.claim_at);
        }
        if let Some(t) = self.flush_at {
            wake = wake.min(t);
        }
        match &self.link {
            Some(Link::Polling { last_used, .. }) => wake = wake.min(*last_used + LINGER),
            Some(Link::Listening { .. }) => wake = wake.min(now + self.shared.config.listener_idle),
            None => {}
        }
        let wants_permit = self.queue.ready_len() > self.queue.runners.load(Ordering::Acquire);
        let permits = self.shared.permits.clone();
        let (link, queue) = (&mut self.link, &self.queue);
        tokio::select! {
            () = self.stop.cancelled() => Event::Stop,
            () = queue.wake.notified() => Event::Runners,
            n = notification(link) => Event::Notified(n),
            p = permits.acquire_owned(), if wants_permit => Event::Permit(p.expect("the permit semaphore is never closed")),
            () = tokio::time::sleep_until(wake.into()) => Event::Timer,
        }
    }

    /// Takes the runners' settlements for the next write.
    fn collect_settled(&mut self) {
        let settled = self.queue.take_settled();
        if settled.is_empty() {
            return;
        }
        let now = Instant::now();
        for s in &settled {
            if let Settlement::Pending { due_at, .. } = s {
                // Put back for later: no need to claim to learn when.
                self.claim_at = self.claim_at.min(now + self.until(*due_at).max(MIN_SLEEP));
            }
        }
        self.unsettled.extend(settled);
        self.flush_at.get_or_insert(now + FLUSH_DELAY);
        self.last_active = now;
    }

    /// Starts runners for queued jobs while permits are free, one per job at most.
    fn start_runners(&mut self) {
        let queued = self.queue.ready_len();
        while self.queue.runners.load(Ordering::Acquire) < queued {
            let Ok(permit) = self.shared.permits.clone().try_acquire_owned() else { break };
            self.spawn_runner(permit);
        }
    }

    fn spawn_runner(&mut self, permit: OwnedSemaphorePermit) {
        self.queue.runners.fetch_add(1, Ordering::AcqRel);
        let (shared, domain, queue) = (self.shared.clone(), self.domain.clone(), self.queue.clone());
        self.tracker.spawn(run_jobs(shared, domain, queue, permit));
    }

    /// Hands back jobs that never started, waits for the ones in flight (the
    /// scheduler bounds this with its drain deadline), records them, and closes.
    async fn shut_down(mut self) {
        self.listen_after = Instant::now() + Duration::from_secs(3600);
        let unstarted: Vec<_> = self.queue.ready.lock().expect("queue lock").drain(..).collect();
        self.unsettled.extend(unstarted.iter().map(|(_, job)| hand_back(job)));
        loop {
            self.collect_settled();
            if !self.unsettled.is_empty() {
                self.flush_on_stop().await;
            }
            if self.queue.runners.load(Ordering::Acquire) == 0 {
                break;
            }
            self.queue.wake.notified().await;
        }
        if let Some(link) = self.link.take() {
            link.close().await;
        }
    }

    async fn flush_on_stop(&mut self) {
        if let Err(e) = self.round(false).await {
            tracing::warn!(domain = %self.domain, error = %e, "cannot record jobs on shutdown; they run again once their lock expires");
            self.unsettled.clear();
            self.drop_link().await;
        }
    }
}

/// A runner: fires queued jobs until the queue is empty, holding one trigger
/// permit and queueing for it again every [`RUNNER_TURN`] jobs. A job claimed
/// so long ago that its lock could expire while it runs is handed back instead.
async fn run_jobs(shared: Arc<Shared>, domain: DomainName, queue: Arc<Queue>, mut permit: OwnedSemaphorePermit) {
    let stale_after = shared.config.lock / 4;
    let mut fired = 0;
    loop {
        let next = {
            let mut ready = queue.ready.lock().expect("queue lock");
            let next = ready.pop_front();
            if next.is_some() {
                // Under the lock, so that the worker never sees the job in neither count.
                queue.in_flight.fetch_add(1, Ordering::AcqRel);
            }
            next
        };
        let Some((claimed_at, job)) = next else { break };
        let settlement = if claimed_at.elapsed() > stale_after {
            hand_back(&job)
        } else {
            fired += 1;
            fire::fire(&*shared.trigger, &domain, job, || shared.clock.now(), &shared.config).await.1
        };
        queue.settle(settlement);
        queue.in_flight.fetch_sub(1, Ordering::AcqRel);
        if fired == RUNNER_TURN {
            fired = 0;
            drop(permit);
            permit = acquire(&shared.permits).await;
        }
    }
    drop(permit);
    queue.runners.fetch_sub(1, Ordering::AcqRel);
    queue.wake.notify_one();
}

async fn acquire(permits: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    permits.clone().acquire_owned().await.expect("the permit semaphore is never closed")
}

/// Returns a claimed job that never started to `pending`, as it was.
fn hand_back(job: &ClaimedJob) -> Settlement {
    Settlement::Pending { id: job.id, due_at: job.due_at, last_error: None, count_attempt: false }
}

/// The next notification when listening; never otherwise.
async fn notification(link: &mut Option<Link>) -> Result<Option<PgNotification>, sqlx::Error> {
    match link {
        Some(Link::Listening { listener, .. }) => listener.try_recv().await,
        _ => std::future::pending().await,
    }
}

/// 2 s, doubling per consecutive failure, at most a minute.
fn error_pause(failures: u32) -> Duration {
    ERROR_PAUSE.saturating_mul(1 << failures.min(5)).min(Duration::from_secs(60))
}

fn report_failure(domain: &DomainName, error: &str, failures: u32) {
    if failures == 0 {
        tracing::warn!(domain = %domain, error, "cannot serve the domain's jobs; retrying with backoff");
    } else {
        tracing::debug!(domain = %domain, error, failures, "cannot serve the domain's jobs");
    }
}

/// Waits `d` unless stopped first.
async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}
