//! The transition pipeline (ARCHITECTURE.md §4).
//!
//! [`Engine`] runs starts, transitions and retries against a domain database:
//! gate, payload validation, mapping, merge, tasks, state change, automatic
//! chaining and timers, in one transaction when no external I/O is involved.

mod databases;
mod definitions;
mod error;
mod types;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use vnext_core::ident::DomainName;
use vnext_core::traits::{TaskExecutor, TransitionTrigger, TriggerError, TriggerOutcome, TriggerRequest};

pub use databases::{Databases, DbError};
pub use definitions::DefinitionCache;
pub use error::{EngineError, PayloadError};
pub use types::{InstanceRef, InstanceSnapshot, InstanceStatus, Outcome, RetryRequest, StartRequest, TransitionRequest};

/// Where time comes from; tests pass a controllable clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What the engine needs from the outside.
pub struct EngineDeps {
    pub databases: Databases,
    pub executor: Arc<dyn TaskExecutor>,
    pub clock: Arc<dyn Clock>,
}

/// The orchestration engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    databases: Databases,
    #[allow(dead_code)]
    executor: Arc<dyn TaskExecutor>,
    #[allow(dead_code)]
    clock: Arc<dyn Clock>,
    definitions: DefinitionCache,
}

impl Engine {
    pub fn new(deps: EngineDeps) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                databases: deps.databases,
                executor: deps.executor,
                clock: deps.clock,
                definitions: DefinitionCache::new(),
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
    ///
    /// # Errors
    /// See [`EngineError`].
    pub async fn start(&self, _req: StartRequest) -> Result<Outcome, EngineError> {
        Err(EngineError::Internal("not yet".into()))
    }

    /// Runs a transition on an instance.
    ///
    /// # Errors
    /// See [`EngineError`].
    pub async fn transition(&self, _req: TransitionRequest) -> Result<Outcome, EngineError> {
        Err(EngineError::Internal("not yet".into()))
    }

    /// Re-runs the transition that faulted an instance (faulted instances only).
    ///
    /// # Errors
    /// [`EngineError::NotFaulted`] for any other status; see [`EngineError`].
    pub async fn retry(&self, _req: RetryRequest) -> Result<Outcome, EngineError> {
        Err(EngineError::Internal("not yet".into()))
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

    /// Invalidates cached definitions whenever a domain publishes
    /// (`LISTEN vnext_definitions`, payload = domain), until `shutdown` fires.
    pub async fn listen_for_publish(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
    }
}

struct EngineTrigger {
    #[allow(dead_code)]
    engine: Engine,
}

impl TransitionTrigger for EngineTrigger {
    fn trigger(&self, _request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>> {
        Box::pin(async { Err(TriggerError { message: "not yet".into(), retryable: true }) })
    }
}
