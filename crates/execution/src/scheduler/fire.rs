//! Firing one claimed job through the trigger, and settling it by the answer.
//!
//! | answer | the job becomes |
//! |---|---|
//! | `Applied`, `Stale` | `done` (conditional: the app usually did it already) |
//! | `Busy` | `pending` again shortly; the claim does not count as an attempt |
//! | retryable error, no answer in time, panic | `pending` after exponential backoff |
//! | non-retryable error, or too many attempts | `failed`, with the reason |

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_core::traits::{TransitionTrigger, TriggerOutcome, TriggerRequest};

use super::SchedulerConfig;
use super::store::{self, ClaimedJob};

/// What became of one fired job.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    Applied,
    Stale,
    /// Put back until the instance is free.
    Busy { due_at: DateTime<Utc> },
    /// Put back after a failure that may pass.
    Retried { due_at: DateTime<Utc>, error: String },
    Failed { error: String },
    /// The answer could not be recorded; the job's lock will expire and
    /// another round picks it up again.
    Unrecorded { error: String },
}

/// Fires `job` and records the outcome.
///
/// The `done` mark of an applied or stale job is a formality when the app
/// already closed the job in its own transaction, so it goes to `done_marks`,
/// whose receiver ([`run_done_batcher`]) closes many jobs per statement.
pub async fn fire(
    trigger: &dyn TransitionTrigger,
    pool: &PgPool,
    domain: &DomainName,
    job: ClaimedJob,
    now: impl Fn() -> DateTime<Utc>,
    config: &SchedulerConfig,
    done_marks: &mpsc::UnboundedSender<Uuid>,
) -> Settled {
    let worker = config.worker_id.as_str();
    if job.attempts > config.max_attempts {
        let error = format!("gave up after {} attempts", job.attempts - 1);
        return record(store::mark_failed(pool, job.id, worker, &error).await, Settled::Failed { error });
    }
    let request = TriggerRequest {
        domain: domain.to_string(),
        flow: job.flow.clone(),
        instance_id: job.instance_id,
        transition: job.transition_key.clone(),
        origin: job.origin(),
        armed_state: job.armed_state.clone(),
        body: job.body.clone().unwrap_or(Value::Null),
        job_id: job.id,
        attempt: job.attempts,
    };
    let answer = tokio::time::timeout(
        config.trigger_timeout,
        AssertUnwindSafe(trigger.trigger(request)).catch_unwind(),
    )
    .await;
    let (retryable, error) = match answer {
        Ok(Ok(Ok(outcome @ (TriggerOutcome::Applied | TriggerOutcome::Stale)))) => {
            let settled = if outcome == TriggerOutcome::Applied { Settled::Applied } else { Settled::Stale };
            return match done_marks.send(job.id) {
                Ok(()) => settled,
                // The batcher is gone (shutdown): close the job directly.
                Err(_) => record(store::mark_done(pool, job.id).await, settled),
            };
        }
        Ok(Ok(Ok(TriggerOutcome::Busy))) => {
            let due_at = now() + jittered(config.busy_delay, 0.5);
            return record(
                store::reschedule(pool, job.id, worker, due_at, None, false).await,
                Settled::Busy { due_at },
            );
        }
        Ok(Ok(Err(e))) => (e.retryable, e.message),
        Ok(Err(_panic)) => (true, "the transition trigger panicked".to_string()),
        Err(_elapsed) => {
            (true, format!("the transition trigger did not answer within {} s", config.trigger_timeout.as_secs()))
        }
    };
    tracing::warn!(
        domain = %domain, flow = %job.flow, instance = %job.instance_id, job = %job.id,
        transition = %job.transition_key, attempt = job.attempts, retryable, error = %error,
        "job failed"
    );
    let retry_in = if retryable { backoff(config, job.attempts, rand::rng().random_range(0.0..=1.0)) } else { None };
    if let Some(delay) = retry_in {
        let due_at = now() + delay;
        record(
            store::reschedule(pool, job.id, worker, due_at, Some(&error), true).await,
            Settled::Retried { due_at, error },
        )
    } else {
        let error = if retryable { format!("gave up after {} attempts: {error}", job.attempts) } else { error };
        record(store::mark_failed(pool, job.id, worker, &error).await, Settled::Failed { error })
    }
}

/// Closes queued jobs in batches: it waits for one id, takes every other id
/// already queued (up to [`DONE_BATCH`]), and closes them in one statement. Under
/// load batches grow on their own; when idle each id is closed at once.
pub async fn run_done_batcher(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Uuid>) {
    let mut ids = Vec::with_capacity(DONE_BATCH);
    while queue.recv_many(&mut ids, DONE_BATCH).await > 0 {
        if let Err(e) = store::mark_done_many(&pool, &ids).await {
            // Unclosed jobs run again once their lock expires and come back stale.
            tracing::warn!(error = %e, jobs = ids.len(), "cannot close settled jobs; they will be re-checked");
        }
        ids.clear();
    }
}

/// Ids closed per statement at most.
pub const DONE_BATCH: usize = 512;

/// The settled outcome, or why it could not be written. A write that matched
/// no row means another worker or the app settled the job first; that is fine.
fn record(written: Result<bool, sqlx::Error>, settled: Settled) -> Settled {
    match written {
        Ok(_) => settled,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a job's outcome; its lock will expire and it runs again");
            Settled::Unrecorded { error: e.to_string() }
        }
    }
}

/// The delay before the job's next delivery after its `attempt`-th failed one,
/// by the scheduler's delivery policy ([`SchedulerConfig::delivery_policy`]:
/// exponential from `retry_base`, capped at `retry_max`, equal jitter); `None`
/// when `max_attempts` is used up.
pub fn backoff(config: &SchedulerConfig, attempt: i32, jitter_sample: f64) -> Option<chrono::Duration> {
    let attempt = u32::try_from(attempt.max(1)).unwrap_or(1);
    config.delivery_policy().delay_for(attempt, jitter_sample)
}

/// `d` spread by up to ±`spread` (0.2 = 20%) so jobs failing together do not
/// retry in lockstep.
fn jittered(d: Duration, spread: f64) -> chrono::Duration {
    let factor = 1.0 + rand::rng().random_range(-spread..=spread);
    chrono::Duration::from_std(d.mul_f64(factor.max(0.0))).unwrap_or(chrono::Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let config = SchedulerConfig {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_attempts: 10,
            ..SchedulerConfig::default()
        };
        let full: Vec<i64> = (1..=9).map(|a| backoff(&config, a, 1.0).unwrap().num_seconds()).collect();
        assert_eq!(full, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // Equal jitter: at least half of the computed delay.
        assert_eq!(backoff(&config, 3, 0.0).unwrap().num_milliseconds(), 2000);
        assert_eq!(backoff(&config, 0, 1.0).unwrap().num_seconds(), 1);
        // The tenth delivery was the last one.
        assert_eq!(backoff(&config, 10, 1.0), None);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(10), 0.2).num_milliseconds();
            assert!((8000..=12000).contains(&j), "{j}");
        }
    }
}
