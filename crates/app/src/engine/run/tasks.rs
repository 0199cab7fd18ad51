//! Running one group of task entries (same `order`): input mappings, the task
//! itself (a script task in place, anything with I/O through the executor, all
//! of the group at once), then output mappings merged in definition order.

use std::time::Instant;

use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;
use vnext_core::boundary::{self, BoundaryDecision};
use vnext_core::machine::{Phase, Resolved, TaskGroup};
use vnext_core::merge::deep_merge;
use vnext_core::model::{ErrorBoundary, TaskType};
use vnext_core::script::ResponseContext;
use vnext_core::traits::{TaskError, TaskInvocation, TaskResponse};

use crate::engine::definitions::{CompiledEntry, CompiledFlow};
use crate::engine::error::script_error;
use super::{Failure, Run};
use crate::store::{TaskRunRow, TaskRunStatus};

struct Prepared<'d> {
    entry: &'d CompiledEntry,
    boundary: Option<&'d ErrorBoundary>,
    order: i64,
    variable_key: Option<String>,
    config: Value,
    input: Option<Value>,
}

impl Run {
    pub(crate) async fn group(&mut self, def: &CompiledFlow, r: &Resolved<'_>, g: &TaskGroup<'_>) -> Result<(), Failure> {
        let mut prepared = Vec::with_capacity(g.tasks.len());
        for t in &g.tasks {
            let entry = def.entry(&t.path)?;
            let mut config = entry.task.config.clone();
            let mut input = None;
            if let Some(m) = &entry.mapping
                && m.has_function("input")
            {
                let ctx = self.ctx(r, None);
                if let Some(patch) = self.eng.scripts.call_map(m, "input", &ctx).map_err(|e| script_error(&m.location, e))? {
                    deep_merge(&mut config, patch.clone());
                    input = Some(patch);
                }
            }
            prepared.push(Prepared {
                entry,
                boundary: t.entry.error_boundary.as_ref(),
                order: t.entry.order,
                variable_key: t.entry.variable_key.clone(),
                config,
                input,
            });
        }

        if prepared.iter().any(|p| p.entry.task.task_type != TaskType::Script) {
            self.ensure_lease().await?;
        }
        let executor = self.eng.executor.clone();
        let calls = prepared.iter().map(|p| {
            let executor = executor.clone();
            let invocation = TaskInvocation {
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
            };
            let script_data = p.input.clone().unwrap_or_else(|| json!({}));
            let clock = self.eng.clock.clone();
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
        });
        let results = join_all(calls).await;

        let mut failure = None;
        let redaction = &self.eng.settings.redaction;
        for (p, (response, started_at, finished_at, ms)) in prepared.iter().zip(results) {
            let task = &p.entry.task;
            self.records.task_runs.push(TaskRunRow {
                id: Uuid::now_v7(),
                transition_id: Some(self.hop_id),
                task_key: task.key.clone(),
                task_version: task.version.clone(),
                task_type: task.task_type.code().to_string(),
                phase: g.phase,
                task_order: p.order as i32,
                attempt: self.attempt as i32,
                status: if response.is_success { TaskRunStatus::Succeeded } else { TaskRunStatus::Failed },
                request: Some(redaction.task_request(&p.config)),
                response: Some(json!({"statusCode": response.status_code, "data": response.data, "headers": redaction.headers(&response.headers)})),
                error: response.error.as_ref().map(|e| json!({"code": e.code, "message": e.message, "retryable": e.retryable})),
                started_at,
                finished_at,
                duration_ms: ms,
            });
            if !response.is_success {
                let error = response.error.clone().unwrap_or_else(|| {
                    TaskError::new("Task:failed", format!("task `{}` reported failure", task.key), false)
                });
                // The state whose boundary applies: the one the task runs in.
                let state = if g.phase == Phase::Entry { &r.to } else { &r.from };
                let levels = [
                    p.boundary,
                    def.workflow.state(state).and_then(|s| s.error_boundary.as_ref()),
                    def.workflow.error_boundary.as_ref(),
                ];
                match boundary::resolve(levels, &error, self.attempt) {
                    BoundaryDecision::Continue { log, origin } => {
                        if log {
                            tracing::warn!(task = %task.key, code = %error.code, rule = %origin, "task failed; error boundary continues");
                        }
                        self.responses.insert(p.variable_key.clone().unwrap_or_else(|| task.key.clone()), ResponseContext::from(&response));
                        continue;
                    }
                    decision if failure.is_none() => {
                        failure = Some(match decision {
                            BoundaryDecision::Retry { policy, retry_number, .. } => {
                                let sample = (Uuid::new_v4().as_u128() >> 64) as f64 / u64::MAX as f64;
                                match policy.delay_for(retry_number, sample) {
                                    Some(delay) => Failure::Retry { due: self.eng.clock.now() + delay },
                                    None => Failure::Fault(Box::new(self.task_incident(task, &error, &response, "retries exhausted".into(), Some("retry")))),
                                }
                            }
                            BoundaryDecision::RunTransition { key, .. } => Failure::Divert { key },
                            BoundaryDecision::Fault { reason, origin } => {
                                let action = origin.map(|_| "abort");
                                Failure::Fault(Box::new(self.task_incident(task, &error, &response, reason, action)))
                            }
                            BoundaryDecision::Continue { .. } => unreachable!("handled above"),
                        });
                    }
                    _ => {}
                }
                continue;
            }
            let rv = ResponseContext::from(&response);
            if let Some(m) = &p.entry.mapping
                && m.has_function("output")
            {
                let ctx = self.ctx(r, Some(rv.clone()));
                if let Some(patch) = self.eng.scripts.call_map(m, "output", &ctx).map_err(|e| script_error(&m.location, e))? {
                    deep_merge(&mut self.w.data, patch);
                }
            }
            self.responses.insert(p.variable_key.clone().unwrap_or_else(|| task.key.clone()), rv);
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
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
