//! The transition pipeline (ARCHITECTURE.md §4).
//!
//! [`Engine`] runs starts, transitions and retries against a domain database:
//! gate, payload validation, mapping, merge, tasks around the state change,
//! automatic chaining and timers. Layout:
//! - `requests`: entry points, run now (`sync`) or accepted as an async job;
//! - `trigger`: what the job scheduler calls; `inline_runner`: async jobs
//!   in-process until the scheduler runs them; `recover` (with the decisions
//!   in `lost`): lease recovery of a run lost with its process;
//! - `run`: one run, built by one constructor per origin (API start, API
//!   request, job, nested child), its fields private to it and its parts:
//!   `run/chain` (the hops and the automatic chain), `run/tasks` (task
//!   groups), `run/subflow` (SubFlow states: children started in the
//!   parent's transaction, parked parents, resumes), `run/hold` (the lease
//!   around external I/O), `run/commit` (gathering and committing the write);
//! - `writes`: the write set, `Pending` and the jobs and
//!   incidents a run writes for other instances;
//! - `error`: [`EngineError`] and the conversions of core errors into it;
//! - `observe`: metrics and WARN lines at the outcome points (entry points,
//!   trigger, commit, lease recovery);
//! - `definitions`: compiled workflows; `scripts`: the rhai sandbox;
//!   `context`: the `ctx` scripts see;
//! - `settings`: [`EngineSettings`], what the engine takes from the
//!   configuration, given once in [`EngineDeps`] (no call site reads the
//!   configuration); its clock is [`vnext_core::clock::Clock`].
//!
//! Modules import each other in one direction: `requests`, `trigger`,
//! `recover` → `run` → `writes`, `lost`, `context`, `definitions`, `error`. Jobs (arming,
//! claiming, settling, their bodies) go through [`vnext_init::queue`], the one
//! owner of `sys_queues.jobs`.
//!
//! # Transactions
//! A request locks the instance row (`FOR UPDATE NOWAIT`; a held lock is
//! [`EngineError::Busy`]), runs the whole pipeline in memory and writes the
//! instance, its history rows, task runs, incidents and outbox events in one
//! statement before the single commit. A start writes its new row the same
//! way, without a transaction unless it also schedules jobs or starts a
//! subflow. The first task with external I/O turns the lock into a lease: status `B` with a token is committed, the call
//! runs with no transaction open, and the outcome is written after checking the
//! token (a lease taken over by recovery makes the late writer back off).
//!
//! # Decisions
//! - A new instance has data version `1.0.0` number 0; the first hop that changes
//!   data keeps `1.0.0` as number 1, later hops bump by the hop's
//!   `versionStrategy`. One data version per hop, however many tasks merged.
//! - `cancel` and `exit` complete the instance (`C`) wherever their target is.
//!   On a busy instance they are accepted only when it is parked on a subflow
//!   or held by a job that has not started (which they cancel); a run in
//!   flight keeps it busy.
//! - A SubFlow state starts its child inside the parent's run (one commit for
//!   both when neither does I/O) and parks the parent: status `B` with
//!   `parked_on` and no lease, so lease recovery ignores it. A child that
//!   completes resumes its parent (in memory, or through a resume job written
//!   with the child's completion); transitions sent to a parked parent go to
//!   the child, except `cancel`, `exit` and `updateData`; a child's fault
//!   leaves the parent parked with an incident.
//! - A transition's `key` sets an instance's empty key ([`EngineError::KeyTaken`]
//!   when another instance has it).
//! - Every write carries its outbox events (state changes, completion,
//!   cancellation, fault) in the same statement.
//!
//! The reasoning behind the subflow, busy, key, shared-timer and outbox rules
//! is in `docs/engine.md`.
//! - A transition mapping's result replaces the raw body; without a mapping a
//!   non-object body is a 422.
//! - The workflow's master schema is checked after every hop; a failure is a 422
//!   and nothing is written.
//! - A task failure goes to its error boundary (task, then the state it runs in,
//!   then the workflow). Retry undoes the hop and records a `retry` job that owns
//!   the busy instance; Rollback/Notify run the named transition instead of the
//!   hop; Ignore/Log continue without output; anything else faults (`F`) with an
//!   incident that stores what a retry re-runs. Hops before the failed one stay
//!   applied.
//! - Errors of job-driven runs (timers, async requests, retries) have no caller to
//!   answer, so they fault the instance with an incident instead of vanishing.
//! - Timers of a state (its own scheduled transitions and the scheduled shared
//!   ones offered in it) are cancelled when a hop leaves it and armed when the
//!   run rests in a state; `updateData` neither cancels nor re-arms.

mod context;
mod definitions;
mod error;
mod extension;
mod function;
mod inline_runner;
mod lost;
mod observe;
mod recover;
mod requests;
mod run;
mod scripts;
mod settings;
mod trigger;
mod types;
mod view;
mod writes;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::traits::{TaskExecutor, TransitionTrigger, TriggerError, TriggerOutcome, TriggerRequest};

pub use vnext_init::db::{Databases, DbError};
pub use definitions::{CompiledFlow, DefinitionCache};
pub use error::{EngineError, PayloadError};
pub use extension::ReadKind;
pub use function::{FunctionCall, FunctionError};
pub use settings::EngineSettings;
pub use vnext_core::clock::{Clock, ManualClock, SystemClock};
pub use types::{InstanceRef, InstanceSnapshot, InstanceStatus, Outcome, RetryRequest, StartRequest, TransitionRequest};

use scripts::Scripts;

/// What the engine needs from the outside.
pub struct EngineDeps {
    pub databases: Databases,
    pub executor: Arc<dyn TaskExecutor>,
    /// Where "now" comes from (the scheduler firing its jobs reads the same kind).
    pub clock: Arc<dyn Clock>,
    /// Read from the configuration by the caller, once.
    pub settings: EngineSettings,
}

/// The orchestration engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub databases: Databases,
    pub executor: Arc<dyn TaskExecutor>,
    pub clock: Arc<dyn Clock>,
    pub settings: EngineSettings,
    pub definitions: DefinitionCache,
    pub scripts: Arc<Scripts>,
    /// Flow schemas known to exist, per (domain, flow).
    pub ensured: Mutex<HashSet<(String, String)>>,
}

impl Inner {
    /// Creates a workflow's schema the first time this process needs it.
    pub(crate) async fn ensure_schema(&self, pool: &sqlx::PgPool, domain: &DomainName, flow: &FlowKey) -> Result<(), EngineError> {
        let id = (domain.ident().to_string(), flow.ident().to_string());
        if self.ensured.lock().expect("ensured schemas").contains(&id) {
            return Ok(());
        }
        vnext_init::flow_schema::ensure_flow_schema(pool, flow)
            .await
            .map_err(|e| EngineError::from_init(&format!("creating the schema of workflow `{flow}`"), e))?;
        self.ensured.lock().expect("ensured schemas").insert(id);
        Ok(())
    }
}

impl Engine {
    pub fn new(deps: EngineDeps) -> Engine {
        let settings = deps.settings;
        let scripts = Arc::new(Scripts::new(&settings));
        Engine {
            inner: Arc::new(Inner {
                definitions: DefinitionCache::new(scripts.clone(), settings.definitions_recheck),
                scripts,
                databases: deps.databases,
                executor: deps.executor,
                clock: deps.clock,
                settings,
                ensured: Mutex::default(),
            }),
        }
    }

    pub fn databases(&self) -> &Databases {
        &self.inner.databases
    }

    pub fn definitions(&self) -> &DefinitionCache {
        &self.inner.definitions
    }

    /// Starts an instance, or returns the existing one with the same key.
    /// `sync=false` creates it busy and records an async job that runs the start.
    ///
    /// # Errors
    /// [`EngineError::UnknownDomain`], [`EngineError::UnknownFlow`],
    /// [`EngineError::InvalidPayload`], script and definition errors, and
    /// [`EngineError::ChainTooDeep`]; nothing is created on error.
    pub async fn start(&self, req: StartRequest) -> Result<Outcome, EngineError> {
        let measure = observe::Measure::new(&req.domain, &req.flow, "start");
        let result = self.do_start(req).await;
        measure.request(&result);
        result
    }

    /// Runs a transition on an instance (by id or key).
    ///
    /// # Errors
    /// Unknown domain/instance/transition (404 kinds), [`EngineError::NotAvailable`],
    /// [`EngineError::Busy`], [`EngineError::Finished`] (409 kinds),
    /// [`EngineError::InvalidPayload`], script errors and
    /// [`EngineError::ChainTooDeep`] (422 kinds). On error nothing changes.
    pub async fn transition(&self, req: TransitionRequest) -> Result<Outcome, EngineError> {
        let measure = observe::Measure::new(&req.domain, &req.flow, "transition");
        let result = self.do_transition(req).await;
        measure.request(&result);
        result
    }

    /// Re-runs the transition that faulted an instance (faulted instances only);
    /// its incident is resolved when it succeeds.
    ///
    /// # Errors
    /// [`EngineError::NotFaulted`] for any other status; otherwise as
    /// [`Engine::transition`].
    pub async fn retry(&self, req: RetryRequest) -> Result<Outcome, EngineError> {
        let measure = observe::Measure::new(&req.domain, &req.flow, "retry");
        let result = self.do_retry(req).await;
        measure.request(&result);
        result
    }

    /// The trigger the job scheduler calls to fire timers, timeouts, async
    /// transitions, retries and lease recovery.
    pub fn trigger(&self) -> Arc<dyn TransitionTrigger> {
        Arc::new(EngineTrigger { engine: self.clone() })
    }

    /// Drops cached definitions of a domain.
    pub async fn invalidate(&self, domain: &DomainName) {
        self.inner.definitions.invalidate(domain);
    }

    /// Called after an async request commits.
    fn after_accept(&self, domain: &DomainName) {
        inline_runner::nudge(self.clone(), domain.clone());
    }
}

struct EngineTrigger {
    engine: Engine,
}

impl TransitionTrigger for EngineTrigger {
    fn trigger(&self, request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>> {
        Box::pin(self.engine.do_trigger(request))
    }
}
