//! The audit log of mutating calls: written by [`audit_middleware`], read
//! through `GET /api/v1/{domain}/audit` and `GET /api/v1/admin/audit`.
//!
//! Audited: every call of a route that changes something, refused and failed
//! calls included ([`action_of`]): publish, start, transition (`cancel` and
//! `exit` are transitions), retry, key create and revoke. Not audited: reads
//! (GET, HEAD), `POST /api/v1/definitions/validate` (it stores nothing),
//! paths that match no route, and, unless `audit.record_unauthenticated`,
//! calls refused before a caller was known (401).
//!
//! A row names the caller (label, key id, roles), the action, the route
//! template and the identifiers of the target (path parameters, the instance
//! a start created, the component a publish named, the key a create made),
//! the status and outcome (`ok` or the error code), the trace id and the time
//! the call came in. Never a body, a header or a credential.
//!
//! Where: the domain's `sys_audit.audit_log` when the call names a
//! provisioned domain, else the control database's `vnext_control.audit_log`
//! (key management, a publish refused before its domain existed, a call on an
//! unknown domain). A domain log that cannot be written sends its row to the
//! control log rather than lose it.
//!
//! When: after the handler, before the answer goes out, as its own statement
//! (not in the mutation's transaction, which the engine owns and which a
//! refused call never opens). The handler and the write run on a task of
//! their own, so a client that hangs up cannot stop the row from being
//! written after the mutation committed; only a crash of the process between
//! the mutation's commit and the row's insert loses the row, and then the
//! client got no answer either. See docs/architecture.md.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, RequestExt};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use chrono::Utc;
use serde_json::{Map, Value, json};
use uuid::Uuid;
use vnext_core::ident::DomainName;
use vnext_init::audit::{self, AuditLog, AuditQuery, AuditRecord};
use vnext_init::db::DbError;

use super::AppState;
use super::auth::Caller;
use super::params::{ApiPath, Params, domain_name};
use crate::error::{ApiError, ErrorCode, REQUEST_ID_HEADER, problem_code};
use crate::query::scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(domain_log)).routes(routes!(control_log))
}

/// What a mutating route does, by method and route template; `None` for
/// routes that change nothing. A mutating route added later without a name
/// here is still audited, as `call`.
pub fn action_of(method: &Method, template: &str) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    Some(match template {
        "/api/v1/definitions/validate" => return None,
        "/api/v1/definitions/publish" => "definition.publish",
        "/api/v1/{domain}/workflows/{workflow}/instances/start" => "instance.start",
        "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions/{transition}" => "instance.transition",
        "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/retry" => "instance.retry",
        "/api/v1/admin/keys" => "key.create",
        "/api/v1/admin/keys/{id}" => "key.revoke",
        _ => "call",
    })
}

/// Where the auth middleware leaves the caller for the audit row (the audit
/// layer runs outside it, so it also sees the caller of a refused call).
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<Caller>>);

/// Records `caller` as the request's caller, when the request is audited.
pub fn note_caller(request: &Request, caller: &Caller) {
    if let Some(slot) = request.extensions().get::<CallerSlot>() {
        let _ = slot.0.set(caller.clone());
    }
}

/// What a handler adds about its target, as a response extension: what only
/// the handler knows (the instance a start created, the domain and component
/// a publish named, the key a create made).
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub domain: Option<String>,
    pub target: Map<String, Value>,
}

impl AuditNote {
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> AuditNote {
        self.target.insert(name.to_string(), value.into());
        self
    }

    /// Adds the note to `response`.
    pub fn attach(self, response: &mut Response) {
        response.extensions_mut().insert(self);
    }
}

/// Path parameters as target fields (`id` of a key route is `keyId`; the
/// domain has a column of its own).
fn target_of(params: &[(String, String)]) -> (Option<String>, Map<String, Value>) {
    let mut domain = None;
    let mut target = Map::new();
    for (name, value) in params {
        match name.as_str() {
            "domain" => domain = Some(value.clone()),
            "id" => {
                target.insert("keyId".into(), value.clone().into());
            }
            other => {
                target.insert(other.to_string(), value.clone().into());
            }
        }
    }
    (domain, target)
}

/// The caller's fields of a row: label, key id, roles as granted.
fn caller_fields(caller: Option<&Caller>) -> (String, Option<Uuid>, Vec<String>) {
    match caller {
        None => ("anonymous".into(), None, Vec::new()),
        Some(Caller::Open) => ("open".into(), None, Vec::new()),
        Some(c @ Caller::Key(key)) => (c.label(), Some(key.id), key.roles.clone()),
        Some(c @ Caller::Identity(identity)) => (c.label(), None, identity.roles.clone()),
    }
}

/// Audits mutating calls; see the module docs.
pub async fn audit_middleware(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(request).await;
    };
    let method = request.method().clone();
    let action = match action_of(&method, &template) {
        Some(action) if state.settings.audit.enabled => action,
        _ => return next.run(request).await,
    };
    let params: Vec<(String, String)> = match request.extract_parts::<RawPathParams>().await {
        Ok(raw) => raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        Err(_) => Vec::new(),
    };
    let trace_id = request.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let at = Utc::now();
    let started = Instant::now();
    let work = async move {
        let response = next.run(request).await;
        let caller = slot.0.get();
        if caller.is_none() && !state.settings.audit.record_unauthenticated {
            return response;
        }
        let (mut domain, mut target) = target_of(&params);
        if let Some(note) = response.extensions().get::<AuditNote>() {
            domain = domain.or_else(|| note.domain.clone());
            target.extend(note.target.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let status = response.status();
        let outcome = if status.is_success() || status.is_redirection() {
            "ok".to_string()
        } else {
            problem_code(&response).map_or_else(|| format!("http-{}", status.as_u16()), |c| c.as_str().to_string())
        };
        let (caller, key_id, roles) = caller_fields(caller);
        let record = AuditRecord {
            at,
            caller,
            key_id,
            roles,
            action: action.into(),
            method: method.to_string(),
            route: template,
            domain,
            target,
            status: status.as_u16(),
            outcome,
            trace_id,
            duration_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
        };
        write(&state, &record).await;
        response
    };
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(e) => ApiError::internal(format!("the request's work stopped: {e}")).into_response(),
    }
}

/// Writes `record` to its domain's log, else to the control log; a row that
/// reaches neither is logged at `error` with every field (none is a secret).
async fn write(state: &AppState, record: &AuditRecord) {
    let databases = state.engine.databases();
    if let Some(domain) = record.domain.as_deref().and_then(|d| DomainName::new(d).ok()) {
        match databases.domain(&domain).await {
            Ok(pool) => match audit::record(&pool, AuditLog::Domain, record).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(%domain, error = %e, "cannot write the domain's audit log; writing the row to the control log"),
            },
            Err(DbError::UnknownDomain(_)) => {}
            Err(e) => tracing::warn!(%domain, error = %e, "cannot reach the domain's audit log; writing the row to the control log"),
        }
    }
    if let Err(e) = audit::record(databases.control(), AuditLog::Control, record).await {
        let row = serde_json::to_string(record).unwrap_or_default();
        tracing::error!(error = %e, row, "audit row lost: neither the domain's nor the control audit log could be written");
    }
}

/// The query of a read: `before`, `limit` (1–500, default 100), `action`,
/// `instance`, `keyId`, and on the control log `domain`.
fn query_of(params: &Params, control: bool) -> Result<AuditQuery, ApiError> {
    let before = params
        .get("before")
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::new(ErrorCode::InvalidParameter, format!("`before` must be a row id (an integer), found `{}`", v.escape_debug()))
            })
        })
        .transpose()?;
    let key_id = params
        .get("keyId")
        .map(|v| {
            Uuid::parse_str(v.trim()).map_err(|_| {
                ApiError::new(ErrorCode::InvalidParameter, format!("`keyId` must be a key id (a UUID), found `{}`", v.escape_debug()))
            })
        })
        .transpose()?;
    let text = |name: &str| params.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    Ok(AuditQuery {
        before,
        limit: params.number("limit", 100, 1, 500)?,
        action: text("action"),
        instance: text("instance"),
        key_id,
        domain: if control { text("domain") } else { None },
    })
}

fn page(rows: Vec<audit::AuditRow>, limit: u32) -> Json<Value> {
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    Json(json!({ "items": rows, "nextBefore": next }))
}

/// The domain's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/{domain}/audit", operation_id = "domainAudit", tag = "audit",
    params(super::openapi::params::DomainPath, super::openapi::params::AuditQuery),
    responses((status = 200, description = "A page of rows", body = super::openapi::shapes::AuditPage)))]
async fn domain_log(State(state): State<AppState>, ApiPath(domain): ApiPath<String>, params: Params) -> Result<Json<Value>, ApiError> {
    let domain = domain_name(&domain)?;
    let query = query_of(&params, false)?;
    let pool = scope::domain_pool(state.engine.databases(), &domain).await?;
    let rows = audit::list(&pool, AuditLog::Domain, &query).await.map_err(ApiError::from)?;
    Ok(page(rows, query.limit))
}

/// The control audit log (key management, calls naming no provisioned domain), newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", operation_id = "controlAudit", tag = "admin",
    params(super::openapi::params::ControlAuditQuery),
    responses((status = 200, description = "A page of rows", body = super::openapi::shapes::AuditPage)))]
async fn control_log(State(state): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let query = query_of(&params, true)?;
    let rows = audit::list(state.engine.databases().control(), AuditLog::Control, &query).await.map_err(ApiError::from)?;
    Ok(page(rows, query.limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutating_routes_are_named_and_reads_are_not_audited() {
        let base = "/api/v1/{domain}/workflows/{workflow}/instances";
        assert_eq!(action_of(&Method::POST, &format!("{base}/start")), Some("instance.start"));
        assert_eq!(action_of(&Method::PATCH, &format!("{base}/{{instance}}/transitions/{{transition}}")), Some("instance.transition"));
        assert_eq!(action_of(&Method::POST, &format!("{base}/{{instance}}/retry")), Some("instance.retry"));
        assert_eq!(action_of(&Method::POST, "/api/v1/definitions/publish"), Some("definition.publish"));
        assert_eq!(action_of(&Method::POST, "/api/v1/admin/keys"), Some("key.create"));
        assert_eq!(action_of(&Method::DELETE, "/api/v1/admin/keys/{id}"), Some("key.revoke"));
        assert_eq!(action_of(&Method::POST, "/api/v1/definitions/validate"), None);
        assert_eq!(action_of(&Method::GET, &format!("{base}/{{instance}}")), None);
        assert_eq!(action_of(&Method::GET, "/api/v1/admin/keys"), None);
        assert_eq!(action_of(&Method::PUT, "/api/v1/something/new"), Some("call"));
    }

    #[test]
    fn path_parameters_become_the_target() {
        let params = [("domain", "shop"), ("workflow", "order"), ("instance", "o-1"), ("id", "k")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let (domain, target) = target_of(&params);
        assert_eq!(domain.as_deref(), Some("shop"));
        assert_eq!(Value::Object(target), json!({"workflow": "order", "instance": "o-1", "keyId": "k"}));
    }
}
