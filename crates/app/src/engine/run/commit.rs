//! The end of a run: everything it decided, gathered as a [`Pending`] write
//! (see `writes`) and written in one go.

use serde::Serialize;
use uuid::Uuid;
use vnext_init::queue::JobKind;

use super::hold::with_db_retry;
use super::{Hold, Run};
use crate::engine::observe;
use crate::engine::writes::{child_stopped, resume_job, Pending};
use crate::engine::{EngineError, InstanceSnapshot, InstanceStatus};
use crate::store::{self, Lease, OutboxEvent, Records, RowChange, WriteMode};

/// How a run's write leaves the instance, decided without I/O.
#[derive(Debug, PartialEq)]
struct Closing {
    status: InstanceStatus,
    has_incident: bool,
    /// The instance's open incidents are resolved by this write.
    resolve_incidents: bool,
    /// Kinds of the instance's pending jobs this write cancels.
    cancel: &'static [JobKind],
}

/// `status` is where the run ended, `parked` whether it rests parked on a
/// subflow, `had_incident` the row's flag before the run, `child_incident`
/// whether a child it started stopped, `left_timers` whether a hop left a
/// state with timers.
fn closing(status: InstanceStatus, parked: bool, had_incident: bool, child_incident: bool, left_timers: bool) -> Closing {
    // A parked instance is busy until its child is done.
    let status = if parked && status == InstanceStatus::Active { InstanceStatus::Busy } else { status };
    // A parked parent keeps the incident of a child that stopped; it is
    // resolved once the parent moves on.
    let keep_incident = parked && (had_incident || child_incident);
    let cancel: &'static [JobKind] = if status == InstanceStatus::Completed {
        &[JobKind::Timer, JobKind::Timeout, JobKind::Retry]
    } else if left_timers {
        &[JobKind::Timer]
    } else {
        &[]
    };
    Closing {
        status,
        has_incident: status == InstanceStatus::Faulted || keep_incident,
        resolve_incidents: had_incident && !keep_incident,
        cancel,
    }
}

/// What a subflow child that ends tells its parent.
#[derive(Debug, PartialEq)]
enum ParentNote {
    /// It completed: a job resumes the parent.
    Resume,
    /// It stopped (faulted, or was canceled, which also closes the
    /// correlation): the parent gets an incident.
    Stopped { close: Option<&'static str> },
}

fn tell_parent(status: InstanceStatus, canceled: bool) -> Option<ParentNote> {
    match status {
        InstanceStatus::Completed if !canceled => Some(ParentNote::Resume),
        InstanceStatus::Completed => Some(ParentNote::Stopped { close: Some("canceled") }),
        InstanceStatus::Faulted => Some(ParentNote::Stopped { close: None }),
        _ => None,
    }
}

impl Run {
    /// Gathers what the run decided into one pending write.
    ///
    /// # Errors
    /// A workflow timeout that cannot be scheduled.
    pub(crate) fn finish(&mut self) -> Result<Pending, EngineError> {
        // The data after the last data-changing hop is the final data: send it once.
        if let Some(last) = self.records.transitions.iter_mut().rev().find(|t| t.data.is_some()) {
            last.data = None;
            last.final_snap = true;
        }
        let parked = self.w.parked;
        let close = closing(self.w.status, parked.is_some(), self.row.has_incident, self.w.child_incident, self.w.cancel_timers);
        let status = close.status;
        self.records.resolve_incidents = close.resolve_incidents;
        let mut arm = std::mem::take(&mut self.w.arm);
        if self.arm_timeout && (status == InstanceStatus::Active || parked.is_some()) {
            arm.extend(self.timeout_job()?);
        }
        // A new row is inserted unless a lease already wrote it (I/O on a start).
        let mode = if matches!(self.hold, Hold::Fresh | Hold::Nested) { WriteMode::Insert } else { WriteMode::Update };
        let now = self.now;

        // A subflow child that ends tells its parent, unless the parent is
        // running right now (a child started and finished inside its parent's
        // run is handled there).
        let mut report = None;
        let mut followups = Vec::new();
        if let Some(link) = self.row.parent()
            && !matches!(self.hold, Hold::Nested)
        {
            match tell_parent(status, self.w.canceled) {
                Some(ParentNote::Resume) => {
                    let job = resume_job(&link, self.now);
                    followups.push(job.id);
                    arm.push(job);
                }
                Some(ParentNote::Stopped { close }) => {
                    let cause = self.records.incidents.last().map(|i| i.message.clone());
                    let incident = child_stopped(self.flow.as_str(), self.row.id, &self.w.state, status, cause.as_deref());
                    report = Some((link.clone(), incident, close));
                }
                None => {}
            }
        }

        let mut records = std::mem::take(&mut self.records);
        records.events = self.events(&records, status);
        Ok(Pending {
            flow: self.flow.clone(),
            mode,
            row: self.row.written(
                RowChange {
                    status,
                    current_state: self.w.state.clone(),
                    data: std::mem::take(&mut self.w.data),
                    data_version: self.w.data_version.clone(),
                    data_version_no: self.w.data_version_no,
                    has_incident: close.has_incident,
                    completed_at: self.w.completed_at,
                    lease: self.retry_lease.clone(),
                    parked_on: parked,
                },
                now,
            ),
            records,
            cancel: close.cancel,
            arm,
            sub: std::mem::take(&mut self.sub),
            close: std::mem::take(&mut self.w.close),
            report,
            followups,
            canceled: self.w.canceled,
        })
    }

    /// Outbox events of this write: one `instance.state-changed` when its hops
    /// changed the state (from where the write found the instance to where it
    /// leaves it, with the states passed on the way), and how the instance
    /// ended, if it did. Two rows at most, however long the chain.
    fn events(&self, records: &Records, status: InstanceStatus) -> Vec<OutboxEvent> {
        let moved = records.transitions.iter().any(|t| t.from_state.as_deref() != Some(t.to_state.as_str()));
        let ended = match status {
            InstanceStatus::Completed if self.w.canceled => Some("instance.canceled"),
            InstanceStatus::Completed => Some("instance.completed"),
            InstanceStatus::Faulted => Some("instance.faulted"),
            _ => None,
        };
        let mut out = Vec::with_capacity(2);
        let status_code = status.code().to_string();
        let base = |event: &'static str| EventPayload {
            event,
            domain: self.domain.as_str(),
            flow: self.flow.as_str(),
            flow_version: &self.row.flow_version,
            instance_id: self.row.id,
            status: &status_code,
            data_version: &self.w.data_version,
            data_version_no: self.w.data_version_no,
            at: self.now,
            from_state: None,
            to_state: None,
            via: Vec::new(),
            transition: records.transitions.last().map(|t| t.transition_key.as_str()),
            transitions: Vec::new(),
            state: None,
            error: None,
        };
        if moved {
            let first = records.transitions.first();
            let mut p = base("instance.state-changed");
            // A start comes from nowhere.
            p.from_state = Some(first.and_then(|t| t.from_state.as_deref()));
            p.to_state = Some(&self.w.state);
            p.via = records.transitions.iter().take(records.transitions.len().saturating_sub(1)).map(|t| t.to_state.as_str()).collect();
            p.via.dedup();
            p.transition = first.map(|t| t.transition_key.as_str());
            p.transitions = records.transitions.iter().map(|t| t.transition_key.as_str()).collect();
            out.push(OutboxEvent::new(self.flow.as_str(), "instance.state-changed", &p));
        }
        if let Some(event_type) = ended {
            let mut p = base(event_type);
            p.state = Some(&self.w.state);
            p.error = records.incidents.last().map(|i| EventError { code: &i.error_code, message: &i.message });
            out.push(OutboxEvent::new(self.flow.as_str(), event_type, &p));
        }
        out
    }

    /// Writes everything the run decided, once. Returns the instance as
    /// committed and the follow-up jobs to run now.
    #[tracing::instrument(name = "commit", level = "debug", skip_all)]
    pub(crate) async fn commit(mut self) -> Result<(InstanceSnapshot, Vec<Uuid>), EngineError> {
        let pending = self.finish()?;
        let hold = std::mem::replace(&mut self.hold, Hold::Closed);
        let mut tx = match hold {
            Hold::Fresh if pending.is_single_statement() => {
                // A start with nothing else to write is one statement, no transaction.
                let mut conn = vnext_init::db::acquire(&self.pool).await?;
                if !pending.write(&mut conn).await? {
                    return self.existing(&mut conn).await.map(|row| (row.snapshot(&self.domain, &self.flow), Vec::new()));
                }
                self.observe(&pending);
                return Ok((pending.snapshot(&self.domain), pending.all_followups()));
            }
            Hold::Fresh => vnext_init::db::begin(&self.pool).await?,
            Hold::Locked(tx) => tx,
            Hold::Leased(lease) => {
                // The outcome of the I/O is only in memory: a short outage
                // (a restart, a cut connection) must not lose it.
                let written = with_db_retry(self.outage_budget(), || self.write_leased(&pending, &lease)).await?;
                return match written {
                    Leased::Written => {
                        self.observe(&pending);
                        Ok((pending.snapshot(&self.domain), pending.all_followups()))
                    }
                    Leased::Taken => Err(EngineError::Busy { instance: self.row.id.to_string() }),
                    Leased::Missing => {
                        let mut conn = vnext_init::db::acquire(&self.pool).await?;
                        self.existing(&mut conn).await.map(|row| (row.snapshot(&self.domain, &self.flow), Vec::new()))
                    }
                };
            }
            Hold::Nested | Hold::Closed => return Err(EngineError::Internal("this run cannot commit on its own".into())),
        };
        if !pending.write(&mut tx).await? {
            tx.rollback().await?;
            let mut conn = vnext_init::db::acquire(&self.pool).await?;
            return self.existing(&mut conn).await.map(|row| (row.snapshot(&self.domain, &self.flow), Vec::new()));
        }
        tx.commit().await?;
        self.observe(&pending);
        Ok((pending.snapshot(&self.domain), pending.all_followups()))
    }

    /// Counts and logs what a committed write did (faults, resolved incidents).
    fn observe(&self, pending: &Pending) {
        let trace = observe::trace_id(&self.req.headers, self.job_id);
        observe::committed(&self.domain, pending, &trace);
    }

    /// One attempt at writing a run that holds a lease: lock the row, check
    /// the lease is still this run's, write, commit. Safe to repeat: an
    /// attempt whose commit went through although its answer was lost is
    /// recognised by the ETag it wrote.
    async fn write_leased(&self, pending: &Pending, lease: &Lease) -> Result<Leased, EngineError> {
        let mut tx = vnext_init::db::begin(&self.pool).await?;
        let row = store::instances::lock_wait(&mut tx, &self.flow, self.row.id).await?;
        let held = row.as_ref().and_then(|r| r.lease_token) == Some(lease.token);
        if !held {
            tx.rollback().await?;
            return Ok(match row {
                Some(r) if r.etag == pending.row.etag => Leased::Written,
                // Lease recovery took the instance over while the I/O ran.
                _ => Leased::Taken,
            });
        }
        if !pending.write(&mut tx).await? {
            tx.rollback().await?;
            return Ok(Leased::Missing);
        }
        tx.commit().await?;
        Ok(Leased::Written)
    }
}

/// How a write under a lease went.
enum Leased {
    Written,
    /// The lease is no longer this run's.
    Taken,
    /// The instance statement wrote nothing.
    Missing,
}

/// The payload of an outbox event (the instance's `key` is added by the write).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventPayload<'a> {
    event: &'static str,
    domain: &'a str,
    flow: &'a str,
    flow_version: &'a str,
    instance_id: Uuid,
    status: &'a str,
    data_version: &'a str,
    data_version_no: i64,
    at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transition: Option<&'a str>,
    /// state-changed: where the write found the instance (null for a start)
    /// and where it leaves it, the states passed on the way, the hops taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    to_state: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    via: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    transitions: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<EventError<'a>>,
    /// Written on state changes only (`null` for a start).
    #[serde(skip_serializing_if = "Option::is_none")]
    from_state: Option<Option<&'a str>>,
}

#[derive(Serialize)]
struct EventError<'a> {
    code: &'a str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_run_cancels_every_timer_and_retry_and_resolves_incidents() {
        let c = closing(InstanceStatus::Completed, false, true, false, true);
        assert_eq!(c.cancel, &[JobKind::Timer, JobKind::Timeout, JobKind::Retry]);
        assert!(c.resolve_incidents && !c.has_incident);
        assert_eq!(closing(InstanceStatus::Active, false, false, false, true).cancel, &[JobKind::Timer]);
        assert!(closing(InstanceStatus::Active, false, false, false, false).cancel.is_empty());
    }

    #[test]
    fn a_parked_run_is_busy_and_keeps_its_child_incident() {
        let c = closing(InstanceStatus::Active, true, false, true, false);
        assert_eq!(c.status, InstanceStatus::Busy);
        assert!(c.has_incident && !c.resolve_incidents);
        let faulted = closing(InstanceStatus::Faulted, false, false, false, false);
        assert!(faulted.has_incident);
        assert_eq!(faulted.status, InstanceStatus::Faulted);
    }

    #[test]
    fn a_child_that_ends_resumes_or_reports_to_its_parent() {
        assert_eq!(tell_parent(InstanceStatus::Completed, false), Some(ParentNote::Resume));
        assert_eq!(tell_parent(InstanceStatus::Completed, true), Some(ParentNote::Stopped { close: Some("canceled") }));
        assert_eq!(tell_parent(InstanceStatus::Faulted, false), Some(ParentNote::Stopped { close: None }));
        assert_eq!(tell_parent(InstanceStatus::Active, false), None);
    }
}
