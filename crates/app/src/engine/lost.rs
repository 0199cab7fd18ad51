//! Runs lost with their process: what a lease records about the run holding
//! it, and what lease recovery does when that run never came back. Decided
//! without I/O; `recover` reads the lease and writes the outcome.
//!
//! A run holding a lease stores, with the lease, the request it runs (its
//! first hop, body, redacted headers and query, and attempt) and, before each
//! group of tasks with external I/O, the step in flight ([`LeaseStep`]). The
//! row itself still holds what was committed before the run, so whatever the
//! run did in memory is gone; what recovery can do is run the request again.
//!
//! The lost step counts as a failed attempt of its tasks, with error
//! `Lease:expired` (see `vnext_core::boundary::resolve_lost`), and their error
//! boundaries decide ([`verdict`]):
//! - a Retry rule: a retry job runs the request again after the policy's delay,
//!   as the next attempt; once the retries are exhausted, the instance faults;
//! - Rollback or Notify: the named transition runs at once from where the
//!   instance rests, when the lost step belonged to the run's first hop (the
//!   committed state is where that hop started); for a later hop the request
//!   runs again, which reaches that hop with a real outcome;
//! - Ignore or Log: the request runs again at once (nothing after the lost step
//!   can run without running the ones before it);
//! - Abort: the instance faults;
//! - no rule: a run started by a job (a timer, the workflow timeout, an async
//!   request, a retry) runs again at once, as the job would; a run of a
//!   synchronous request faults: its client saw the request fail and may send
//!   it again.
//!
//! Every fault keeps the request on its incident, so `POST …/retry` runs it
//! with the client's original body.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vnext_core::boundary::{self, BoundaryDecision};
use vnext_core::model::ErrorBoundary;

/// The step in flight under a lease: one group of task entries with external
/// I/O, stored on the lease before the group runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeaseStep {
    /// The hop's transition.
    pub hop: String,
    /// The hop is the run's first: the committed row rests where it starts.
    pub first_hop: bool,
    /// The state whose error boundary applies to the group's tasks.
    pub state: String,
    /// `execution`, `exit` or `entry`.
    pub phase: String,
    pub order: i64,
    /// The task entries of the group with external I/O.
    pub tasks: Vec<StepTask>,
    /// The attempt the run was at.
    pub attempt: u32,
    /// When the group started.
    pub at: DateTime<Utc>,
}

/// One task entry of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StepTask {
    /// The entry's path in the workflow (`/states/1/onEntries/0`).
    pub path: String,
    pub key: String,
}

impl LeaseStep {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a lease step always serializes")
    }

    /// A stored step; `None` when absent or unreadable (a lease written before
    /// steps were recorded).
    pub fn from_value(value: Option<&Value>) -> Option<LeaseStep> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// What lease recovery does with a lost run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Run the request again now, as lease recovery.
    Rerun,
    /// The lost attempt failed; a retry job runs the request again at `due`
    /// as attempt `attempt`.
    Retry { due: DateTime<Utc>, attempt: u32 },
    /// Run transition `key` from where the instance rests (Rollback, Notify).
    Divert { key: String },
    /// Fault the instance: why, the task that was lost (if known) and the
    /// boundary action the incident records.
    Fault {
        reason: String,
        task: Option<String>,
        action: Option<&'static str>,
    },
}

/// What a lost run's boundaries decide. `step` is the lost step (absent for a
/// lease written before steps were recorded), `levels` the task-, state- and
/// workflow-level boundaries of each of its tasks (by task key, in step order),
/// `by_job` whether a job started the run, `rerunnable` whether its request is
/// known, `sample` the jitter sample of a retry's delay.
pub(crate) fn verdict(
    step: Option<&LeaseStep>,
    levels: &[(&str, [Option<&ErrorBoundary>; 3])],
    by_job: bool,
    rerunnable: bool,
    now: DateTime<Utc>,
    sample: f64,
) -> Verdict {
    let unknown = |reason: &str, task: Option<&str>| Verdict::Fault {
        reason: reason.to_string(),
        task: task.map(str::to_string),
        action: None,
    };
    if !rerunnable {
        return unknown("the request of the lost run is not known", None);
    }
    let Some(step) = step else {
        return if by_job {
            Verdict::Rerun
        } else {
            unknown("no error boundary handles it", None)
        };
    };
    // As in a group: the first task (in definition order) that stops the hop decides.
    for (task, levels) in levels {
        match boundary::resolve_lost(*levels, task, step.attempt) {
            BoundaryDecision::Continue { .. } => {}
            BoundaryDecision::Retry {
                policy,
                retry_number,
                ..
            } => {
                return match policy.delay_for(retry_number, sample) {
                    Some(delay) => Verdict::Retry {
                        due: now + delay,
                        attempt: step.attempt + 1,
                    },
                    None => Verdict::Fault {
                        reason: "retries exhausted".into(),
                        task: Some(task.to_string()),
                        action: Some("retry"),
                    },
                };
            }
            BoundaryDecision::RunTransition { key, .. } => {
                return if step.first_hop {
                    Verdict::Divert { key }
                } else {
                    Verdict::Rerun
                };
            }
            BoundaryDecision::Fault {
                reason,
                origin: Some(_),
            } => {
                return Verdict::Fault {
                    reason,
                    task: Some(task.to_string()),
                    action: Some("abort"),
                };
            }
            BoundaryDecision::Fault {
                reason,
                origin: None,
            } => {
                return if by_job {
                    Verdict::Rerun
                } else {
                    unknown(&reason, Some(task))
                };
            }
        }
    }
    Verdict::Rerun
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;

    fn boundary(v: Value) -> ErrorBoundary {
        serde_json::from_value(json!({ "onError": v })).expect("an error boundary")
    }

    fn step(first_hop: bool, attempt: u32) -> LeaseStep {
        LeaseStep {
            hop: "pay".into(),
            first_hop,
            state: "paying".into(),
            phase: "entry".into(),
            order: 1,
            tasks: vec![StepTask {
                path: "/states/1/onEntries/0".into(),
                key: "charge".into(),
            }],
            attempt,
            at: Utc::now(),
        }
    }

    fn retry_5xx() -> ErrorBoundary {
        boundary(json!([{"action": 1, "errorCodes": ["Task:5xx"],
            "retryPolicy": {"initialDelay": "PT2S", "maxRetries": 2, "backoffType": 1, "useJitter": false}}]))
    }

    #[test]
    fn a_lost_task_with_a_retry_policy_is_retried_with_backoff_then_faults() {
        let now = Utc::now();
        let b = retry_5xx();
        let levels = [("charge", [Some(&b), None, None])];
        assert_eq!(
            verdict(Some(&step(true, 1)), &levels, false, true, now, 0.5),
            Verdict::Retry {
                due: now + TimeDelta::seconds(2),
                attempt: 2
            }
        );
        // Exponential: the second retry waits twice as long.
        assert_eq!(
            verdict(Some(&step(false, 2)), &levels, true, true, now, 0.5),
            Verdict::Retry {
                due: now + TimeDelta::seconds(4),
                attempt: 3
            }
        );
        match verdict(Some(&step(true, 3)), &levels, false, true, now, 0.5) {
            Verdict::Fault {
                reason,
                task,
                action,
            } => {
                assert!(
                    reason.contains("Lease:expired")
                        && reason.contains("exhausted after 3 attempts"),
                    "{reason}"
                );
                assert_eq!((task.as_deref(), action), (Some("charge"), Some("abort")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_a_retry_policy_the_boundary_decides() {
        let now = Utc::now();
        let rollback = boundary(json!([{"action": 2, "transition": "undo"}]));
        let levels = [("charge", [None, Some(&rollback), None])];
        assert_eq!(
            verdict(Some(&step(true, 1)), &levels, false, true, now, 0.5),
            Verdict::Divert { key: "undo".into() }
        );
        // A later hop's step: the committed row is not where that hop started.
        assert_eq!(
            verdict(Some(&step(false, 1)), &levels, false, true, now, 0.5),
            Verdict::Rerun
        );
        let ignore = boundary(json!([{"action": 3}]));
        assert_eq!(
            verdict(
                Some(&step(true, 1)),
                &[("charge", [None, None, Some(&ignore)])],
                false,
                true,
                now,
                0.5
            ),
            Verdict::Rerun
        );
        let abort = boundary(json!([{"action": 0}]));
        assert!(matches!(
            verdict(
                Some(&step(true, 1)),
                &[("charge", [Some(&abort), None, None])],
                true,
                true,
                now,
                0.5
            ),
            Verdict::Fault {
                action: Some("abort"),
                ..
            }
        ));
    }

    #[test]
    fn with_neither_a_request_faults_and_a_job_runs_again() {
        let now = Utc::now();
        let levels = [("charge", [None, None, None])];
        match verdict(Some(&step(true, 1)), &levels, false, true, now, 0.5) {
            Verdict::Fault {
                reason,
                task,
                action: None,
            } => {
                assert!(reason.contains("no error boundary"), "{reason}");
                assert_eq!(task.as_deref(), Some("charge"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            verdict(Some(&step(true, 1)), &levels, true, true, now, 0.5),
            Verdict::Rerun
        );
        // A lease written before steps were recorded.
        assert_eq!(verdict(None, &[], true, true, now, 0.5), Verdict::Rerun);
        assert!(matches!(
            verdict(None, &[], false, true, now, 0.5),
            Verdict::Fault { task: None, .. }
        ));
        // Nothing to run again.
        assert!(matches!(
            verdict(Some(&step(true, 1)), &levels, true, false, now, 0.5),
            Verdict::Fault { .. }
        ));
    }

    #[test]
    fn the_first_task_that_stops_the_group_decides_and_steps_read_back() {
        let now = Utc::now();
        let ignore = boundary(json!([{"action": 3}]));
        let b = retry_5xx();
        let levels = [
            ("notify", [Some(&ignore), None, None]),
            ("charge", [Some(&b), None, None]),
        ];
        assert!(matches!(
            verdict(Some(&step(true, 1)), &levels, false, true, now, 0.5),
            Verdict::Retry { attempt: 2, .. }
        ));
        let s = step(true, 2);
        assert_eq!(LeaseStep::from_value(Some(&s.to_value())), Some(s));
        assert_eq!(LeaseStep::from_value(Some(&json!({"hop": 1}))), None);
        assert_eq!(LeaseStep::from_value(None), None);
    }
}
