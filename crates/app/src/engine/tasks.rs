//! Running one group of task entries (same `order`): input mappings, the task
//! itself (a script task in place, anything with I/O through the executor, all
//! of the group at once), then output mappings merged in definition order.

use std::time::Instant;

use futures::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;
use vnext_core::machine::{Resolved, TaskGroup};
use vnext_core::merge::deep_merge;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskInvocation, TaskResponse};

use super::context::response_value;
use super::definitions::{CompiledEntry, CompiledFlow};
use super::run::{script_error, Failure, Run};
use crate::store::TaskRunRow;

struct Prepared<'d> {
    entry: &'d CompiledEntry,
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
            prepared.push(Prepared { entry, order: t.entry.order, variable_key: t.entry.variable_key.clone(), config, input });
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
        for (p, (response, started_at, finished_at, ms)) in prepared.iter().zip(results) {
            let task = &p.entry.task;
            self.records.task_runs.push(TaskRunRow {
                id: Uuid::now_v7(),
                transition_id: Some(self.hop_id),
                task_key: task.key.clone(),
                task_version: task.version.clone(),
                task_type: task.task_type.code().to_string(),
                phase: g.phase.as_str().to_string(),
                task_order: p.order as i32,
                attempt: 1,
                status: if response.is_success { "succeeded" } else { "failed" }.to_string(),
                request: Some(p.config.clone()),
                response: Some(json!({"statusCode": response.status_code, "data": response.data, "headers": response.headers})),
                error: response.error.as_ref().map(|e| json!({"code": e.code, "message": e.message, "retryable": e.retryable})),
                started_at,
                finished_at,
                duration_ms: ms,
            });
            if !response.is_success {
                if failure.is_none() {
                    let (code, message) = match &response.error {
                        Some(e) => (e.code.clone(), e.message.clone()),
                        None => ("Task:failed".to_string(), format!("task `{}` reported failure", task.key)),
                    };
                    // No error boundary resolution yet: an unhandled task failure faults.
                    failure = Some(self.incident(
                        &code,
                        format!("task `{}` ({}) failed: {message}", task.key, task.task_type.name()),
                        Some(&task.key),
                        response.status_code.map(i32::from),
                        None,
                    ));
                }
                continue;
            }
            let rv = response_value(&response);
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
            Some(incident) => Err(Failure::Fault(Box::new(incident))),
            None => Ok(()),
        }
    }
}
