//! Authentication and authorisation of the public API by API keys.
//!
//! A request presents its key as `Authorization: Bearer <key>` or `X-Api-Key:
//! <key>`. [`auth_middleware`] runs after routing, looks the key up (one indexed
//! query on its hash, no cache, so a revoked key is refused at once) and checks
//! what the matched route needs ([`requirement`]):
//!
//! | route | needs |
//! |---|---|
//! | `/health`, `/ready` | nothing |
//! | `/api/v1/admin/*` | an admin key |
//! | `GET /api/v1/{domain}/…` | `read` on the domain |
//! | `POST /api/v1/{domain}/…` | `write` on the domain |
//! | `/api/v1/definitions/publish` | any key; the handler checks `publish` on the document's domain, and admin for a new domain |
//! | `/api/v1/definitions/validate`, `/metrics`, unknown paths | any key |
//! | `GET /api/v1/domains` | any key; the handler lists only the domains it may `read` |
//! | any other route | an admin key (a route nobody classified is never open) |
//!
//! The decision whether keys are needed at all is the [`AuthGate`]'s: on a
//! non-loopback listener always; on a loopback listener only once a live key
//! exists or an identity source is configured (development runs open until
//! the first key is created, and stay enforced from then on for the life of
//! the process).
//!
//! Besides API keys, a caller may be an [`Identity`] ([`super::identity`]): a
//! trusted proxy's identity headers are looked at first; then a bearer token
//! that has the JWT shape is verified as a JWT when a JWT issuer is
//! configured; any other credential is looked up as an API key.
//!
//! Grants decide which routes a caller reaches; its roles ([`Caller::roles`])
//! decide, further in, which transitions it may run and which instances it may
//! read, as the workflow model's `roles` and `queryRoles` say.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::RequestExt;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vnext_init::config::secrets::is_loopback_listen;
use uuid::Uuid;
use vnext_core::roles::Roles;
use vnext_init::keys::{self, ApiKey, Grant, KEY_PREFIX};

use super::AppState;
use super::identity::Identity;
use crate::error::{ApiError, ErrorCode};

/// What a route needs from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Nothing,
    AnyKey,
    Admin,
    Grant { domain: String, grant: Grant },
}

/// Who made the request, as handlers see it (a request extension).
#[derive(Debug, Clone)]
pub enum Caller {
    /// Keys are not enforced (loopback development without keys).
    Open,
    Key(Arc<ApiKey>),
    /// A trusted proxy's or an identity provider's identity.
    Identity(Arc<Identity>),
}

impl Caller {
    /// Whether the caller may do `grant` in `domain`.
    pub fn allows(&self, domain: &str, grant: Grant) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.scope.allows(domain, grant),
            Caller::Identity(identity) => identity.allows(domain, grant),
        }
    }

    /// Whether the caller may provision domains and manage keys.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.scope.is_admin(),
            Caller::Identity(identity) => identity.admin,
        }
    }

    /// The roles the workflow model's `roles` and `queryRoles` are checked
    /// against. An admin (key or identity) and an open development run are
    /// not restricted by them.
    pub fn roles(&self) -> Roles {
        if self.is_admin() {
            return Roles::Unrestricted;
        }
        match self {
            Caller::Open => Roles::Unrestricted,
            Caller::Key(key) => Roles::of(&key.roles),
            Caller::Identity(identity) => Roles::of(&identity.roles),
        }
    }

    /// The API key's id, when the caller is a key.
    pub fn key_id(&self) -> Option<Uuid> {
        match self {
            Caller::Key(key) => Some(key.id),
            _ => None,
        }
    }

    /// Who this is in logs and records: `key:<id>`, `jwt:<subject>`,
    /// `header:<subject>` or `open`.
    pub fn label(&self) -> String {
        match self {
            Caller::Open => "open".into(),
            Caller::Key(key) => format!("key:{}", key.id),
            Caller::Identity(identity) => identity.label(),
        }
    }
}

/// Whether keys are required. Shared by every request of one server.
#[derive(Debug)]
pub struct AuthGate {
    enforced: AtomicBool,
}

impl AuthGate {
    /// A gate for a listener on `ip`: enforced from the start unless loopback
    /// without identity sources.
    pub fn for_listener(ip: IpAddr, identities: bool) -> AuthGate {
        AuthGate { enforced: AtomicBool::new(!ip.is_loopback() || identities) }
    }

    /// Whether this request must present a key. An open gate asks the control
    /// database whether a key exists now, and closes for good when one does.
    async fn enforced(&self, state: &AppState) -> Result<bool, ApiError> {
        if self.enforced.load(Ordering::Relaxed) {
            return Ok(true);
        }
        if keys::any_live(state.engine.databases().control()).await.map_err(ApiError::database)? {
            if !self.enforced.swap(true, Ordering::Relaxed) {
                tracing::warn!("an API key exists now: every request needs a key from now on");
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// How a server decides at startup; see [`startup_decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// Loopback and no key: the API runs open (development).
    OpenLoopback,
    /// Keys exist: every request needs one.
    Enforced,
}

/// Whether a server on a loopback (or other) listener may start, given whether
/// a live key exists. A non-loopback listener without keys would be an open
/// API: refused, with what to do instead. There is deliberately no setting
/// that allows it.
///
/// # Errors
/// The message to print when the server must not start.
pub fn startup_decision(listen: &str, loopback: bool, any_key: bool) -> Result<StartupMode, String> {
    // Identity sources count as keys here: see `check_startup`.
    match (any_key, loopback) {
        (true, _) => Ok(StartupMode::Enforced),
        (false, true) => Ok(StartupMode::OpenLoopback),
        (false, false) => Err(format!(
            "refusing to serve the API on {listen} without authentication: no API key exists. \
             Create an admin key first with `vnext keys create --name admin --scope admin` \
             (or listen on a loopback address for development)"
        )),
    }
}

/// Reads the key table and applies [`startup_decision`] to `listen` (before
/// it is bound), logging the one WARN line of an open run.
///
/// # Errors
/// The message to print when the server must not start, or the database error.
pub async fn check_startup(databases: &vnext_init::db::Databases, listen: &str) -> Result<StartupMode, String> {
    // Identity sources that cannot be read, or a JWKS that cannot be loaded,
    // stop the server here rather than refusing every request later.
    let identities = super::identity::Identities::from_config(&databases.config().identity)?;
    identities.preload().await?;
    let any = identities.enabled()
        || keys::any_live(databases.control()).await.map_err(|e| format!("cannot read the API keys: {e}"))?;
    let mode = startup_decision(listen, is_loopback_listen(listen), any)?;
    if mode == StartupMode::OpenLoopback {
        tracing::warn!(
            listen,
            "the API runs WITHOUT authentication (loopback, no API key); create one with `vnext keys create --name admin --scope admin`"
        );
    }
    Ok(mode)
}

/// What the route `template` (as matched, `None` when nothing matched) needs,
/// with the decoded path parameters.
pub fn requirement(method: &Method, template: Option<&str>, params: &[(String, String)]) -> Need {
    let Some(template) = template else { return Need::AnyKey };
    match template {
        "/health" | "/ready" => return Need::Nothing,
        "/metrics" | "/api/v1/definitions/publish" | "/api/v1/definitions/validate" | "/api/v1/domains" => return Need::AnyKey,
        t if t.starts_with("/api/v1/admin/") => return Need::Admin,
        _ => {}
    }
    if template.starts_with("/api/v1/{domain}/")
        && let Some((_, domain)) = params.iter().find(|(name, _)| name == "domain")
    {
        let grant = if matches!(*method, Method::GET | Method::HEAD) { Grant::Read } else { Grant::Write };
        return Need::Grant { domain: domain.clone(), grant };
    }
    Need::Admin
}

/// The key a request presents, if any (`Authorization: Bearer`, else `X-Api-Key`).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok())).map(str::trim).filter(|k| !k.is_empty())
}

fn unauthorized(code: ErrorCode, detail: &str) -> Response {
    let mut response = ApiError::new(code, detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"vnext\""));
    response
}

/// 403 naming what was missing.
pub fn forbidden(what: &str) -> ApiError {
    ApiError::new(ErrorCode::AuthForbidden, format!("this API key does not grant {what}"))
}

/// Checks the caller against what the matched route needs; see the module docs.
pub async fn auth_middleware(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let params: Vec<(String, String)> = match request.extract_parts::<RawPathParams>().await {
        Ok(raw) => raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        Err(_) => Vec::new(),
    };
    let need = requirement(request.method(), template.as_deref(), &params);
    if need == Need::Nothing {
        return next.run(request).await;
    }
    match state.auth.enforced(&state).await {
        Err(e) => return e.into_response(),
        Ok(false) => {
            super::audit::note_caller(&request, &Caller::Open);
            request.extensions_mut().insert(Caller::Open);
            return next.run(request).await;
        }
        Ok(true) => {}
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let caller = match authenticate(&state, peer, request.headers().clone()).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    super::audit::note_caller(&request, &caller);
    // Held until the answer: the request counts in flight for its caller.
    let _in_flight = match state.limits.admit(&caller) {
        Ok(guard) => guard,
        Err(refused) => return *refused,
    };
    let denied = match &need {
        Need::Nothing | Need::AnyKey => None,
        Need::Admin => (!caller.is_admin()).then(|| forbidden("admin (this endpoint needs an admin key)")),
        Need::Grant { domain, grant } => (!caller.allows(domain, *grant))
            .then(|| forbidden(&format!("`{}` on domain `{}`", grant.as_str(), crate::error::printable(domain)))),
    };
    if let Some(denied) = denied {
        return denied.with_extra("missingGrant", missing_grant(&need)).into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Who presents the request's credentials; see the module docs for the order.
async fn authenticate(state: &AppState, peer: Option<SocketAddr>, headers: HeaderMap) -> Result<Caller, Response> {
    if let Some(identity) = state.identities.from_headers(peer, &headers) {
        return identity.map(|i| Caller::Identity(Arc::new(i))).map_err(unauthorized_problem);
    }
    let Some(secret) = presented_key(&headers) else {
        return Err(unauthorized(ErrorCode::AuthMissingKey, "send an API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`"));
    };
    if !secret.starts_with(KEY_PREFIX) && state.identities.takes_token(secret) {
        return state.identities.verify_token(secret).await.map(|i| Caller::Identity(Arc::new(i))).map_err(unauthorized_problem);
    }
    match keys::authenticate(state.engine.databases().control(), secret).await {
        Ok(Some(key)) => Ok(Caller::Key(Arc::new(key))),
        Ok(None) => Err(unauthorized(ErrorCode::AuthInvalidKey, "the API key is unknown or revoked")),
        Err(e) => Err(ApiError::database(e).into_response()),
    }
}

/// A 401 problem carries `WWW-Authenticate`; other problems go out as they are.
fn unauthorized_problem(error: ApiError) -> Response {
    let challenge = error.status() == axum::http::StatusCode::UNAUTHORIZED;
    let mut response = error.into_response();
    if challenge {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"vnext\""));
    }
    response
}

fn missing_grant(need: &Need) -> serde_json::Value {
    match need {
        Need::Grant { grant, .. } => grant.as_str().into(),
        _ => "admin".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(domain: &str) -> Vec<(String, String)> {
        vec![("domain".into(), domain.into()), ("workflow".into(), "w".into())]
    }

    #[test]
    fn routes_declare_their_needs() {
        let inst = Some("/api/v1/{domain}/workflows/{workflow}/instances/{instance}");
        assert_eq!(requirement(&Method::GET, Some("/health"), &[]), Need::Nothing);
        assert_eq!(requirement(&Method::GET, Some("/ready"), &[]), Need::Nothing);
        assert_eq!(requirement(&Method::GET, Some("/metrics"), &[]), Need::AnyKey);
        assert_eq!(requirement(&Method::GET, None, &[]), Need::AnyKey);
        assert_eq!(requirement(&Method::GET, Some("/api/v1/domains"), &[]), Need::AnyKey);
        assert_eq!(
            requirement(&Method::GET, Some("/api/v1/{domain}/workflows"), &p("pay")),
            Need::Grant { domain: "pay".into(), grant: Grant::Read }
        );
        assert_eq!(requirement(&Method::POST, Some("/api/v1/admin/keys"), &[]), Need::Admin);
        assert_eq!(requirement(&Method::GET, inst, &p("pay")), Need::Grant { domain: "pay".into(), grant: Grant::Read });
        assert_eq!(
            requirement(&Method::POST, Some("/api/v1/{domain}/workflows/{workflow}/instances/start"), &p("pay")),
            Need::Grant { domain: "pay".into(), grant: Grant::Write }
        );
        assert_eq!(requirement(&Method::DELETE, Some("/api/v1/something/new"), &[]), Need::Admin);
    }

    #[test]
    fn a_non_loopback_listener_without_keys_does_not_start() {
        for listen in ["0.0.0.0:4201", "10.1.2.3:80", "[::]:4201", "api.example:443"] {
            let message = startup_decision(listen, is_loopback_listen(listen), false).unwrap_err();
            assert!(message.contains("vnext keys create") && message.contains("--scope admin") && message.contains(listen), "{message}");
            assert_eq!(startup_decision(listen, is_loopback_listen(listen), true), Ok(StartupMode::Enforced));
        }
        for listen in ["127.0.0.1:4201", "[::1]:0", "localhost:4201"] {
            assert_eq!(startup_decision(listen, is_loopback_listen(listen), false), Ok(StartupMode::OpenLoopback));
            assert_eq!(startup_decision(listen, is_loopback_listen(listen), true), Ok(StartupMode::Enforced));
        }
        let public: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(AuthGate::for_listener(public, false).enforced.load(Ordering::Relaxed));
        assert!(!AuthGate::for_listener("127.0.0.1".parse().unwrap(), false).enforced.load(Ordering::Relaxed));
        assert!(AuthGate::for_listener("127.0.0.1".parse().unwrap(), true).enforced.load(Ordering::Relaxed));
    }

    #[test]
    fn keys_come_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("vnk_b"));
        assert_eq!(presented_key(&h), Some("vnk_b"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer vnk_a"));
        assert_eq!(presented_key(&h), Some("vnk_a"));
    }
}
