//! The write set of a run: everything one instance's run writes, gathered as
//! a [`Pending`] write and written in one go by `commit`.
//!
//! A pending write is the instance row with its history, task runs, incidents
//! and outbox events (one statement, [`store::apply`]), plus the jobs it arms
//! or cancels, the correlations of subflows it started or left, and the
//! pending writes of the children it started (written in the same
//! transaction: a parent and a child started by it commit together). The
//! jobs and incidents a run writes for other instances are made here too.

use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::Caller;
use vnext_init::queue::{self, First, JobBody, JobKind, NewJob};

use super::{InstanceSnapshot, InstanceStatus};
use crate::store::{self, correlations, CorrelationRow, IncidentRow, InstanceRow, ParentLink, Records, WriteMode};

/// The key the resume of a parked parent is recorded under in its history.
pub const RESUME_KEY: &str = "$subflow";

/// An async job that runs `transition` on an instance now.
pub(crate) fn async_job(flow: &FlowKey, instance_id: Uuid, transition: &str, body: &JobBody, now: chrono::DateTime<chrono::Utc>) -> NewJob {
    NewJob::new(JobKind::Async, flow.as_str(), instance_id, transition, now).with_body(body)
}

/// The job that resumes a parked parent once its child completed.
pub(crate) fn resume_job(link: &ParentLink, now: chrono::DateTime<chrono::Utc>) -> NewJob {
    NewJob::new(JobKind::Async, link.flow.as_str(), link.instance_id, RESUME_KEY, now)
        .with_body(&JobBody::hop(&First::Resume { correlation: link.correlation_id }))
}

/// The origin of the job that cancels a child because its parent ended.
pub const PARENT_ENDED: &str = "parent-ended";

/// The outcome of a correlation whose parent ended before the child: the
/// child is cancelled by a job (see [`cascade_cancel_job`]).
pub const CASCADE: &str = "canceled";

/// The job that cancels an open child whose parent was cancelled or exited:
/// the child runs its own `cancel` (its timers and jobs go with it, and its
/// own open children follow the same way). A job, so a crash between the
/// parent's commit and the child's cancel still finishes the cascade.
pub(crate) fn cascade_cancel_job(child_flow: &str, child: Uuid, now: chrono::DateTime<chrono::Utc>) -> NewJob {
    let first = First::Named { key: "cancel".to_string(), caller: Caller::System };
    NewJob::new(JobKind::Async, child_flow, child, "cancel", now).with_body(&JobBody::hop(&first).with_origin(PARENT_ENDED))
}

/// The incident a parked parent gets when its child stops without completing.
pub(crate) fn child_stopped(child_flow: &str, child: Uuid, state: &str, status: InstanceStatus, cause: Option<&str>) -> IncidentRow {
    let (code, what) = match status {
        InstanceStatus::Faulted => ("SubFlow:faulted", "faulted"),
        _ => ("SubFlow:canceled", "was canceled"),
    };
    IncidentRow {
        id: Uuid::now_v7(),
        state: None,
        transition_key: None,
        task_key: None,
        error_code: code.to_string(),
        message: format!(
            "subflow `{child_flow}` instance {child} {what} in state `{state}`{}",
            cause.map(|c| format!(": {c}")).unwrap_or_default()
        ),
        status_code: None,
        boundary_action: None,
        retry_count: 0,
        request: Some(json!({"child": {"flow": child_flow, "id": child}})),
    }
}

/// Subflow work of a run that is not undone with a failed hop: the children it
/// started (and their own pending writes) and the correlation rows to insert.
#[derive(Default)]
pub(crate) struct SubflowWrites {
    pub children: Vec<Pending>,
    pub correlations: Vec<CorrelationRow>,
}

/// Everything one instance's run writes.
pub(crate) struct Pending {
    pub flow: FlowKey,
    pub mode: WriteMode,
    /// The instance row as this write leaves it.
    pub row: InstanceRow,
    pub records: Records,
    pub cancel: &'static [JobKind],
    pub arm: Vec<NewJob>,
    pub sub: SubflowWrites,
    /// Correlations of this instance to close, with their outcome.
    pub close: Vec<(Uuid, &'static str)>,
    /// A child that stopped without completing tells its parent (an incident);
    /// a cancelled one also closes the correlation.
    pub report: Option<(ParentLink, IncidentRow, Option<&'static str>)>,
    /// Jobs for other instances to run right after the commit (a parent's resume).
    pub followups: Vec<Uuid>,
    /// The run ended with `cancel`.
    pub canceled: bool,
}

impl Pending {
    /// Only the instance statement: no transaction needed for a new row.
    pub fn is_single_statement(&self) -> bool {
        self.mode == WriteMode::Insert
            && self.arm.is_empty()
            && self.sub.children.is_empty()
            && self.sub.correlations.is_empty()
            && self.close.is_empty()
            && self.report.is_none()
    }

    /// Follow-up jobs of this write and of the children it carries.
    pub fn all_followups(&self) -> Vec<Uuid> {
        let mut out = self.followups.clone();
        for c in &self.sub.children {
            out.extend(c.all_followups());
        }
        out
    }

    pub fn snapshot(&self, domain: &DomainName) -> InstanceSnapshot {
        self.row.snapshot(domain, &self.flow)
    }

    /// Writes it all on `conn` (inside the caller's transaction unless
    /// [`Pending::is_single_statement`]). False when the instance statement
    /// wrote nothing: an insert whose key is taken.
    pub fn write<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            for child in &self.sub.children {
                child.write(conn).await?;
            }
            if !store::apply(conn, &self.flow, self.mode, &self.row, &self.records).await? {
                return Ok(false);
            }
            if !self.sub.correlations.is_empty() {
                correlations::insert(conn, &self.flow, &self.sub.correlations, self.row.modified_at).await?;
            }
            for (id, outcome) in &self.close {
                let closed = correlations::close(conn, &self.flow, *id, outcome, self.row.modified_at).await?;
                if closed
                    && *outcome == CASCADE
                    && let Some(corr) = correlations::find(&mut *conn, &self.flow, *id).await?
                {
                    queue::enqueue(conn, &cascade_cancel_job(&corr.child_flow, corr.child_instance_id, self.row.modified_at)).await?;
                }
            }
            if let Some((link, incident, close)) = &self.report
                && let Ok(parent_flow) = FlowKey::new(&link.flow)
            {
                correlations::report_to_parent(conn, &parent_flow, link.instance_id, link.correlation_id, incident, self.row.modified_at).await?;
                if let Some(outcome) = close {
                    correlations::close(conn, &parent_flow, link.correlation_id, outcome, self.row.modified_at).await?;
                }
            }
            if !self.cancel.is_empty() && self.mode == WriteMode::Update {
                queue::cancel_for_instance(conn, self.flow.as_str(), self.row.id, self.cancel).await?;
            }
            for job in &self.arm {
                queue::enqueue(conn, job).await?;
            }
            Ok(true)
        })
    }
}
