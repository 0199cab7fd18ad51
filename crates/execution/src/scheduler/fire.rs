//! Firing one claimed job through the trigger, and deciding how to settle it.
//!
//! | answer | the job becomes |
//! |---|---|
//! | `Applied`, `Stale` | `done` (conditional: the app usually did it already) |
//! | `Busy` | `pending` again after a delay that doubles per busy answer in a row (1 s up to 30 s); the claim does not count as an attempt |
//! | retryable error, no answer in time, panic | `pending` after exponential backoff |
//! | non-retryable error, or too many attempts | `failed`, with the reason |
//!
//! Firing does not touch the database: the caller records the [`Settlement`]s,
//! many per statement.

use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use rand::Rng;
use vnext_core::ident::DomainName;
use vnext_core::traits::{TransitionTrigger, TriggerOutcome};
use vnext_init::queue::{ClaimedJob, Settlement};

use super::SchedulerConfig;

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

/// Fires `job` and decides how to record the outcome.
pub async fn fire(
    trigger: &dyn TransitionTrigger,
    domain: &DomainName,
    job: ClaimedJob,
    now: impl Fn() -> DateTime<Utc>,
    config: &SchedulerConfig,
) -> (Settled, Settlement) {
    let (kind, due_at) = (job.kind.as_str(), job.due_at);
    let lag = (now() - due_at).to_std().map_or(0.0, |d| d.as_secs_f64());
    let fired = fire_job(trigger, domain, job, now, config).await;
    let outcome = match &fired.0 {
        Settled::Applied => "applied",
        Settled::Stale => "stale",
        Settled::Busy { .. } => "busy",
        Settled::Retried { .. } => "retried",
        Settled::Failed { .. } => "failed",
        Settled::Unrecorded { .. } => "unrecorded",
    };
    vnext_telemetry::metrics::job(domain.as_str(), kind, outcome, lag);
    fired
}

async fn fire_job(
    trigger: &dyn TransitionTrigger,
    domain: &DomainName,
    job: ClaimedJob,
    now: impl Fn() -> DateTime<Utc>,
    config: &SchedulerConfig,
) -> (Settled, Settlement) {
    let id = job.id;
    if job.attempts > config.max_attempts {
        let error = format!("gave up after {} attempts", job.attempts - 1);
        exhausted(domain, &job, &error);
        return (Settled::Failed { error: error.clone() }, Settlement::Failed { id, error });
    }
    let request = job.trigger_request(domain.as_str());
    let answer = tokio::time::timeout(
        config.trigger_timeout,
        AssertUnwindSafe(trigger.trigger(request)).catch_unwind(),
    )
    .await;
    let (retryable, error) = match answer {
        Ok(Ok(Ok(TriggerOutcome::Applied))) => return (Settled::Applied, Settlement::Done { id }),
        Ok(Ok(Ok(TriggerOutcome::Stale))) => return (Settled::Stale, Settlement::Done { id }),
        Ok(Ok(Ok(TriggerOutcome::Busy))) => {
            let streak = busy_streak(job.last_error.as_deref()) + 1;
            let due_at = now() + busy_delay(config, streak, rand::rng().random_range(0.0..=1.0));
            let note = busy_note(streak);
            return (
                Settled::Busy { due_at },
                Settlement::Pending { id, due_at, last_error: Some(note), count_attempt: false },
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
        (
            Settled::Retried { due_at, error: error.clone() },
            Settlement::Pending { id, due_at, last_error: Some(error), count_attempt: true },
        )
    } else {
        let error = if retryable { format!("gave up after {} attempts: {error}", job.attempts) } else { error };
        exhausted(domain, &job, &error);
        (Settled::Failed { error: error.clone() }, Settlement::Failed { id, error })
    }
}

/// A job that will not be delivered again: one WARN line naming it.
fn exhausted(domain: &DomainName, job: &ClaimedJob, error: &str) {
    tracing::warn!(
        domain = %domain, workflow = %job.flow, instance = %job.instance_id, transition = %job.transition_key,
        kind = job.kind.as_str(), attempts = job.attempts, error_code = "job.failed", trace_id = %format_args!("job:{}", job.id),
        error, "job failed for good; no more deliveries"
    );
}

/// What `last_error` says while a job waits for its busy instance: the number
/// of busy answers in a row, which sets the next delay.
const BUSY_NOTE: &str = "instance busy; answers in a row: ";

fn busy_note(streak: u32) -> String {
    format!("{BUSY_NOTE}{streak}")
}

/// Busy answers in a row so far, read back from the job's `last_error` (0 when
/// the previous delivery was not answered busy).
pub fn busy_streak(last_error: Option<&str>) -> u32 {
    last_error.and_then(|e| e.strip_prefix(BUSY_NOTE)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The wait before firing again after the `streak`-th busy answer in a row:
/// `busy_base` doubling per answer, at most `busy_max`, equal jitter (between
/// half and all of it). A busy instance is freed by its own transition or, at
/// the latest, by lease recovery, so the job waits without limit.
pub fn busy_delay(config: &SchedulerConfig, streak: u32, jitter_sample: f64) -> chrono::Duration {
    config.busy_policy().delay_for(streak.max(1), jitter_sample).unwrap_or_else(|| delta(config.busy_max))
}

fn delta(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(1))
}

/// The delay before the job's next delivery after its `attempt`-th failed one,
/// by the scheduler's delivery policy ([`SchedulerConfig::delivery_policy`]:
/// exponential from `retry_base`, capped at `retry_max`, equal jitter); `None`
/// when `max_attempts` is used up.
pub fn backoff(config: &SchedulerConfig, attempt: i32, jitter_sample: f64) -> Option<chrono::Duration> {
    let attempt = u32::try_from(attempt.max(1)).unwrap_or(1);
    config.delivery_policy().delay_for(attempt, jitter_sample)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
    fn busy_delay_doubles_up_to_30_seconds_and_never_gives_up() {
        let config = SchedulerConfig::default();
        let full: Vec<i64> = [1, 2, 3, 4, 5, 6, 7, 100, u32::MAX].iter().map(|&n| busy_delay(&config, n, 1.0).num_seconds()).collect();
        assert_eq!(full, vec![1, 2, 4, 8, 16, 30, 30, 30, 30]);
        // Equal jitter: between half and all of it.
        assert_eq!(busy_delay(&config, 1, 0.0).num_milliseconds(), 500);
        assert_eq!(busy_delay(&config, 9, 0.0).num_seconds(), 15);
    }

    #[test]
    fn busy_streak_is_read_back_from_the_note() {
        assert_eq!(busy_streak(None), 0);
        assert_eq!(busy_streak(Some("connection refused")), 0);
        assert_eq!(busy_streak(Some(&busy_note(1))), 1);
        assert_eq!(busy_streak(Some(&busy_note(17))), 17);
        assert_eq!(busy_streak(Some("instance busy; answers in a row: x")), 0);
    }
}
