//! Running one group of task entries (same `order`): input mappings, the task
//! itself (a script task in place, anything with I/O through the executor, all
//! of the group at once), then output mappings merged in definition order.

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;
use vnext_core::boundary::{self, BoundaryDecision, RuleOrigin};
use vnext_core::machine::{Phase, PlannedTask, Resolved, TaskGroup};
use vnext_core::merge::deep_merge;
use vnext_core::model::{ErrorBoundary, TaskType, Workflow};
use vnext_core::script::ResponseContext;
use vnext_core::traits::{TaskError, TaskInvocation, TaskResponse};

use crate::engine::definitions::{CompiledEntry, CompiledFlow};
use crate::engine::lost::{LeaseStep, StepTask};
use super::{Failure, Run};
use crate::store::{TaskRunRow, TaskRunStatus};

struct Prepared<'d> {
    entry: &'d CompiledEntry,
    /// The entry's path in the workflow.
    path: String,
    boundary: Option<&'d ErrorBoundary>,
    order: i64,
    variable_key: Option<String>,
    config: Value,
    input: Option<Value>,
}

impl Prepared<'_> {
    /// The name the task's response goes by in `ctx.responses`.
    fn response_key(&self) -> String {
        self.variable_key.clone().unwrap_or_else(|| self.entry.task.key.clone())
    }
}

/// A task's config with its input mapping's patch merged in, and the patch
/// itself (a script task's data).
fn task_config(base: &Value, patch: Option<Value>) -> (Value, Option<Value>) {
    let mut config = base.clone();
    if let Some(patch) = &patch {
        deep_merge(&mut config, patch.clone());
    }
    (config, patch)
}

/// The error a failed response stands for: its own, or a generic one naming the task.
fn task_error(response: &TaskResponse, task_key: &str) -> TaskError {
    response
        .error
        .clone()
        .unwrap_or_else(|| TaskError::new("Task:failed", format!("task `{task_key}` reported failure"), false))
}

/// The state whose error boundary applies to a task: the one it runs in.
fn boundary_state<'a>(phase: Phase, from: &'a str, to: &'a str) -> &'a str {
    if phase == Phase::Entry { to } else { from }
}

/// The task-, state- and workflow-level boundaries, in the order `boundary::resolve` reads them.
pub(crate) fn boundary_levels<'w>(wf: &'w Workflow, task: Option<&'w ErrorBoundary>, state: &str) -> [Option<&'w ErrorBoundary>; 3] {
    [task, wf.state(state).and_then(|s| s.error_boundary.as_ref()), wf.error_boundary.as_ref()]
}

/// What the run does with one task's response.
#[derive(Debug, Clone, PartialEq)]
enum TaskOutcome {
    /// It succeeded: its output mapping merges into the data.
    Merge,
    /// It failed and a boundary lets the group go on; its response is kept.
    Continue { log: bool, origin: RuleOrigin },
    /// It failed and the hop stops (the first such task of a group decides).
    Stop(Stop),
}

/// How a hop stops on a failed task.
#[derive(Debug, Clone, PartialEq)]
enum Stop {
    /// Another attempt at `due`.
    Retry { due: DateTime<Utc> },
    /// Transition `key` runs instead (Rollback, Notify).
    Divert { key: String },
    /// The instance faults: the incident's reason and the boundary action it records.
    Fault { reason: String, action: Option<&'static str> },
}

/// Decides a task's outcome from its response and the boundaries that apply;
/// `sample` is the jitter sample of a retry's delay.
fn task_outcome(
    response: &TaskResponse,
    task_key: &str,
    levels: [Option<&ErrorBoundary>; 3],
    attempt: u32,
    now: DateTime<Utc>,
    sample: f64,
) -> TaskOutcome {
    if response.is_success {
        return TaskOutcome::Merge;
    }
    let error = task_error(response, task_key);
    TaskOutcome::Stop(match boundary::resolve(levels, &error, attempt) {
        BoundaryDecision::Continue { log, origin } => return TaskOutcome::Continue { log, origin },
        BoundaryDecision::Retry { policy, retry_number, .. } => match policy.delay_for(retry_number, sample) {
            Some(delay) => Stop::Retry { due: now + delay },
            None => Stop::Fault { reason: "retries exhausted".into(), action: Some("retry") },
        },
        BoundaryDecision::RunTransition { key, .. } => Stop::Divert { key },
        BoundaryDecision::Fault { reason, origin } => Stop::Fault { reason, action: origin.map(|_| "abort") },
    })
}

impl Run {
    pub(crate) async fn group(&mut self, def: &CompiledFlow, r: &Resolved<'_>, g: &TaskGroup<'_>) -> Result<(), Failure> {
        let mut prepared = Vec::with_capacity(g.tasks.len());
        for t in &g.tasks {
            prepared.push(self.prepare(def, r, t).await?);
        }
        if prepared.iter().any(|p| p.entry.task.task_type != TaskType::Script) {
            let step = self.lease_step(r, g, &prepared);
            self.ensure_lease(step).await?;
        }
        let executor = self.eng.executor.clone();
        let calls = prepared.iter().map(|p| {
            let executor = executor.clone();
            let invocation = self.invocation(r, g, p);
            let script_data = p.input.clone().unwrap_or_else(|| json!({}));
            let clock = self.eng.clock.clone();
            let span = tracing::debug_span!("task", task = invocation.task_key.as_str(), kind = invocation.task_type.name());
            async move {
                let started_at = clock.now();
                let t0 = Instant::now();
                let response = if invocation.task_type == TaskType::Script {
                    // A script task's work is its mappings: nothing leaves the process.
                    TaskResponse { status_code: None, is_success: true, data: script_data, ..TaskResponse::default() }
                } else {
                    executor.execute(invocation).await
                };
                (response, started_at, clock.now(), t0.elapsed().as_secs_f64() * 1000.0)
            }
            .instrument(span)
        });
        let results = join_all(calls).await;

        let mut failure = None;
        for (p, (response, started_at, finished_at, ms)) in prepared.iter().zip(results) {
            self.record_task_run(g.phase, p, &response, started_at, finished_at, ms);
            let task = &p.entry.task;
            let levels = boundary_levels(&def.workflow, p.boundary, boundary_state(g.phase, &r.from, &r.to));
            let sample = (Uuid::new_v4().as_u128() >> 64) as f64 / u64::MAX as f64;
            match task_outcome(&response, &task.key, levels, self.attempt, self.eng.clock.now(), sample) {
                TaskOutcome::Merge => {
                    let rv = ResponseContext::from(&response);
                    if let Some(m) = &p.entry.mapping
                        && m.has_function("output")
                    {
                        let ctx = self.ctx(r, Some(rv.clone()));
                        if let Some(patch) = self.eng.scripts.call_map(self.domain.as_str(), m, "output", ctx).await? {
                            deep_merge(&mut self.w.data, patch);
                        }
                    }
                    self.responses.insert(p.response_key(), rv);
                }
                TaskOutcome::Continue { log, origin } => {
                    if log {
                        let code = task_error(&response, &task.key).code;
                        tracing::warn!(task = %task.key, code = %code, rule = %origin, "task failed; error boundary continues");
                    }
                    self.responses.insert(p.response_key(), ResponseContext::from(&response));
                }
                TaskOutcome::Stop(stop) if failure.is_none() => {
                    failure = Some(match stop {
                        Stop::Retry { due } => Failure::Retry { due },
                        Stop::Divert { key } => Failure::Divert { key },
                        Stop::Fault { reason, action } => {
                            let error = task_error(&response, &task.key);
                            Failure::Fault(Box::new(self.task_incident(task, &error, &response, reason, action)))
                        }
                    });
                }
                TaskOutcome::Stop(_) => {}
            }
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// One task of a group, its input mapping applied to its config.
    async fn prepare<'d>(&self, def: &'d CompiledFlow, r: &Resolved<'_>, t: &PlannedTask<'d>) -> Result<Prepared<'d>, Failure> {
        let entry = def.entry(&t.path)?;
        let patch = match &entry.mapping {
            Some(m) if m.has_function("input") => {
                let ctx = self.ctx(r, None);
                self.eng.scripts.call_map(self.domain.as_str(), m, "input", ctx).await?
            }
            _ => None,
        };
        let (config, input) = task_config(&entry.task.config, patch);
        Ok(Prepared {
            entry,
            path: t.path.clone(),
            boundary: t.entry.error_boundary.as_ref(),
            order: t.entry.order,
            variable_key: t.entry.variable_key.clone(),
            config,
            input,
        })
    }

    /// The step a group with external I/O is, as its lease records it.
    fn lease_step(&self, r: &Resolved<'_>, g: &TaskGroup<'_>, prepared: &[Prepared<'_>]) -> LeaseStep {
        LeaseStep {
            hop: r.transition.key.clone(),
            first_hop: self.w.hops == 0,
            state: boundary_state(g.phase, &r.from, &r.to).to_string(),
            phase: g.phase.as_str().to_string(),
            order: g.order,
            tasks: prepared
                .iter()
                .filter(|p| p.entry.task.task_type != TaskType::Script)
                .map(|p| StepTask { path: p.path.clone(), key: p.entry.task.key.clone() })
                .collect(),
            attempt: self.attempt,
            at: self.eng.clock.now(),
        }
    }

    /// What the executor receives for a prepared task.
    fn invocation(&self, r: &Resolved<'_>, g: &TaskGroup<'_>, p: &Prepared<'_>) -> TaskInvocation {
        TaskInvocation {
            domain: self.domain.to_string(),
            flow: self.flow.to_string(),
            instance_id: self.row.id,
            instance_key: self.row.key.clone(),
            task_key: p.entry.task.key.clone(),
            task_version: p.entry.task.version.clone(),
            task_type: p.entry.task.task_type,
            config: p.config.clone(),
            idempotency_key: Some(vnext_core::traits::idempotency_key(
                self.row.id,
                &[&r.from, &self.w.data_version_no.to_string(), &self.hop_key, g.phase.as_str(), &p.order.to_string(), &p.entry.task.key],
            )),
        }
    }

    fn record_task_run(
        &mut self,
        phase: Phase,
        p: &Prepared<'_>,
        response: &TaskResponse,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        ms: f64,
    ) {
        let task = &p.entry.task;
        let redaction = &self.eng.settings.redaction;
        let row = TaskRunRow {
            id: Uuid::now_v7(),
            transition_id: Some(self.hop_id),
            task_key: task.key.clone(),
            task_version: task.version.clone(),
            task_type: task.task_type.code().to_string(),
            phase,
            task_order: p.order as i32,
            attempt: self.attempt as i32,
            status: if response.is_success { TaskRunStatus::Succeeded } else { TaskRunStatus::Failed },
            request: Some(redaction.task_request(&p.config)),
            response: Some(json!({"statusCode": response.status_code, "data": response.data, "headers": redaction.headers(&response.headers)})),
            error: response.error.as_ref().map(|e| json!({"code": e.code, "message": e.message, "retryable": e.retryable})),
            started_at,
            finished_at,
            duration_ms: ms,
        };
        self.records.task_runs.push(row);
    }

    fn task_incident(
        &self,
        task: &crate::engine::definitions::TaskDef,
        error: &TaskError,
        response: &TaskResponse,
        reason: String,
        action: Option<&str>,
    ) -> crate::store::IncidentRow {
        self.incident(
            &error.code,
            format!("task `{}` ({}) failed: {reason}", task.key, task.task_type.name()),
            Some(&task.key),
            response.status_code.map(i32::from),
            action,
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;

    fn boundary(v: Value) -> ErrorBoundary {
        serde_json::from_value(v).expect("an error boundary")
    }

    fn failed(code: &str) -> TaskResponse {
        TaskResponse { status_code: Some(503), is_success: false, error: Some(TaskError::new(code, "try later", true)), ..TaskResponse::default() }
    }

    fn retry() -> ErrorBoundary {
        boundary(json!({"onError": [{"action": 1, "errorCodes": ["Task:5xx"],
            "retryPolicy": {"initialDelay": "PT2S", "maxRetries": 2, "backoffType": 0, "useJitter": false}}]}))
    }

    #[test]
    fn a_successful_task_merges_and_its_input_patch_is_merged_into_its_config() {
        let now = Utc::now();
        let ok = TaskResponse { is_success: true, ..TaskResponse::default() };
        assert_eq!(task_outcome(&ok, "remote", [Some(&retry()), None, None], 1, now, 0.5), TaskOutcome::Merge);
        let (config, input) = task_config(&json!({"url": "u", "body": {"a": 1}}), Some(json!({"body": {"b": 2}})));
        assert_eq!(config, json!({"url": "u", "body": {"a": 1, "b": 2}}));
        assert_eq!(input, Some(json!({"body": {"b": 2}})));
        assert_eq!(task_config(&json!({"url": "u"}), None), (json!({"url": "u"}), None));
    }

    #[test]
    fn a_failed_task_retries_until_its_retries_run_out_then_faults() {
        let now = Utc::now();
        let policy = retry();
        assert_eq!(
            task_outcome(&failed("Task:503"), "remote", [Some(&policy), None, None], 1, now, 0.5),
            TaskOutcome::Stop(Stop::Retry { due: now + TimeDelta::seconds(2) })
        );
        match task_outcome(&failed("Task:503"), "remote", [Some(&policy), None, None], 3, now, 0.5) {
            TaskOutcome::Stop(Stop::Fault { reason, action }) => {
                assert!(reason.contains("exhausted after 3 attempts"), "{reason}");
                assert_eq!(action, Some("abort"));
            }
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[test]
    fn a_boundary_diverts_continues_or_faults() {
        let now = Utc::now();
        let rollback = boundary(json!({"onError": [{"action": 2, "errorCodes": ["*"], "transition": "give-up"}]}));
        assert_eq!(
            task_outcome(&failed("Task:500"), "remote", [Some(&rollback), None, None], 1, now, 0.5),
            TaskOutcome::Stop(Stop::Divert { key: "give-up".into() })
        );
        let ignore = boundary(json!({"onError": [{"action": 3}]}));
        // The state level applies when the task declares nothing.
        assert!(matches!(task_outcome(&failed("Task:500"), "remote", [None, Some(&ignore), None], 1, now, 0.5), TaskOutcome::Continue { .. }));
        let abort = boundary(json!({"onError": [{"action": 0, "errorCodes": ["*"]}]}));
        match task_outcome(&failed("Task:500"), "remote", [None, None, Some(&abort)], 1, now, 0.5) {
            TaskOutcome::Stop(Stop::Fault { action, .. }) => assert_eq!(action, Some("abort")),
            other => panic!("expected a fault, got {other:?}"),
        }
        match task_outcome(&failed("Task:500"), "remote", [None, None, None], 1, now, 0.5) {
            TaskOutcome::Stop(Stop::Fault { action, .. }) => assert_eq!(action, None),
            other => panic!("expected a fault, got {other:?}"),
        }
        // A response that fails without an error is named after its task.
        let bare = TaskResponse { is_success: false, ..TaskResponse::default() };
        assert_eq!(task_error(&bare, "remote").code, "Task:failed");
        assert!(task_error(&bare, "remote").message.contains("`remote`"));
    }

    #[test]
    fn entry_tasks_answer_to_the_entered_state_the_others_to_the_left_one() {
        assert_eq!(boundary_state(Phase::Entry, "idle", "review"), "review");
        assert_eq!(boundary_state(Phase::Exit, "idle", "review"), "idle");
        assert_eq!(boundary_state(Phase::Execution, "idle", "review"), "idle");
    }
}
