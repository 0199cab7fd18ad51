//! One request's run of the pipeline: the first hop, the automatic chain, the
//! timers armed at the rest point, and the single write that commits it all.
//!
//! A run holds the instance in one of three ways ([`Hold`]): a new instance not
//! yet written (a start), a row locked in an open transaction, or a lease
//! committed before external I/O. Everything the run decides is kept in memory
//! ([`Working`], [`Records`]) and written once at the end, so a transition with
//! no I/O commits exactly once, whatever its chain.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::{self, Caller, Resolved, TransitionKind};
use vnext_core::merge::deep_merge;
use vnext_core::model::Timer;
use vnext_core::schedule::Schedule;
use vnext_core::script::ResponseContext;
use vnext_core::version::{bump, INITIAL_DATA_VERSION};

use super::context::{self, HopView, InstanceView, RequestData};
use super::definitions::CompiledFlow;
pub(crate) use vnext_init::queue::First;
use vnext_init::queue::{JobBody, JobKind, NewJob};
use super::error::{gate_error, script_error};
use super::writes::{Pending, SubflowWrites, RESUME_KEY};
use super::{Engine, EngineError, Inner, InstanceRef, InstanceSnapshot, InstanceStatus, PayloadError};
use crate::store::{self, IncidentRow, InstanceRow, InstanceWrite, Lease, Records, TransitionRow, WriteMode};

/// Where the transition history says a hop came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Api,
    Timer,
    Timeout,
    Async,
    Retry,
    Lease,
    /// A subflow child started or resumed by its parent's run.
    Subflow,
}

impl Origin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Timer => "timer",
            Origin::Timeout => "timeout",
            Origin::Async => "async",
            Origin::Retry => "retry",
            Origin::Lease => "lease",
            Origin::Subflow => "subflow",
        }
    }
}

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
pub(crate) struct Working {
    pub state: String,
    pub data: Value,
    pub data_version: String,
    pub data_version_no: i64,
    pub status: InstanceStatus,
    pub completed_at: Option<DateTime<Utc>>,
    /// The instance left a state with timers: cancel its pending timer jobs.
    pub cancel_timers: bool,
    pub arm: Vec<NewJob>,
    pub hops: usize,
    /// The open correlation the instance is parked on (a SubFlow state).
    pub parked: Option<Uuid>,
    /// Correlations of this instance to close, with their outcome.
    pub close: Vec<(Uuid, &'static str)>,
    /// A child stopped without completing: the instance keeps an incident.
    pub child_incident: bool,
    /// The last hop was `cancel`.
    pub canceled: bool,
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
    pub eng: Arc<Inner>,
    pub domain: DomainName,
    pub flow: FlowKey,
    pub def: Arc<CompiledFlow>,
    pub pool: PgPool,
    pub hold: Hold,
    /// The row as loaded (for a start, as it will be created).
    pub row: InstanceRow,
    /// The row is created by this run.
    pub fresh: bool,
    /// Status to restore when a lease is given back unchanged.
    pub prev_status: InstanceStatus,
    pub req: RequestData,
    pub origin: Origin,
    pub first: First,
    /// The job this run executes (recorded on a lease so recovery can re-run it).
    pub job_id: Option<Uuid>,
    /// Arm the workflow timeout when the run commits (starts).
    pub arm_timeout: bool,
    pub now: DateTime<Utc>,
    pub w: Working,
    initial: Option<Working>,
    checkpoint: Option<Working>,
    pub records: Records,
    /// Results of the tasks run so far, by task key (`ctx.responses`).
    pub responses: BTreeMap<String, ResponseContext>,
    /// The hop being run: its id (task runs point at it) and key.
    pub hop_id: Uuid,
    pub(crate) hop_key: String,
    /// Attempt number of the first hop's tasks (a retry job runs attempt 2, ...).
    pub attempt: u32,
    /// Leave the instance busy under this lease (a retry job owns it).
    pub(crate) retry_lease: Option<Lease>,
    /// How many subflow levels above this run started it within one request
    /// (0: the instance the request named).
    pub depth: u32,
    /// Children this run started (written with it) and their correlations.
    pub(crate) sub: SubflowWrites,
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
    pub(crate) async fn run(mut self) -> Result<InstanceSnapshot, EngineError> {
        match self.settle().await {
            Settled::Commit => {
                let (engine, domain, flow, pool, id) =
                    (Engine { inner: self.eng.clone() }, self.domain.clone(), self.flow.clone(), self.pool.clone(), self.row.id);
                let (snapshot, followups) = self.commit().await?;
                if followups.is_empty() {
                    return Ok(snapshot);
                }
                super::inline_runner::run_followups(&engine, &domain, followups).await;
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
        let body = req.job_body(&first).with_attempt(self.attempt + 1);
        let job = NewJob::new(JobKind::Retry, self.flow.as_str(), self.row.id, &self.hop_key, due)
            .armed_in(&self.w.state)
            .with_body(&body);
        self.retry_lease = Some(Lease {
            token: Uuid::new_v4(),
            until: due + self.eng.settings.lease,
            transition: self.hop_key.clone(),
            job_id: Some(job.id),
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
            request: Some(
                if hop_is_first { self.req.job_body(&first) } else { JobBody::hop(&first) }.with_origin(self.origin.as_str()).to_value(),
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

    async fn chain(&mut self) -> Result<(), Failure> {
        let def = self.def.clone();
        let wf = &def.workflow;
        let first = match &self.first {
            First::Start => Some(machine::resolve_start(wf, &self.w.state)),
            First::Timeout => match &def.timeout {
                Some(t) => Some(machine::resolve_timeout(wf, t, &self.w.state)),
                None => return Err(EngineError::Definition { message: "the workflow defines no timeout".into() }.into()),
            },
            First::Named { key, caller } => Some(machine::resolve(wf, &self.w.state, key, *caller)),
            First::Resume { .. } => None,
        }
        .transpose()
        .map_err(gate_error)?;
        if let First::Resume { correlation } = self.first {
            self.resume_from_store(&def, correlation).await?;
        }
        let max = self.eng.settings.max_auto_chain_depth;
        let mut next = first;
        let mut rearm = true;
        let mut body = Some(self.req.body.clone());
        let mut origin = self.origin.as_str();
        let mut depth = 0u32;
        loop {
            if let Some(hop) = next.take() {
                rearm = match self.hop(&def, &hop, body.take(), origin).await {
                    Ok(rearm) => rearm,
                    Err(Failure::Divert { key }) => {
                        // The boundary's transition runs from where the failed hop started.
                        self.undo_hop();
                        depth += 1;
                        if depth > max {
                            return Err(EngineError::ChainTooDeep { depth: max, state: self.w.state.clone() }.into());
                        }
                        next = Some(machine::resolve(wf, &self.w.state, &key, Caller::System).map_err(gate_error)?);
                        origin = "boundary";
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if self.w.status == InstanceStatus::Completed {
                    return Ok(());
                }
                // `updateData` on a parked parent writes data and nothing else.
                if self.w.parked.is_some() {
                    return Ok(());
                }
                if rearm
                    && let Some((sf, path)) = machine::subflow(wf, &self.w.state)
                    && !self.enter_subflow(&def, sf, &path).await?
                {
                    // Parked until the child completes; its timers wait too.
                    return Ok(());
                }
            }
            match self.pick_auto(&def).await? {
                Some(n) => {
                    depth += 1;
                    if depth > max {
                        return Err(EngineError::ChainTooDeep { depth: max, state: self.w.state.clone() }.into());
                    }
                    next = Some(n);
                    origin = "auto";
                }
                None => {
                    if rearm {
                        self.arm_timers(&def)?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// `ctx` for a script of the hop `r`.
    pub(crate) fn ctx(&self, r: &Resolved<'_>, response: Option<ResponseContext>) -> Value {
        let hop = HopView {
            key: &r.transition.key,
            from: (r.kind != TransitionKind::Start).then_some(r.from.as_str()),
            to: &r.to,
            trigger: r.transition.trigger_type,
        };
        self.ctx_at(&hop, response)
    }

    /// `ctx` for a script that runs outside a declared transition (subflow mappings).
    pub(crate) fn ctx_at(&self, hop: &HopView<'_>, response: Option<ResponseContext>) -> Value {
        context::build(
            &self.req,
            &InstanceView {
                id: self.row.id,
                key: self.row.key.as_deref(),
                flow: self.flow.as_str(),
                domain: self.domain.as_str(),
                state: &self.w.state,
                status: self.w.status.code(),
                data: &self.w.data,
            },
            hop,
            response,
            &self.responses,
            self.now,
        )
    }

    /// One hop: validate, map and merge, run tasks around the state change,
    /// complete on a final state, bump the data version, record the hop.
    /// Returns whether the hop re-arms timers (false for `updateData`).
    async fn hop(&mut self, def: &CompiledFlow, r: &Resolved<'_>, body: Option<Value>, origin: &str) -> Result<bool, Failure> {
        let started_at = self.eng.clock.now();
        let t0 = Instant::now();
        self.checkpoint = Some(self.w.clone());
        self.hop_id = Uuid::now_v7();
        self.hop_key = r.transition.key.clone();
        let before = self.w.data.clone();
        let key = &r.transition.key;

        if let Some(b) = &body
            && let Some(schema) = def.schema(&r.path)
        {
            let payload = if b.is_null() { json!({}) } else { b.clone() };
            let errors = schema.errors(&payload);
            if !errors.is_empty() {
                return Err(EngineError::InvalidPayload { transition: key.clone(), errors }.into());
            }
        }
        let mapping_site = format!("{}/mapping", r.path);
        if let Some(script) = def.script(&mapping_site) {
            let ctx = self.ctx(r, None);
            let patch = self.eng.scripts.call_map(script, "handler", &ctx).map_err(|e| script_error(&script.location, e))?;
            if let Some(patch) = patch {
                deep_merge(&mut self.w.data, patch);
            }
        } else if let Some(b) = body.clone() {
            match b {
                Value::Object(m) if !m.is_empty() => deep_merge(&mut self.w.data, Value::Object(m)),
                Value::Object(_) | Value::Null => {}
                _ => {
                    return Err(EngineError::InvalidPayload {
                        transition: key.clone(),
                        errors: vec![PayloadError { pointer: String::new(), message: "attributes must be a JSON object".into() }],
                    }
                    .into());
                }
            }
        }

        let wf = &def.workflow;
        if r.kind != TransitionKind::UpdateData
            && let Some(corr) = self.w.parked.take()
        {
            // Leaving a SubFlow state before its child completed (cancel, exit,
            // the workflow timeout): the child runs on, unlinked.
            self.w.close.push((corr, "abandoned"));
        }
        self.w.canceled = r.kind == TransitionKind::Cancel;
        let plan = machine::plan(wf, r);
        for g in &plan.execution {
            self.group(def, r, g).await?;
        }
        for g in &plan.exits {
            self.group(def, r, g).await?;
        }
        if plan.change_state {
            if plan.rearm_timers && r.kind != TransitionKind::Start && !machine::scheduled(wf, &r.from).is_empty() {
                self.w.cancel_timers = true;
            }
            self.w.state = r.to.clone();
        }
        for g in &plan.entries {
            self.group(def, r, g).await?;
        }
        if r.kind.ends_instance() || machine::is_final(wf, &self.w.state) {
            self.w.status = InstanceStatus::Completed;
            self.w.completed_at = Some(self.eng.clock.now());
        }
        if let Some(master) = &def.master_schema {
            let errors = master.errors(&self.w.data);
            if !errors.is_empty() {
                return Err(EngineError::InvalidPayload { transition: key.clone(), errors }.into());
            }
        }
        let changed = self.w.data != before;
        if changed {
            self.w.data_version = if self.w.data_version_no == 0 {
                INITIAL_DATA_VERSION.to_string()
            } else {
                bump(&self.w.data_version, machine::version_strategy(r))
            };
            self.w.data_version_no += 1;
        }
        let first_hop = self.w.hops == 0;
        self.w.hops += 1;
        let finished_at = self.eng.clock.now();
        self.records.transitions.push(TransitionRow {
            id: self.hop_id,
            n: self.w.hops as i64,
            transition_key: key.clone(),
            from_state: (r.kind != TransitionKind::Start).then(|| r.from.clone()),
            to_state: self.w.state.clone(),
            trigger_type: i64::from(r.transition.trigger_type) as i16,
            origin: origin.to_string(),
            body: if first_hop { body } else { None },
            headers: (first_hop && !self.req.headers.is_empty()).then(|| Value::Object(self.req.headers.clone())),
            actor: Some(self.req.actor().unwrap_or_else(|| if self.origin == Origin::Api { "client".into() } else { "system".into() })),
            data_version: changed.then(|| self.w.data_version.clone()),
            data_version_no: changed.then_some(self.w.data_version_no),
            data: changed.then(|| self.w.data.clone()),
            final_snap: false,
            started_at,
            finished_at,
            duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
        });
        Ok(plan.rearm_timers)
    }

    /// The automatic transition taken from the current state, if any.
    async fn pick_auto<'d>(&self, def: &'d CompiledFlow) -> Result<Option<Resolved<'d>>, Failure> {
        let wf = &def.workflow;
        for c in machine::auto_candidates(wf, &self.w.state) {
            let take = if c.is_default {
                true
            } else {
                let site = format!("{}/rule", c.path);
                let script = def.script(&site).ok_or_else(|| EngineError::Definition {
                    message: format!("automatic transition `{}` ({}) has no rule", c.transition.key, c.path),
                })?;
                let probe = Resolved {
                    kind: TransitionKind::State,
                    transition: c.transition,
                    path: c.path.clone(),
                    from: self.w.state.clone(),
                    to: if c.transition.targets_self() { self.w.state.clone() } else { c.transition.target.clone() },
                    self_target: c.transition.targets_self(),
                };
                let ctx = self.ctx(&probe, None);
                self.eng.scripts.call_bool(script, "handler", &ctx).map_err(|e| script_error(&script.location, e))?
            };
            if take {
                return machine::resolve(wf, &self.w.state, &c.transition.key, Caller::System).map(Some).map_err(|e| gate_error(e).into());
            }
        }
        Ok(None)
    }

    /// Arms the scheduled transitions of the state the run rests in.
    fn arm_timers(&mut self, def: &CompiledFlow) -> Result<(), Failure> {
        let wf = &def.workflow;
        for s in machine::scheduled(wf, &self.w.state) {
            let schedule = match &s.transition.timer {
                Some(Timer::Declarative(d)) => Schedule::from_declarative(d),
                Some(Timer::Script(_)) => {
                    let site = format!("{}/timer", s.path);
                    let script = def
                        .script(&site)
                        .ok_or_else(|| EngineError::Internal(format!("timer script {site} was not compiled")))?;
                    let r = machine::resolve(wf, &self.w.state, &s.transition.key, Caller::System).map_err(gate_error)?;
                    let ctx = self.ctx(&r, None);
                    Ok(self.eng.scripts.call_timer(script, "handler", &ctx).map_err(|e| script_error(&script.location, e))?)
                }
                None => {
                    return Err(EngineError::Definition {
                        message: format!("scheduled transition `{}` ({}) has no timer", s.transition.key, s.path),
                    }
                    .into());
                }
            };
            let due = schedule
                .and_then(|sch| sch.next_fire(self.now))
                .map_err(|m| EngineError::Definition { message: format!("timer of `{}` ({}): {m}", s.transition.key, s.path) })?;
            self.w.arm.push(NewJob::new(JobKind::Timer, self.flow.as_str(), self.row.id, &s.transition.key, due).armed_in(&self.w.state));
        }
        Ok(())
    }

    /// The workflow timeout job of a new instance.
    pub(crate) fn timeout_job(&self) -> Result<Option<NewJob>, EngineError> {
        let Some(t) = &self.def.workflow.timeout else { return Ok(None) };
        let due = Schedule::from_duration(&t.timer.duration)
            .and_then(|s| s.next_fire(self.row.created_at))
            .map_err(|m| EngineError::Definition { message: format!("workflow timeout: {m}") })?;
        Ok(Some(NewJob::new(JobKind::Timeout, self.flow.as_str(), self.row.id, machine::TIMEOUT_TRANSITION, due)))
    }

    /// Marks the instance busy before the first external call and commits, so
    /// no transaction stays open across I/O.
    pub(crate) async fn ensure_lease(&mut self) -> Result<(), Failure> {
        let lease = Lease {
            token: Uuid::new_v4(),
            until: self.eng.clock.now() + self.eng.settings.lease,
            transition: self.first_key(),
            job_id: self.job_id,
        };
        match std::mem::replace(&mut self.hold, Hold::Closed) {
            Hold::Leased(l) => self.hold = Hold::Leased(l),
            Hold::Nested => {
                self.hold = Hold::Nested;
                return Err(Failure::NeedsIo);
            }
            Hold::Closed => return Err(EngineError::Internal("run already closed".into()).into()),
            Hold::Locked(mut tx) => {
                store::instances::write_lease(&mut tx, &self.flow, self.row.id, &lease, self.now).await?;
                tx.commit().await?;
                self.hold = Hold::Leased(lease);
            }
            Hold::Fresh => {
                let row = &self.row;
                let w = InstanceWrite {
                    id: row.id,
                    key: row.key.as_deref(),
                    flow_version: &row.flow_version,
                    status: InstanceStatus::Busy,
                    current_state: &row.current_state,
                    data: &row.data,
                    data_version: &row.data_version,
                    data_version_no: row.data_version_no,
                    etag: &row.etag,
                    tags: &row.tags,
                    has_incident: false,
                    completed_at: None,
                    now: self.now,
                    lease: Some(&lease),
                    parked_on: None,
                    parent: None,
                };
                let mut conn = self.pool.acquire().await?;
                if !store::apply(&mut conn, &self.flow, WriteMode::Insert, &w, &Records::default()).await? {
                    return Err(match self.existing(&mut conn).await {
                        Ok(row) => Failure::Existing(row),
                        Err(e) => Failure::Abort(e),
                    });
                }
                self.hold = Hold::Leased(lease);
            }
        }
        Ok(())
    }

    /// The instance that holds this start's key (its insert found the key taken).
    pub(crate) async fn existing(&self, conn: &mut sqlx::PgConnection) -> Result<Box<InstanceRow>, EngineError> {
        let key = self.row.key.clone().unwrap_or_default();
        match store::instances::find(conn, &self.flow, &super::InstanceRef::Key(key)).await? {
            Some(row) => Ok(Box::new(row)),
            None => Err(EngineError::Internal("instance key conflict without an instance".into())),
        }
    }

    /// Leaves the instance as it was: roll back, or give the lease back.
    async fn abandon(&mut self) -> Result<(), EngineError> {
        match std::mem::replace(&mut self.hold, Hold::Closed) {
            Hold::Fresh | Hold::Nested | Hold::Closed => Ok(()),
            Hold::Locked(tx) => {
                tx.rollback().await?;
                Ok(())
            }
            Hold::Leased(lease) => {
                let mut tx = self.pool.begin().await?;
                let row = store::instances::lock_wait(&mut tx, &self.flow, self.row.id).await?;
                if row.and_then(|r| r.lease_token) == Some(lease.token) {
                    if self.fresh {
                        store::instances::delete(&mut tx, &self.flow, self.row.id).await?;
                    } else {
                        store::instances::release_lease(&mut tx, &self.flow, self.row.id, self.prev_status).await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }
}
