//! The transition trigger the job scheduler calls: timers, the workflow
//! timeout, async requests, retries and lease recovery.
//!
//! The job is marked done in the transaction that commits the transition, so a
//! job fires its effects at most once; a job already done (or not running)
//! answers [`TriggerOutcome::Stale`].

use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::Caller;
use vnext_core::traits::{TriggerError, TriggerOrigin, TriggerOutcome, TriggerRequest};
use vnext_init::queue::{self, JobBody, JobKind};

use super::context::RequestData;
use super::run::{First, JobRun, Origin, Run, Scope};
use super::{Engine, EngineError, InstanceRef, InstanceStatus};
use crate::store::{self, IncidentRow, InstanceWrite, LockError, OutboxEvent, Records, WriteMode};

fn fatal(message: String) -> TriggerError {
    TriggerError { message, retryable: false }
}

fn retryable(e: impl std::fmt::Display) -> TriggerError {
    TriggerError { message: e.to_string(), retryable: true }
}

/// Ends the transaction now: a dropped one releases its row lock only when
/// its connection is next touched, which would make the next caller busy.
async fn rollback(tx: sqlx::Transaction<'static, sqlx::Postgres>, outcome: TriggerOutcome) -> Result<TriggerOutcome, TriggerError> {
    tx.rollback().await.map_err(retryable)?;
    Ok(outcome)
}

impl Engine {
    pub(crate) async fn do_trigger(&self, req: TriggerRequest) -> Result<TriggerOutcome, TriggerError> {
        let domain = DomainName::new(&req.domain).map_err(|e| fatal(format!("job {}: domain: {e}", req.job_id)))?;
        let flow = FlowKey::new(&req.flow).map_err(|e| fatal(format!("job {}: workflow: {e}", req.job_id)))?;
        let pool = self.pool(&domain).await.map_err(|e| match e {
            EngineError::UnknownDomain(_) => fatal(e.to_string()),
            other => retryable(other),
        })?;
        let mut tx = pool.begin().await.map_err(retryable)?;
        let row = match store::instances::lock(&mut tx, &flow, &InstanceRef::Id(req.instance_id)).await {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(TriggerOutcome::Stale),
            Err(LockError::Busy) => return Ok(TriggerOutcome::Busy),
            Err(LockError::Db(e)) if store::is_missing_schema(&e) => return Ok(TriggerOutcome::Stale),
            Err(LockError::Db(e)) => return Err(retryable(e)),
        };
        if !queue::mark_done(&mut tx, req.job_id).await.map_err(retryable)? {
            return rollback(tx, TriggerOutcome::Stale).await;
        }
        let status = row.status();
        let stale = |tx: sqlx::Transaction<'static, sqlx::Postgres>| async move {
            tx.commit().await.map_err(retryable)?;
            Ok(TriggerOutcome::Stale)
        };
        let owned_by_job = |job: Uuid| status == InstanceStatus::Busy && row.lease_job_id == Some(job);

        let body = JobBody::from_value(&req.body);
        let mut attempt = 1;
        let (origin, first, data, job_id) = match req.origin {
            TriggerOrigin::Timer => {
                if status.is_finished() || req.armed_state.as_deref().is_some_and(|s| s != row.current_state) {
                    return stale(tx).await;
                }
                if status == InstanceStatus::Busy {
                    return rollback(tx, TriggerOutcome::Busy).await;
                }
                let first = First::Named { key: req.transition.clone(), caller: Caller::System };
                (Origin::Timer, first, Default::default(), req.job_id)
            }
            TriggerOrigin::Timeout => {
                if status.is_finished() {
                    return stale(tx).await;
                }
                // Like cancel and exit, the workflow timeout is not held up by
                // a parent parked on a subflow.
                if status == InstanceStatus::Busy && !row.parked() {
                    return rollback(tx, TriggerOutcome::Busy).await;
                }
                (Origin::Timeout, First::Timeout, Default::default(), req.job_id)
            }
            TriggerOrigin::Async | TriggerOrigin::Retry => {
                if status.is_finished() {
                    return stale(tx).await;
                }
                let (data, first) = (RequestData::from_job(&body), body.first_or(&req.transition));
                if let First::Resume { correlation } = first {
                    // A parent resumes only while it still waits for this child.
                    if row.parked_on != Some(correlation) {
                        return stale(tx).await;
                    }
                    if !row.parked() && !owned_by_job(req.job_id) {
                        return rollback(tx, TriggerOutcome::Busy).await;
                    }
                } else if status == InstanceStatus::Busy && !owned_by_job(req.job_id) {
                    return rollback(tx, TriggerOutcome::Busy).await;
                }
                attempt = body.attempt();
                let origin = if req.origin == TriggerOrigin::Async { Origin::Async } else { Origin::Retry };
                (origin, first, data, req.job_id)
            }
            TriggerOrigin::Lease => {
                let expired = status == InstanceStatus::Busy && row.lease_until.is_some_and(|u| u <= self.inner.clock.now());
                // A recovery job names the lease it was made for; a newer lease is not its business.
                let same_lease = body.lease_token().is_none_or(|t| Some(t) == row.lease_token);
                if !expired || !same_lease {
                    return stale(tx).await;
                }
                let Some(job) = row.lease_job_id else {
                    return self.fault_lost_lease(tx, &domain, &flow, row).await;
                };
                // Re-run the job that held the lease, as that job.
                let Some(held) = queue::held_job(&mut *tx, job).await.map_err(retryable)? else {
                    return self.fault_lost_lease(tx, &domain, &flow, row).await;
                };
                // This run takes the held job's place: close it, so a later claim of
                // it (a retry still pending, or a dead worker's claim) cannot run it again.
                queue::close_held(&mut tx, job).await.map_err(retryable)?;
                let (data, first) = match held.kind {
                    Some(JobKind::Timeout) => (Default::default(), First::Timeout),
                    Some(JobKind::Timer) => (Default::default(), First::Named { key: held.transition_key, caller: Caller::System }),
                    _ => {
                        attempt = held.body.attempt();
                        (RequestData::from_job(&held.body), held.body.first_or(&held.transition_key))
                    }
                };
                (Origin::Lease, first, data, job)
            }
        };
        let def = match self.inner.definitions.get(&mut tx, &domain, &flow, &row.flow_version).await {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(if e.is_transient() { retryable(e) } else { fatal(e.to_string()) });
            }
        };
        let scope = Scope { eng: self.inner.clone(), domain, flow, def, pool };
        let run = Run::job(scope, tx, row, JobRun { id: job_id, origin, first, req: data, attempt });
        match run.run().await {
            Ok(_) => Ok(TriggerOutcome::Applied),
            Err(EngineError::Busy { .. }) => Ok(TriggerOutcome::Busy),
            Err(e) if e.is_transient() => Err(retryable(e)),
            Err(e) => Err(fatal(e.to_string())),
        }
    }

    /// A lease expired with no job to re-run: the outcome of the I/O is unknown,
    /// so the instance faults with an incident saying so.
    async fn fault_lost_lease(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        domain: &DomainName,
        flow: &FlowKey,
        row: store::InstanceRow,
    ) -> Result<TriggerOutcome, TriggerError> {
        let transition = row.lease_transition.clone().unwrap_or_default();
        let incident = IncidentRow {
            id: Uuid::now_v7(),
            state: Some(row.current_state.clone()),
            transition_key: Some(transition.clone()),
            task_key: None,
            error_code: "Lease:expired".into(),
            message: format!(
                "the lease of transition `{transition}` expired while it ran external I/O; its outcome is unknown (retry re-runs it)"
            ),
            status_code: None,
            boundary_action: None,
            retry_count: 0,
            request: Some(JobBody::hop(&First::Named { key: transition, caller: Caller::System }).to_value()),
        };
        let etag = Uuid::new_v4().simple().to_string();
        let write = InstanceWrite {
            id: row.id,
            key: row.key.as_deref(),
            flow_version: &row.flow_version,
            status: InstanceStatus::Faulted,
            current_state: &row.current_state,
            data: &row.data,
            data_version: &row.data_version,
            data_version_no: row.data_version_no,
            etag: &etag,
            tags: &row.tags,
            has_incident: true,
            completed_at: None,
            now: self.inner.clock.now(),
            lease: None,
            parked_on: row.parked_on,
            parent: None,
        };
        let now = write.now;
        let event = OutboxEvent {
            flow: flow.as_str().to_string(),
            event_type: "instance.faulted",
            payload: serde_json::json!({
                "event": "instance.faulted", "domain": domain.as_str(), "flow": flow.as_str(), "flowVersion": row.flow_version,
                "instanceId": row.id, "state": row.current_state, "status": "F", "dataVersion": row.data_version,
                "dataVersionNo": row.data_version_no, "at": now,
                "error": {"code": incident.error_code, "message": incident.message},
            }),
        };
        let report = row.parent().map(|link| {
            let cause = incident.message.clone();
            (link, super::writes::child_stopped(flow.as_str(), row.id, &row.current_state, InstanceStatus::Faulted, Some(&cause)))
        });
        let records = Records { incidents: vec![incident], events: vec![event], ..Records::default() };
        store::apply(&mut tx, flow, WriteMode::Update, &write, &records).await.map_err(retryable)?;
        if let Some((link, incident)) = report
            && let Ok(parent_flow) = FlowKey::new(&link.flow)
        {
            store::correlations::report_to_parent(&mut tx, &parent_flow, link.instance_id, link.correlation_id, &incident, now)
                .await
                .map_err(retryable)?;
        }
        tx.commit().await.map_err(retryable)?;
        Ok(TriggerOutcome::Applied)
    }
}
