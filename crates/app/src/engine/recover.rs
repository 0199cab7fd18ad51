//! Lease recovery as the trigger runs it: an instance whose lease expired is
//! taken over in the recovery job's transaction. What to do is decided in
//! `lost` ([`lost::verdict`]); here the lease is read and the outcome written:
//! a retry job that owns the instance, a fault with an incident that keeps the
//! request, or a run (the request again, or a boundary's transition) that the
//! trigger carries out as a job.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;
use vnext_core::boundary::LOST_CODE;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::{Caller, Phase};
use vnext_core::model::ErrorBoundary;
use vnext_core::traits::TriggerError;
use vnext_init::queue::{self, First, HeldJob, JobBody, JobKind, NewJob};

use super::context::RequestData;
use super::definitions::CompiledFlow;
use super::lost::{self, LeaseStep, Verdict};
use super::run::{JobRun, Origin};
use super::{Engine, InstanceStatus};
use crate::store::{
    self, IncidentRow, InstanceRow, Lease, OutboxEvent, Records, RowChange, TaskRunRow,
    TaskRunStatus, WriteMode,
};

fn retryable(e: impl std::fmt::Display) -> TriggerError {
    TriggerError {
        message: e.to_string(),
        retryable: true,
    }
}

/// What recovery leaves for the trigger to do.
pub(super) enum Recovery {
    /// The outcome is written in the transaction; commit it.
    Written,
    /// Run this as the recovery job, in the transaction.
    Run(Box<JobRun>),
}

/// The request a job that held a lease runs, as a stored body with its hop.
fn held_request(held: &HeldJob) -> JobBody {
    let first = match held.kind {
        Some(JobKind::Timeout) => return JobBody::hop(&First::Timeout),
        Some(JobKind::Timer) => {
            return JobBody::hop(&First::Named {
                key: held.transition_key.clone(),
                caller: Caller::System,
            });
        }
        _ => held.body.first_or(&held.transition_key),
    };
    let b = &held.body;
    JobBody::request(&first, b.attributes(), b.headers(), b.query()).with_attempt(b.attempt())
}

fn phase(text: &str) -> Phase {
    [Phase::Execution, Phase::Exit, Phase::Entry]
        .into_iter()
        .find(|p| p.as_str() == text)
        .unwrap_or(Phase::Execution)
}

/// The failed task runs a lost step leaves in the history.
fn lost_runs(def: &CompiledFlow, step: &LeaseStep, now: DateTime<Utc>) -> Vec<TaskRunRow> {
    step.tasks
        .iter()
        .map(|t| {
            let task = def.entry(&t.path).ok().map(|e| e.task.clone());
            TaskRunRow {
                id: Uuid::now_v7(),
                transition_id: None,
                task_key: t.key.clone(),
                task_version: task.as_ref().map(|t| t.version.clone()).unwrap_or_default(),
                task_type: task.as_ref().map(|t| t.task_type.code().to_string()).unwrap_or_default(),
                phase: phase(&step.phase),
                task_order: i32::try_from(step.order).unwrap_or(i32::MAX),
                attempt: i32::try_from(step.attempt).unwrap_or(i32::MAX),
                status: TaskRunStatus::Failed,
                request: None,
                response: None,
                error: Some(json!({"code": LOST_CODE, "message": vnext_core::boundary::lost_error(&t.key).message, "retryable": true})),
                started_at: step.at,
                finished_at: now,
                duration_ms: (now - step.at).num_milliseconds().max(0) as f64,
            }
        })
        .collect()
}

impl Engine {
    /// Takes over `row`, whose lease expired, in `tx` (the recovery job
    /// `recovery_job` is already marked done in it). `held` is the job the
    /// lease named, if any; it is closed here so it never runs again.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn recover(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        domain: &DomainName,
        flow: &FlowKey,
        def: &CompiledFlow,
        row: &InstanceRow,
        held: Option<Uuid>,
        recovery_job: Uuid,
    ) -> Result<Recovery, TriggerError> {
        let held_job = match held {
            Some(job) => {
                let found = queue::held_job(&mut **tx, job).await.map_err(retryable)?;
                // This recovery takes the held job's place: close it, so a later claim of
                // it (a retry still pending, or a dead worker's claim) cannot run it again.
                queue::close_held(tx, job).await.map_err(retryable)?;
                found
            }
            None => None,
        };
        let transition = row.lease_transition.clone().unwrap_or_default();
        let request = row
            .lease_request
            .as_ref()
            .map(JobBody::from_value)
            .or_else(|| held_job.as_ref().map(held_request));
        let step = LeaseStep::from_value(row.lease_step.as_ref());
        let wf = &def.workflow;
        let levels: Vec<(&str, [Option<&ErrorBoundary>; 3])> = step
            .iter()
            .flat_map(|s| s.tasks.iter().map(move |t| (s, t)))
            .map(|(s, t)| {
                let own = def.entry(&t.path).ok().and_then(|e| e.boundary.as_ref());
                (
                    t.key.as_str(),
                    super::run::boundary_levels(wf, own, &s.state),
                )
            })
            .collect();
        let now = self.inner.clock.now();
        let sample = (Uuid::new_v4().as_u128() >> 64) as f64 / u64::MAX as f64;
        let verdict = lost::verdict(
            step.as_ref(),
            &levels,
            held.is_some(),
            request.is_some(),
            now,
            sample,
        );
        let what = match &verdict {
            Verdict::Rerun => "rerun",
            Verdict::Divert { .. } => "divert",
            Verdict::Retry { .. } => "retry",
            Verdict::Fault { .. } => "fault",
        };
        vnext_telemetry::metrics::lease_recovery(vnext_telemetry::metrics::Flow { domain: domain.as_str(), workflow: flow.as_str() }, what);
        tracing::warn!(
            domain = %domain,
            workflow = %flow,
            instance = %row.id,
            transition = row.lease_transition.as_deref().unwrap_or("-"),
            error_code = LOST_CODE,
            trace_id = %format_args!("job:{recovery_job}"),
            recovery = what,
            "lease expired; instance taken over"
        );
        let runs = step
            .as_ref()
            .map(|s| lost_runs(def, s, now))
            .unwrap_or_default();
        match (verdict, request) {
            (Verdict::Rerun, Some(body)) => Ok(Recovery::Run(Box::new(JobRun {
                id: held.unwrap_or(recovery_job),
                origin: Origin::Lease,
                first: body.first_or(&transition),
                // A held job's headers and query are stored sealed; open them for the run.
                req: RequestData::from_job(&body.clone().opened(&self.inner.settings.sealer)),
                attempt: body.attempt(),
            }))),
            (Verdict::Divert { key }, _) => Ok(Recovery::Run(Box::new(JobRun {
                id: recovery_job,
                origin: Origin::Boundary,
                first: First::Named {
                    key,
                    caller: Caller::System,
                },
                req: RequestData::default(),
                attempt: 1,
            }))),
            (Verdict::Retry { due, attempt }, Some(body)) => {
                self.retry_lost(
                    tx,
                    flow,
                    row,
                    &transition,
                    body.with_attempt(attempt),
                    due,
                    runs,
                )
                .await?;
                Ok(Recovery::Written)
            }
            (
                Verdict::Fault {
                    reason,
                    task,
                    action,
                },
                request,
            ) => {
                let request = request.unwrap_or_else(|| {
                    JobBody::hop(&First::Named {
                        key: transition.clone(),
                        caller: Caller::System,
                    })
                });
                let lost = Lost {
                    trace: format!("job:{recovery_job}"),
                    transition,
                    task,
                    reason,
                    action,
                    request,
                    runs,
                };
                self.fault_lost(tx, domain, flow, row, lost).await?;
                Ok(Recovery::Written)
            }
            // `verdict` asks to run something again only when there is a request.
            (Verdict::Rerun | Verdict::Retry { .. }, None) => Err(TriggerError {
                message: format!(
                    "instance {}: nothing to run again after its lease expired",
                    row.id
                ),
                retryable: false,
            }),
        }
    }

    /// The lost attempt failed and its retry policy asks for another: a retry
    /// job runs the request at `due`, owning the instance (busy) until then.
    #[allow(clippy::too_many_arguments)]
    async fn retry_lost(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        flow: &FlowKey,
        row: &InstanceRow,
        transition: &str,
        body: JobBody,
        due: DateTime<Utc>,
        runs: Vec<TaskRunRow>,
    ) -> Result<(), TriggerError> {
        let now = self.inner.clock.now();
        let job = NewJob::new(JobKind::Retry, flow.as_str(), row.id, transition, due)
            .armed_in(&row.current_state)
            .with_body(&body);
        let lease = Lease {
            token: Uuid::new_v4(),
            until: due + self.inner.settings.lease,
            transition: transition.to_string(),
            job_id: Some(job.id),
            request: None,
            step: None,
        };
        let write = row.written(
            RowChange {
                status: InstanceStatus::Busy,
                current_state: row.current_state.clone(),
                data: row.data.clone(),
                data_version: row.data_version.clone(),
                data_version_no: row.data_version_no,
                has_incident: row.has_incident,
                completed_at: None,
                lease: Some(lease),
                parked_on: row.parked_on,
            },
            now,
        );
        let records = Records {
            task_runs: runs,
            ..Records::default()
        };
        store::apply(tx, flow, WriteMode::Update, &write, &records)
            .await
            .map_err(retryable)?;
        queue::enqueue(tx, &job).await.map_err(retryable)?;
        Ok(())
    }

    /// A lease expired and the lost run is not run again: the instance faults
    /// with an incident saying so, which keeps the request for `retry`.
    async fn fault_lost(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        domain: &DomainName,
        flow: &FlowKey,
        row: &InstanceRow,
        lost: Lost,
    ) -> Result<(), TriggerError> {
        let Lost {
            trace: lost_trace,
            transition,
            task,
            reason,
            action,
            request,
            runs,
        } = lost;
        let what = task
            .as_deref()
            .map_or_else(|| "it".to_string(), |t| format!("task `{t}`"));
        let incident = IncidentRow {
            id: Uuid::now_v7(),
            state: Some(row.current_state.clone()),
            transition_key: Some(transition.clone()),
            task_key: task.clone(),
            error_code: LOST_CODE.into(),
            message: format!(
                "the lease of transition `{transition}` expired while {what} ran external I/O; its outcome is unknown ({reason}); retry re-runs it"
            ),
            status_code: None,
            boundary_action: action.map(str::to_string),
            retry_count: 0,
            request: Some(request.to_value()),
        };
        let now = self.inner.clock.now();
        let write = row.written(
            RowChange {
                status: InstanceStatus::Faulted,
                current_state: row.current_state.clone(),
                data: row.data.clone(),
                data_version: row.data_version.clone(),
                data_version_no: row.data_version_no,
                has_incident: true,
                completed_at: None,
                lease: None,
                parked_on: row.parked_on,
            },
            now,
        );
        let event = OutboxEvent {
            flow: flow.as_str().to_string(),
            event_type: "instance.faulted",
            payload: json!({
                "event": "instance.faulted", "domain": domain.as_str(), "flow": flow.as_str(), "flowVersion": row.flow_version,
                "instanceId": row.id, "state": row.current_state, "status": "F", "dataVersion": row.data_version,
                "dataVersionNo": row.data_version_no, "at": now,
                "error": {"code": incident.error_code, "message": incident.message},
            }),
        };
        let report = row.parent().map(|link| {
            let cause = incident.message.clone();
            (
                link,
                super::writes::child_stopped(
                    flow.as_str(),
                    row.id,
                    &row.current_state,
                    InstanceStatus::Faulted,
                    Some(&cause),
                ),
            )
        });
        let flow_labels = vnext_telemetry::metrics::Flow { domain: domain.as_str(), workflow: flow.as_str() };
        super::observe::fault(flow_labels, row.id, &incident, &lost_trace);
        let records = Records {
            incidents: vec![incident],
            events: vec![event],
            task_runs: runs,
            ..Records::default()
        };
        store::apply(tx, flow, WriteMode::Update, &write, &records)
            .await
            .map_err(retryable)?;
        if let Some((link, incident)) = report
            && let Ok(parent_flow) = FlowKey::new(&link.flow)
        {
            store::correlations::report_to_parent(
                tx,
                &parent_flow,
                link.instance_id,
                link.correlation_id,
                &incident,
                now,
            )
            .await
            .map_err(retryable)?;
        }
        Ok(())
    }
}

/// What a fault of a lost run records.
struct Lost {
    /// The recovery job, as the trace id of its log lines.
    trace: String,
    transition: String,
    task: Option<String>,
    reason: String,
    action: Option<&'static str>,
    request: JobBody,
    runs: Vec<TaskRunRow>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_held_job_runs_again_as_it_would_have() {
        let timer = HeldJob {
            kind: Some(JobKind::Timer),
            transition_key: "tick".into(),
            body: JobBody::default(),
        };
        assert_eq!(
            held_request(&timer).first_or("x"),
            First::Named {
                key: "tick".into(),
                caller: Caller::System
            }
        );
        let timeout = HeldJob {
            kind: Some(JobKind::Timeout),
            transition_key: "$timeout".into(),
            body: JobBody::default(),
        };
        assert_eq!(held_request(&timeout).first_or("x"), First::Timeout);
        let body = JobBody::from_value(
            &json!({"attempt": 2, "first": {"kind": "start"}, "attributes": {"x": true}}),
        );
        let retry = HeldJob {
            kind: Some(JobKind::Retry),
            transition_key: "go".into(),
            body,
        };
        let request = held_request(&retry);
        assert_eq!(
            (
                request.first_or("x"),
                request.attributes(),
                request.attempt()
            ),
            (First::Start, json!({"x": true}), 2)
        );
        // Without a stored hop, the job's own transition.
        let bare = HeldJob {
            kind: Some(JobKind::Async),
            transition_key: "go".into(),
            body: JobBody::default(),
        };
        assert_eq!(
            held_request(&bare).first_or("x"),
            First::Named {
                key: "go".into(),
                caller: Caller::System
            }
        );
    }

    #[test]
    fn phases_read_back() {
        for p in [Phase::Execution, Phase::Exit, Phase::Entry] {
            assert_eq!(phase(p.as_str()), p);
        }
    }
}
