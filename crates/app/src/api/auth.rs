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
//! | `/api/v1/internal/*` | nothing here: the handler checks `execution.shared_secret` |
//! | `/api/v1/admin/*` | an admin key |
//! | `GET /api/v1/{domain}/…` | `read` on the domain |
//! | `POST /api/v1/{domain}/…` | `write` on the domain |
//! | `/api/v1/definitions/publish` | any key; the handler checks `publish` on the document's domain, and admin for a new domain |
//! | `/api/v1/definitions/validate`, `/metrics`, unknown paths | any key |
//! | any other route | an admin key (a route nobody classified is never open) |
//!
//! The decision whether keys are needed at all is the [`AuthGate`]'s: on a
//! non-loopback listener always; on a loopback listener only once a live key
//! exists (development runs open until the first key is created, and stay
//! enforced from then on for the life of the process).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::RequestExt;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vnext_init::config::secrets::is_loopback_listen;
use vnext_init::keys::{self, ApiKey, Grant};

use super::AppState;
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
}

impl Caller {
    /// Whether the caller may do `grant` in `domain`.
    pub fn allows(&self, domain: &str, grant: Grant) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.scope.allows(domain, grant),
        }
    }

    /// Whether the caller may provision domains and manage keys.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.scope.is_admin(),
        }
    }
}

/// Whether keys are required. Shared by every request of one server.
#[derive(Debug)]
pub struct AuthGate {
    enforced: AtomicBool,
}

impl AuthGate {
    /// A gate for a listener on `ip`: enforced from the start unless loopback.
    pub fn for_listener(ip: IpAddr) -> AuthGate {
        AuthGate { enforced: AtomicBool::new(!ip.is_loopback()) }
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
    let any = keys::any_live(databases.control()).await.map_err(|e| format!("cannot read the API keys: {e}"))?;
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
        "/metrics" | "/api/v1/definitions/publish" | "/api/v1/definitions/validate" => return Need::AnyKey,
        t if t.starts_with("/api/v1/internal/") => return Need::Nothing,
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
            request.extensions_mut().insert(Caller::Open);
            return next.run(request).await;
        }
        Ok(true) => {}
    }
    let Some(secret) = presented_key(request.headers()) else {
        return unauthorized(ErrorCode::AuthMissingKey, "send an API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`");
    };
    let key = match keys::authenticate(state.engine.databases().control(), secret).await {
        Ok(Some(key)) => Arc::new(key),
        Ok(None) => return unauthorized(ErrorCode::AuthInvalidKey, "the API key is unknown or revoked"),
        Err(e) => return ApiError::database(e).into_response(),
    };
    let caller = Caller::Key(key);
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
        assert_eq!(requirement(&Method::POST, Some("/api/v1/internal/trigger"), &[]), Need::Nothing);
        assert_eq!(requirement(&Method::GET, Some("/metrics"), &[]), Need::AnyKey);
        assert_eq!(requirement(&Method::GET, None, &[]), Need::AnyKey);
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
        assert!(AuthGate::for_listener(public).enforced.load(Ordering::Relaxed));
        assert!(!AuthGate::for_listener("127.0.0.1".parse().unwrap()).enforced.load(Ordering::Relaxed));
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
