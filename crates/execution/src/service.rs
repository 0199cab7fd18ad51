//! The execution service as one unit: the invoke API on `execution.listen` and
//! the job scheduler firing transitions into the app over HTTP.
//!
//! [`ExecutionService::bind`] binds the listener first, so callers (and tests
//! with port 0) learn the address before anything runs; [`BoundService::run`]
//! serves until the shutdown token fires, then drains: the API finishes the
//! requests in flight and the scheduler the jobs in flight, both within the
//! scheduler's `drain_deadline`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use vnext_core::traits::TransitionTrigger;
use vnext_init::db::Databases;

use crate::api::{self, ApiState, ReadinessCheck};
use crate::executor::LocalExecutor;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::tasks::HttpClients;
use crate::tasks::egress::{EgressGuard, OwnEndpoints};
use crate::trigger::HttpTrigger;

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("the invoke API failed: {0}")]
    Serve(std::io::Error),
}

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceOptions {
    /// Run the job scheduler next to the invoke API (off: API only, e.g. when
    /// other replicas fire the jobs).
    pub scheduler: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self { scheduler: true }
    }
}

/// Builds the execution service.
pub struct ExecutionService;

/// A bound, not yet running service.
pub struct BoundService {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    scheduler: Option<Scheduler>,
    drain: std::time::Duration,
    relay: Option<crate::outbox::OutboxRelay>,
}

impl ExecutionService {
    /// Binds `execution.listen` and wires the invoke API (a [`LocalExecutor`]
    /// that reaches the app at `app.url`) and, when enabled, the scheduler over
    /// every registered domain with an [`HttpTrigger`] to the app's internal
    /// listener (`app.internal_url`).
    ///
    /// # Errors
    /// [`ServiceError::Config`] for unusable URLs, [`ServiceError::Bind`].
    pub async fn bind(databases: Databases, options: ServiceOptions) -> Result<BoundService, ServiceError> {
        let config = databases.config().clone();
        let clients = HttpClients::new();
        let scheduler_config = SchedulerConfig::from_config(&config);
        let trigger: Arc<dyn TransitionTrigger> = Arc::new(
            HttpTrigger::new(&clients, &config.app.internal_url, &config.execution.shared_secret, scheduler_config.trigger_timeout)
                .map_err(ServiceError::Config)?,
        );
        let scheduler = options
            .scheduler
            .then(|| Scheduler::new(Arc::new(databases.clone()), trigger, scheduler_config.clone()));
        let relay = if options.scheduler {
            let source: Arc<dyn crate::scheduler::DomainSource> = Arc::new(databases.clone());
            let relay = crate::outbox::OutboxRelay::connect(source, config.events.clone()).await;
            Some(relay.map_err(|e| ServiceError::Config(e.to_string()))?)
        } else {
            None
        };
        let mut bound = Self::bind_with(databases, scheduler, scheduler_config.drain_deadline).await?;
        bound.relay = relay;
        Ok(bound)
    }

    /// Like [`ExecutionService::bind`] with a scheduler built by the caller
    /// (another trigger, another domain source), or none.
    ///
    /// # Errors
    /// As [`ExecutionService::bind`].
    pub async fn bind_with(
        databases: Databases,
        scheduler: Option<Scheduler>,
        drain: std::time::Duration,
    ) -> Result<BoundService, ServiceError> {
        let config = databases.config().clone();
        vnext_telemetry::metrics::install();
        let address = config.execution.listen.clone();
        let listener = TcpListener::bind(&address).await.map_err(|source| ServiceError::Bind { address, source })?;
        let addr = listener.local_addr().map_err(ServiceError::Serve)?;
        let mut own = OwnEndpoints::from_config(&config);
        own.add(addr);
        let guard = EgressGuard::from_config(&config, false, own).map_err(ServiceError::Config)?;
        let executor = LocalExecutor::new(HttpClients::new(), &config.app.url).map_err(ServiceError::Config)?.with_egress(guard);
        let control = databases.control().clone();
        let readiness: ReadinessCheck = Arc::new(move || {
            let control = control.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(&control)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("the control database does not answer: {e}"))
            })
        });
        let state = ApiState::new(Arc::new(executor), &config.execution.shared_secret).with_readiness(readiness);
        let router = api::router(state).layer(TraceLayer::new_for_http());
        Ok(BoundService { listener, addr, router, scheduler, drain, relay: None })
    }
}

impl BoundService {
    /// The address the invoke API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` fires, then drains within the deadline.
    ///
    /// # Errors
    /// [`ServiceError::Serve`] when the server fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let scheduler = self.scheduler.map(|s| tokio::spawn(s.run(shutdown.clone())));
        let relay = self.relay.map(|r| tokio::spawn(r.run(shutdown.clone())));
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { server.await });
        let served = tokio::select! {
            r = &mut server => Some(r),
            () = shutdown.cancelled() => None,
        };
        let served = match served {
            Some(r) => r,
            None => match tokio::time::timeout(self.drain, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("invoke requests still running at the drain deadline were cut off");
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        // A failed server stops the scheduler too.
        shutdown.cancel();
        if let Some(s) = scheduler {
            let _ = s.await;
        }
        if let Some(r) = relay {
            let _ = r.await;
        }
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServiceError::Serve(e)),
            Err(join) => Err(ServiceError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}
