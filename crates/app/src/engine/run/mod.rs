//! One request's run of the pipeline: the first hop, the automatic chain, the
//! timers armed at the rest point, and the single write that commits it all.
//!
//! A run holds the instance in one of three ways ([`Hold`]): a new instance not
//! yet written (a start), a row locked in an open transaction, or a lease
//! committed before external I/O. Everything the run decides is kept in memory
//! ([`Working`], [`Records`]) and written once at the end, so a transition with
//! no I/O commits exactly once, whatever its chain.
//!
//! Parts: `chain` (hops and the automatic chain), `tasks` (task groups),
//! `subflow` (SubFlow states), `hold` (leases around I/O), `commit` (the
//! write). They are child modules so the run's fields stay private to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::{self, Caller};
use vnext_core::model::VersionStrategy;
use vnext_core::script::ResponseContext;
use vnext_core::version::{bump, INITIAL_DATA_VERSION};

use crate::engine::context::RequestData;
use crate::engine::definitions::CompiledFlow;
use vnext_init::queue::{JobBody, JobKind, NewJob};
use crate::engine::writes::{Pending, SubflowWrites, RESUME_KEY};
use crate::engine::{Engine, EngineError, Inner, InstanceRef, InstanceSnapshot, InstanceStatus};
use crate::store::{self, IncidentRow, InstanceRow, Lease, Records};

mod chain;
mod commit;
mod hold;
mod subflow;
mod tasks;

pub(crate) use tasks::boundary_levels;
pub(crate) use vnext_init::queue::First;

pub(crate) use crate::store::Origin;

/// How the run holds the instance.
pub(crate) enum Hold {
    /// A start: the row does not exist yet.
    Fresh,
    /// The row is locked in this open transaction.
    Locked(Transaction<'static, Postgres>),
    /// The row is marked busy under this lease; no transaction is open.
    Leased(Lease),
    /// A subflow child started inside its parent's run: the row does not exist
    /// yet and is written in the parent's transaction, so external I/O is not
    /// allowed ([`Failure::NeedsIo`]).
    Nested,
    /// Written or abandoned.
    Closed,
}

/// What a run changes, checkpointed at each hop so a failed hop can be undone.
#[derive(Debug, Clone)]
struct Working {
    state: String,
    data: Value,
    data_version: String,
    data_version_no: i64,
    status: InstanceStatus,
    completed_at: Option<DateTime<Utc>>,
    /// The instance left a state with timers: cancel its pending timer jobs.
    cancel_timers: bool,
    arm: Vec<NewJob>,
    hops: usize,
    /// The open correlation the instance is parked on (a SubFlow state).
    parked: Option<Uuid>,
    /// Correlations of this instance to close, with their outcome.
    close: Vec<(Uuid, &'static str)>,
    /// A child stopped without completing: the instance keeps an incident.
    child_incident: bool,
    /// The last hop was `cancel`.
    canceled: bool,
}

impl Working {
    /// A hop changed the data: one new data version for the hop. The first
    /// change keeps `1.0.0` as number 1; later ones bump by the hop's strategy.
    fn next_data_version(&mut self, strategy: VersionStrategy) {
        self.data_version = if self.data_version_no == 0 { INITIAL_DATA_VERSION.to_string() } else { bump(&self.data_version, strategy) };
        self.data_version_no += 1;
    }
}

/// Why a run stopped early.
pub(crate) enum Failure {
    /// Nothing is applied; the caller gets the error.
    Abort(EngineError),
    /// A task failed: the instance faults with this incident.
    Fault(Box<IncidentRow>),
    /// A start found its key taken when it first wrote: answer that instance.
    Existing(Box<InstanceRow>),
    /// A task failed and its error boundary asks for another attempt at `due`:
    /// the hop is undone and a durable retry job re-runs it.
    Retry { due: DateTime<Utc> },
    /// A task failed and its error boundary runs transition `key` instead
    /// (Rollback, Notify): the hop is undone and `key` runs from where it started.
    Divert { key: String },
    /// A nested run (a subflow child started inside its parent's run) reached
    /// a task with external I/O: the parent starts the child through a job.
    NeedsIo,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Abort(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Abort(e.into())
    }
}

/// One request's run.
pub(crate) struct Run {
    eng: Arc<Inner>,
    domain: DomainName,
    flow: FlowKey,
    def: Arc<CompiledFlow>,
    pool: PgPool,
    hold: Hold,
    /// The row as loaded (for a start, as it will be created).
    row: InstanceRow,
    /// The row is created by this run.
    fresh: bool,
    /// Status to restore when a lease is given back unchanged.
    prev_status: InstanceStatus,
    req: RequestData,
    origin: Origin,
    first: First,
    /// The job this run executes (recorded on a lease so recovery can re-run it).
    job_id: Option<Uuid>,
    /// Arm the workflow timeout when the run commits (starts).
    arm_timeout: bool,
    now: DateTime<Utc>,
    w: Working,
    initial: Option<Working>,
    checkpoint: Option<Working>,
    records: Records,
    /// Results of the tasks run so far, by task key (`ctx.responses`).
    responses: BTreeMap<String, ResponseContext>,
    /// The hop being run: its id (task runs point at it) and key.
    hop_id: Uuid,
    hop_key: String,
    /// Attempt number of the first hop's tasks (a retry job runs attempt 2, ...).
    attempt: u32,
    /// Leave the instance busy under this lease (a retry job owns it).
    retry_lease: Option<Lease>,
    /// How many subflow levels above this run started it within one request
    /// (0: the instance the request named).
    depth: u32,
    /// Children this run started (written with it) and their correlations.
    sub: SubflowWrites,
}

/// What a run works on: the engine, the instance's workflow and its database.
pub(crate) struct Scope {
    pub eng: Arc<Inner>,
    pub domain: DomainName,
    pub flow: FlowKey,
    pub def: Arc<CompiledFlow>,
    pub pool: PgPool,
}

/// How a run is set up; built only by the constructors of [`Run`], one per origin.
struct RunSpec {
    scope: Scope,
    hold: Hold,
    row: InstanceRow,
    fresh: bool,
    req: RequestData,
    origin: Origin,
    first: First,
    job_id: Option<Uuid>,
}

/// What a job's run needs besides the instance.
pub(crate) struct JobRun {
    pub id: Uuid,
    pub origin: Origin,
    pub first: First,
    pub req: RequestData,
    /// The attempt the first hop's tasks run (a retry job runs attempt 2, ...).
    pub attempt: u32,
}

/// How a run ended, before anything is written.
enum Settled {
    Commit,
    Existing(Box<InstanceRow>),
    NeedsIo,
    Error(EngineError),
}

impl Run {
    /// An API start: the instance does not exist yet and this run writes it.
    pub(crate) fn start(scope: Scope, row: InstanceRow, req: RequestData) -> Run {
        Run::new(RunSpec { scope, hold: Hold::Fresh, row, fresh: true, req, origin: Origin::Api, first: First::Start, job_id: None })
    }

    /// An API transition or retry on an instance locked in `tx`.
    pub(crate) fn request(scope: Scope, tx: Transaction<'static, Postgres>, row: InstanceRow, req: RequestData, origin: Origin, first: First) -> Run {
        Run::new(RunSpec { scope, hold: Hold::Locked(tx), row, fresh: false, req, origin, first, job_id: None })
    }

    /// Job `job_id`'s run (its attempt `attempt`) on an instance locked in `tx`.
    pub(crate) fn job(scope: Scope, tx: Transaction<'static, Postgres>, row: InstanceRow, job: JobRun) -> Run {
        let spec = RunSpec { scope, hold: Hold::Locked(tx), row, fresh: false, req: job.req, origin: job.origin, first: job.first, job_id: Some(job.id) };
        let mut run = Run::new(spec);
        run.attempt = job.attempt;
        run
    }

    /// A subflow child started inside `self`'s run: its row is new and is
    /// written in the parent's transaction.
    pub(crate) fn nested(&self, flow: FlowKey, def: Arc<CompiledFlow>, row: InstanceRow, req: RequestData) -> Run {
        let scope = Scope { eng: self.eng.clone(), domain: self.domain.clone(), flow, def, pool: self.pool.clone() };
        let mut child =
            Run::new(RunSpec { scope, hold: Hold::Nested, row, fresh: true, req, origin: Origin::Subflow, first: First::Start, job_id: None });
        child.depth = self.depth + 1;
        child
    }

    fn new(spec: RunSpec) -> Run {
        let RunSpec { scope, hold, row, fresh, req, origin, first, job_id } = spec;
        let Scope { eng, domain, flow, def, pool } = scope;
        let now = eng.clock.now();
        let status = row.status();
        let w = Working {
            state: row.current_state.clone(),
            data: row.data.clone(),
            data_version: row.data_version.clone(),
            data_version_no: row.data_version_no,
            status: if status == InstanceStatus::Faulted || status == InstanceStatus::Busy { InstanceStatus::Active } else { status },
            completed_at: None,
            cancel_timers: false,
            arm: Vec::new(),
            hops: 0,
            parked: row.parked_on,
            close: Vec::new(),
            child_incident: false,
            canceled: false,
        };
        Run {
            // A new instance, or a job or retry that runs its start again.
            arm_timeout: fresh || first == First::Start,
            prev_status: if status == InstanceStatus::Busy && row.parked_on.is_none() { InstanceStatus::Active } else { status },
            eng,
            domain,
            flow,
            def,
            pool,
            hold,
            row,
            fresh,
            req,
            origin,
            first,
            job_id,
            now,
            initial: Some(w.clone()),
            w,
            checkpoint: None,
            records: Records::default(),
            responses: BTreeMap::new(),
            hop_id: Uuid::nil(),
            hop_key: String::new(),
            attempt: 1,
            retry_lease: None,
            depth: 0,
            sub: SubflowWrites::default(),
        }
    }

    /// Runs the chain and turns its failure, if any, into what gets written:
    /// a task failure faults the instance (or schedules a retry), a job's
    /// error faults it with an incident, anything else writes nothing.
    async fn settle(&mut self) -> Settled {
        match self.chain().await {
            Ok(()) => Settled::Commit,
            Err(Failure::Existing(row)) => Settled::Existing(row),
            Err(Failure::Fault(incident)) => {
                self.undo_hop();
                self.fault(*incident);
                Settled::Commit
            }
            Err(Failure::Retry { due }) => {
                self.undo_hop();
                self.schedule_retry(due);
                Settled::Commit
            }
            Err(Failure::Divert { key }) => Settled::Error(EngineError::Internal(format!("boundary transition `{key}` escaped the chain"))),
            Err(Failure::NeedsIo) => Settled::NeedsIo,
            // Jobs have no caller to answer: their failures fault the instance
            // so they show up as incidents and can be retried.
            Err(Failure::Abort(e)) if self.job_id.is_some() && !matches!(e, EngineError::Busy { .. }) && !e.is_transient() => {
                if let Some(initial) = self.initial.take() {
                    self.w = initial;
                }
                self.sub = SubflowWrites::default();
                self.checkpoint = None;
                self.hop_key.clear();
                let incident = self.incident("Pipeline:error", e.to_string(), None, None, None);
                self.fault(incident);
                Settled::Commit
            }
            Err(Failure::Abort(e)) => Settled::Error(e),
        }
    }

    /// Runs and commits. A task failure commits a faulted instance; any other
    /// failure of an API request leaves the instance as it was. Jobs this
    /// commit creates for other instances (a parent resuming) run right after.
    #[tracing::instrument(name = "run", skip_all, fields(domain = %self.domain, workflow = %self.flow, instance = %self.row.id, origin = self.origin.as_str()))]
    pub(crate) async fn run(mut self) -> Result<InstanceSnapshot, EngineError> {
        match self.settle().await {
            Settled::Commit => {
                let (engine, domain, flow, pool, id) =
                    (Engine { inner: self.eng.clone() }, self.domain.clone(), self.flow.clone(), self.pool.clone(), self.row.id);
                let (snapshot, followups) = self.commit().await?;
                if followups.is_empty() {
                    return Ok(snapshot);
                }
                crate::engine::inline_runner::run_followups(&engine, &domain, followups).await;
                // A child started by this run may have completed and resumed it.
                Ok(store::load_snapshot(&pool, &domain, &flow, &InstanceRef::Id(id)).await?.unwrap_or(snapshot))
            }
            Settled::Existing(row) => {
                self.abandon().await?;
                Ok(row.snapshot(&self.domain, &self.flow))
            }
            Settled::NeedsIo => {
                self.abandon().await?;
                Err(EngineError::Internal("a run that may do external I/O was nested in another".into()))
            }
            Settled::Error(e) => {
                self.abandon().await?;
                Err(e)
            }
        }
    }

    /// Runs a subflow child inside its parent's run: what it would commit is
    /// handed to the parent, which writes it in its own transaction.
    /// `Ok(None)`: the child needs external I/O and must start through a job.
    pub(crate) async fn run_nested(mut self) -> Result<Option<Pending>, EngineError> {
        match self.settle().await {
            Settled::Commit => self.finish().map(Some),
            Settled::NeedsIo => Ok(None),
            Settled::Existing(_) => Err(EngineError::Internal("a subflow child found its key taken".into())),
            Settled::Error(e) => Err(e),
        }
    }
    /// Undoes the hop that failed: back to its checkpoint; its task runs stay
    /// recorded but point at no transition.
    fn undo_hop(&mut self) {
        if let Some(cp) = self.checkpoint.take() {
            self.w = cp;
        }
        let failed = self.hop_id;
        for r in &mut self.records.task_runs {
            if r.transition_id == Some(failed) {
                r.transition_id = None;
            }
        }
    }

    /// The hop that failed becomes a retry job at `due`, owning the instance
    /// (busy, leased to the job) until it runs.
    fn schedule_retry(&mut self, due: DateTime<Utc>) {
        let first_hop = self.w.hops == 0;
        let first = if first_hop { self.first.clone() } else { First::Named { key: self.hop_key.clone(), caller: Caller::System } };
        let req = if first_hop { self.req.clone() } else { RequestData::default() };
        let body = req.job_body(&first, &self.eng.settings.sealer).with_attempt(self.attempt + 1);
        let job = NewJob::new(JobKind::Retry, self.flow.as_str(), self.row.id, &self.hop_key, due)
            .armed_in(&self.w.state)
            .with_body(&body);
        self.retry_lease = Some(Lease {
            token: Uuid::new_v4(),
            until: due + self.eng.settings.lease,
            transition: self.hop_key.clone(),
            job_id: Some(job.id),
            request: None,
            step: None,
        });
        self.w.status = InstanceStatus::Busy;
        self.w.arm.clear();
        self.w.arm.push(job);
    }

    fn fault(&mut self, incident: IncidentRow) {
        let kept = self.w.hops;
        self.records.transitions.truncate(kept);
        let applied: Vec<Uuid> = self.records.transitions.iter().map(|t| t.id).collect();
        for r in &mut self.records.task_runs {
            if r.transition_id.is_some_and(|id| !applied.contains(&id)) {
                r.transition_id = None;
            }
        }
        self.w.status = InstanceStatus::Faulted;
        self.w.arm.clear();
        self.arm_timeout = false;
        self.records.incidents.push(incident);
    }

    /// An incident for the hop being run, with what a retry needs.
    pub(crate) fn incident(&self, code: &str, message: String, task: Option<&str>, status_code: Option<i32>, boundary: Option<&str>) -> IncidentRow {
        let hop_is_first = self.w.hops == 0;
        let first = if hop_is_first {
            self.first.clone()
        } else {
            First::Named { key: self.hop_key.clone(), caller: Caller::System }
        };
        IncidentRow {
            id: Uuid::now_v7(),
            // Where the instance rests once the failed hop is undone.
            state: Some(self.checkpoint.as_ref().map_or(&self.w.state, |c| &c.state).clone()),
            transition_key: Some(if self.hop_key.is_empty() { self.first_key() } else { self.hop_key.clone() }),
            task_key: task.map(str::to_string),
            error_code: code.to_string(),
            message,
            status_code,
            boundary_action: boundary.map(str::to_string),
            retry_count: 0,
            // What a retry re-runs; credentials in the client's headers and
            // query are masked like everywhere else they are stored.
            request: Some(
                if hop_is_first {
                    let r = &self.eng.settings.redaction;
                    JobBody::request(&first, self.req.body.clone(), r.headers(&self.req.headers), r.query(&self.req.query))
                } else {
                    JobBody::hop(&first)
                }
                .with_origin(self.origin.as_str())
                .to_value(),
            ),
        }
    }

    pub(crate) fn first_key(&self) -> String {
        match &self.first {
            First::Start => self.def.workflow.start_transition.key.clone(),
            First::Timeout => machine::TIMEOUT_TRANSITION.to_string(),
            First::Named { key, .. } => key.clone(),
            First::Resume { .. } => RESUME_KEY.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    pub(super) fn working(version: &str, no: i64) -> Working {
        Working {
            state: "review".into(),
            data: json!({}),
            data_version: version.into(),
            data_version_no: no,
            status: InstanceStatus::Active,
            completed_at: None,
            cancel_timers: false,
            arm: Vec::new(),
            hops: 0,
            parked: None,
            close: Vec::new(),
            child_incident: false,
            canceled: false,
        }
    }

    #[test]
    fn the_first_data_change_keeps_the_initial_version_and_later_ones_bump() {
        let mut w = working(INITIAL_DATA_VERSION, 0);
        w.next_data_version(VersionStrategy::Major);
        assert_eq!((w.data_version.as_str(), w.data_version_no), (INITIAL_DATA_VERSION, 1));
        w.next_data_version(VersionStrategy::Minor);
        assert_eq!((w.data_version.as_str(), w.data_version_no), ("1.1.0", 2));
        w.next_data_version(VersionStrategy::Major);
        assert_eq!((w.data_version.as_str(), w.data_version_no), ("2.0.0", 3));
    }
}
