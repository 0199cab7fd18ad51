//! In-process runs of async jobs through the same trigger the scheduler calls,
//! claimed and settled through the job queue like the scheduler's.
//!
//! - [`nudge`]: right after an async request commits, drains the domain's due
//!   async jobs (until the execution service's scheduler runs in every
//!   deployment; then this part and `Engine::after_accept`'s call can go).
//! - [`run_followups`]: the jobs a commit wrote for other instances (a subflow
//!   child's start, a parent's resume) run right after it, claimed like the
//!   scheduler claims them, so each still runs exactly once.

use std::time::Duration;

use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_core::traits::TriggerOutcome;
use vnext_init::queue::{self, ClaimedJob, JobKind, JobStatus};

use super::Engine;

/// Who holds the jobs this runner claims (`jobs.locked_by`).
const WORKER: &str = "app-inline";
/// How long a claim holds; a job still running after that is the scheduler's.
const LOCK: Duration = Duration::from_secs(60);
/// A job whose instance was busy is due again after this long.
const BUSY_DELAY: Duration = Duration::from_millis(50);
/// Busy answers after which draining stops and leaves the rest to the scheduler.
const MAX_BUSY_ROUNDS: u32 = 200;

/// Starts draining `domain`'s due async jobs in the background.
pub(crate) fn nudge(engine: Engine, domain: DomainName) {
    tokio::spawn(async move {
        if let Err(e) = drain(&engine, &domain).await {
            tracing::warn!(domain = %domain, error = %e, "in-process async runner stopped");
        }
    });
}

/// Runs jobs a commit created for other instances (a child's start, a
/// parent's resume) right away, each if still pending; one that cannot run now
/// (its instance is busy) is left to the in-process runner and the scheduler.
pub(crate) async fn run_followups(engine: &Engine, domain: &DomainName, jobs: Vec<Uuid>) {
    let pool = match engine.pool(domain).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(domain = %domain, error = %e, "follow-up jobs left to the scheduler");
            return;
        }
    };
    let mut deferred = false;
    for id in jobs {
        match queue::claim_by_id(&pool, id, WORKER, LOCK).await {
            Ok(Some(job)) => match Box::pin(run_claimed(engine, domain, &pool, job)).await {
                Ok(true) => {}
                Ok(false) => deferred = true,
                Err(e) => tracing::warn!(domain = %domain, job = %id, error = %e, "follow-up job failed"),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(domain = %domain, job = %id, error = %e, "follow-up job left to the scheduler");
                deferred = true;
            }
        }
    }
    if deferred {
        nudge(engine.clone(), domain.clone());
    }
}

/// Runs one claimed async job and settles it. False: it is pending again
/// (its instance was busy).
async fn run_claimed(engine: &Engine, domain: &DomainName, pool: &sqlx::PgPool, job: ClaimedJob) -> Result<bool, String> {
    let id = job.id;
    let (status, error) = match engine.do_trigger(job.trigger_request(domain.as_str())).await {
        Ok(TriggerOutcome::Applied) => return Ok(true),
        Ok(TriggerOutcome::Stale) => (JobStatus::Cancelled, None),
        Ok(TriggerOutcome::Busy) => (JobStatus::Pending, None),
        Err(e) => (JobStatus::Failed, Some(e.message)),
    };
    queue::settle_inline(pool, id, status, error, BUSY_DELAY).await.map_err(|e| e.to_string())?;
    Ok(status != JobStatus::Pending)
}

async fn drain(engine: &Engine, domain: &DomainName) -> Result<(), String> {
    let pool = engine.pool(domain).await.map_err(|e| e.to_string())?;
    let mut busy_rounds = 0;
    loop {
        let job = queue::claim_due(&pool, JobKind::Async, WORKER, LOCK).await.map_err(|e| e.to_string())?;
        let Some(job) = job else { return Ok(()) };
        if !Box::pin(run_claimed(engine, domain, &pool, job)).await? {
            busy_rounds += 1;
            if busy_rounds > MAX_BUSY_ROUNDS {
                return Ok(());
            }
            tokio::time::sleep(BUSY_DELAY).await;
        }
    }
}
