//! The REST API (base `/api/v1`, vNext-compatible paths and shapes).
//!
//! One module per resource, each with its own `router()`; [`router`] merges them.
//! - [`definitions`]: publish, validate, read back components;
//! - [`instances`]: start, get (ETag / 304), list;
//! - [`transitions`]: run a transition, retry a faulted instance, history;
//! - [`functions`]: the `state` (with long-poll), `data`, `view`, `schema`,
//!   `catalog` and `authorize` functions, custom function routes, `longpoll/ack`;
//! - [`incidents`]: an instance's incidents;
//! - [`discovery`]: the domains, workflows and components there are, and workflow summaries;
//! - [`diagram`]: diagrams of a workflow version and of an instance (SVG or Mermaid);
//! - [`internal`]: the trigger endpoint the execution service calls, served
//!   on a listener of its own ([`internal_router`]);
//! - [`keys`]: the admin API of API keys; [`auth`]: who may call what;
//! - [`audit`]: the audit log of mutating calls; [`limits`]: per-key and per-domain quotas;
//! - [`health`]: `/health`, `/ready`; [`metrics`]: `/metrics`;
//! - [`openapi`]: the OpenAPI document (`/openapi.json`) and the docs UI (`/docs`).
//!
//! Shared pieces: [`body`] (JSON bodies checked at the edge), [`params`] (query
//! and path parameters), [`command`] (start/transition/retry bodies and answers),
//! [`envelope`] (the instance and command answers in the engine's wire format).

pub mod access;
pub mod audit;
pub mod auth;
pub mod body;
pub mod command;
pub mod custom_functions;
pub mod definitions;
pub mod diagram;
pub mod discovery;
pub mod envelope;
pub mod functions;
pub mod health;
pub mod identity;
pub mod incidents;
pub mod instances;
pub mod internal;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod transitions;

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use vnext_core::script::ScriptHost;

use crate::engine::Engine;
use crate::error::{ApiError, ErrorCode};
use auth::AuthGate;
use identity::Identities;

/// Settings the handlers need, taken from the configuration once.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Larger bodies are answered 413.
    pub body_limit_bytes: usize,
    /// Page size of lists when `pageSize` is absent.
    pub default_page_size: u32,
    /// Bearer token of the internal endpoints (shared with the execution service).
    pub shared_secret: String,
    /// Domains one key or identity may provision (`app.max_domains_per_key`).
    pub max_domains_per_key: u32,
    /// Whether and what the audit log records (`[audit]`).
    pub audit: vnext_init::config::audit::AuditConfig,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub settings: Arc<ApiSettings>,
    /// Compiles scripts while validating components (publish, validate).
    pub scripts: Arc<ScriptHost>,
    /// Whether requests need an API key (see [`auth`]).
    pub auth: Arc<AuthGate>,
    /// Trusted-header and JWT identities (see [`identity`]).
    pub identities: Arc<Identities>,
    /// Per-key and per-domain quotas (see [`limits`]).
    pub limits: Arc<limits::Limits>,
}

impl AppState {
    /// State for `engine`, with settings from its configuration.
    pub fn new(engine: Engine) -> AppState {
        vnext_telemetry::metrics::install();
        let config = engine.databases().config();
        let identities = Arc::new(Identities::from_config_or_refusing(&config.identity));
        let settings = ApiSettings {
            body_limit_bytes: config.app.body_limit_bytes,
            default_page_size: config.app.default_page_size,
            shared_secret: config.execution.shared_secret.clone(),
            max_domains_per_key: config.app.max_domains_per_key,
            audit: config.audit.clone(),
        };
        let limits = Arc::new(limits::Limits::new(&config.limits));
        AppState {
            engine,
            settings: Arc::new(settings),
            scripts: Arc::new(ScriptHost::new()),
            // Enforced until the server knows its listener is loopback.
            auth: Arc::new(AuthGate::for_listener(Ipv4Addr::UNSPECIFIED.into(), true)),
            identities,
            limits,
        }
    }
}

/// The routes of the internal listener (`app.internal_listen`): the trigger
/// endpoint and health, never reachable on the public listener.
pub fn internal_router() -> Router<AppState> {
    Router::new()
        .merge(internal::router())
        .merge(Router::from(health::router()))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Every public operation: each module's routes, added with
/// `utoipa_axum::routes!`, so that the axum route and the document's
/// operation come from the same handler annotation. Add public routes only
/// this way (a plain `.route` would be served but not documented; the
/// `api_openapi` test looks for one).
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(definitions::router())
        .merge(discovery::router())
        .merge(diagram::router())
        .merge(instances::router())
        .merge(transitions::router())
        .merge(functions::router())
        .merge(custom_functions::router())
        .merge(incidents::router())
        .merge(keys::router())
        .merge(audit::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
}

/// The OpenAPI document of [`router`] (served at `/openapi.json`).
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = public_routes().split_for_parts();
    openapi::finish(&mut document);
    document
}

/// Every public route of the API, without the cross-cutting layers (see `crate::server`).
pub fn router() -> Router<AppState> {
    let (routes, _) = public_routes().split_for_parts();
    routes
        .merge(openapi::docs_ui())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn route_not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no endpoint has this path; see docs/api.md")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this endpoint does not accept this method")
}

/// The data ETag header (`entityEtag` of the body).
pub const ENTITY_ETAG: HeaderName = HeaderName::from_static("x-entity-etag");

/// The `ETag` header value of an instance ETag (quoted, strong).
pub fn etag_header(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// True when `If-None-Match` names `etag` (or `*`): the client's copy is current.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag.trim_matches('"') == etag
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "abc"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(not_modified(&h, "abc"));
        assert!(!not_modified(&h, "ab"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, "zzz"));
    }
}
