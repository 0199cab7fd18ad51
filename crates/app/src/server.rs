//! The HTTP server: the API router with its cross-cutting layers, bound to a
//! listener, served until a cancellation token fires.
//!
//! Layers, outermost first: a request id (`x-request-id`, kept when the client
//! sends one, echoed on the response), a `TraceLayer` span per request carrying
//! that id, problem rendering (fills `instance` and `traceId`, logs failures),
//! request metrics by route template (`vnext_telemetry::http`), the audit log (`api::audit`), API keys and the
//! per-key quotas (`api::auth`, `api::limits`), the domain caps (`api::limits`),
//! and the body limit (413 past `app.body_limit_bytes`).
//!
//! [`Server::bind`] binds before it returns, so callers (and tests binding port 0)
//! learn the address first and then drive the returned future.
//!
//! The internal trigger endpoint is served apart ([`Server::serve_internal`],
//! `app.internal_listen`) with the same layers but API keys: it checks the
//! shared secret itself. The public listener does not route it at all.
//!
//! Connections carry the peer's address (`ConnectInfo<SocketAddr>`), which
//! trusted-header identities are checked against.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::audit::audit_middleware;
use crate::api::auth::{AuthGate, auth_middleware};
use crate::api::limits::domain_caps_middleware;
use crate::api::{self, AppState};
use crate::engine::Engine;
use crate::error::{REQUEST_ID_HEADER, problem_middleware};

/// How long in-flight requests may finish after shutdown starts.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// What [`Server::bind`] needs.
pub struct ServerConfig {
    pub engine: Engine,
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    /// Cancelling it stops accepting connections and starts the drain.
    pub shutdown: CancellationToken,
    /// After this long, requests still running are dropped.
    pub drain: Duration,
}

impl ServerConfig {
    /// Listens where the engine's configuration says (`app.listen`).
    pub fn new(engine: Engine, shutdown: CancellationToken) -> ServerConfig {
        let listen = engine.databases().config().app.listen.clone();
        ServerConfig { engine, listen, shutdown, drain: DEFAULT_DRAIN }
    }
}

/// The API service.
pub struct Server;

impl Server {
    /// Binds the listener and returns its address and the future that serves
    /// until `shutdown` fires (then drains for at most `drain`).
    ///
    /// # Errors
    /// The bind error (address in use, permission, bad address), with the address.
    pub async fn bind(config: ServerConfig) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send + 'static)> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen)))?;
        Self::serve(listener, config)
    }

    /// Like [`Server::bind`] on a listener bound by the caller (who may need the
    /// address before the engine exists); `config.listen` is not used.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn serve(listener: TcpListener, config: ServerConfig) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send + 'static)> {
        let addr = listener.local_addr()?;
        let mut state = AppState::new(config.engine);
        state.auth = Arc::new(AuthGate::for_listener(addr.ip(), state.identities.enabled()));
        Ok((addr, run(listener, app(state), config.shutdown, config.drain)))
    }

    /// Serves the internal endpoints (`/api/v1/internal/*`, `/health`) on
    /// `listener` until `config.shutdown` fires; `config.listen` is not used.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn serve_internal(
        listener: TcpListener,
        config: ServerConfig,
    ) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send + 'static)> {
        let addr = listener.local_addr()?;
        let state = AppState::new(config.engine);
        let router = with_layers(api::internal_router(), state, false);
        Ok((addr, run(listener, router, config.shutdown, config.drain)))
    }

    /// Binds `config.listen` and serves the internal endpoints there (see
    /// [`Server::serve_internal`]).
    ///
    /// # Errors
    /// The bind error, with the address.
    pub async fn bind_internal(
        config: ServerConfig,
    ) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send + 'static)> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen)))?;
        Self::serve_internal(listener, config)
    }
}

/// Serves `app` on `listener` until `token` fires, then drains for at most `drain`.
fn run(listener: TcpListener, app: Router, token: CancellationToken, drain: Duration) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    // Answers go out at once, not held back by Nagle's algorithm waiting
    // for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(token.clone().cancelled_owned());
    async move {
        tokio::select! {
            result = serve.into_future() => result,
            () = async { token.cancelled().await; tokio::time::sleep(drain).await } => {
                tracing::warn!(?drain, "drain deadline passed; dropping requests still running");
                Ok(())
            }
        }
    }
}

/// The API router with every layer, ready to serve.
pub fn app(state: AppState) -> Router {
    with_layers(api::router(), state, true)
}

/// `router` with the cross-cutting layers; API keys only when `keys`.
fn with_layers(router: Router<AppState>, state: AppState, keys: bool) -> Router {
    let limit = state.settings.body_limit_bytes;
    let router = router.layer(DefaultBodyLimit::max(limit));
    let router = if keys {
        // Inside auth: the domain caps; outside it: the audit log, which then
        // also records calls auth refused.
        router
            .layer(from_fn_with_state(state.clone(), domain_caps_middleware))
            .layer(from_fn_with_state(state.clone(), auth_middleware))
            .layer(from_fn_with_state(state.clone(), audit_middleware))
    } else {
        router
    };
    router
        .layer(from_fn(vnext_telemetry::http::track_requests))
        .layer(from_fn(problem_middleware))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %request.method(), path = request.uri().path(), request_id = id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
