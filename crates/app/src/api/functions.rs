//! The built-in instance functions.
//!
//! - `GET …/instances/{instance}/functions/state`: state, status, the transitions a
//!   client may call now (each with its `kind`: `stateTransition`,
//!   `sharedTransition`, `cancel`, `exit`, `updateData`) and armed timers
//!   (`scheduled` / `timeout`, with `executeAtUtc`); honours `If-None-Match`.
//! - `GET …/functions/data?version=`: data now, or at a past data version
//!   (`1.0.2`, or its number `3`).
//! - `GET …/functions/view?transition=`: the current state's view (or a transition's).
//! - `GET …/functions/schema?transition=`: a transition's JSON Schema (or the
//!   workflow's master schema).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};

use super::access;
use super::auth::Caller;
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use super::{AppState, etag_header, not_modified};
use crate::engine::InstanceSnapshot;
use crate::error::ApiError;
use crate::query::{FlowScope, data, functions, instance, scope};

const BASE: &str = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/state"), get(state_fn))
        .route(&format!("{BASE}/data"), get(data_fn))
        .route(&format!("{BASE}/view"), get(view_fn))
        .route(&format!("{BASE}/schema"), get(schema_fn))
}

type InstancePath = ApiPath<(String, String, String)>;

/// The instance, when the caller's roles may read it (`queryRoles`).
async fn load(state: &AppState, caller: &Caller, path: InstancePath) -> Result<(FlowScope, InstanceSnapshot), ApiError> {
    let ApiPath((domain, workflow, instance)) = path;
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&instance)?).await?;
    access::check_read(state, &caller.roles(), &scope, &snapshot).await?;
    Ok((scope, snapshot))
}

/// A transition key from `?transition=`, if any.
fn transition_param(params: &Params) -> Option<&str> {
    params.get("transition").map(str::trim).filter(|t| !t.is_empty())
}

async fn state_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, headers: HeaderMap) -> Result<Response, ApiError> {
    let (scope, snapshot) = load(&state, &caller, path).await?;
    let etag = etag_header(&snapshot.etag);
    // Timers can be armed without a data write, but every arming commits a
    // transition, which changes the ETag: 304 is safe.
    if not_modified(&headers, &snapshot.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let answer = functions::state_function(&scope, &snapshot, &caller.roles()).await?;
    Ok(([(header::ETAG, etag)], Json(answer)).into_response())
}

async fn data_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, params: Params) -> Result<Response, ApiError> {
    let version = params.get("version").map(str::trim).filter(|v| !v.is_empty()).map(data::parse_version).transpose()?;
    let (scope, snapshot) = load(&state, &caller, path).await?;
    let answer = data::data_at(&scope, &snapshot, version.as_ref()).await?;
    let mut response = Json(&answer).into_response();
    if let Some(etag) = &answer.etag {
        response.headers_mut().insert(header::ETAG, etag_header(etag));
    }
    Ok(response)
}

async fn view_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, params: Params) -> Result<Json<serde_json::Value>, ApiError> {
    let (scope, snapshot) = load(&state, &caller, path).await?;
    Ok(Json(functions::view_function(&scope, &snapshot, transition_param(&params)).await?))
}

async fn schema_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, params: Params) -> Result<Json<serde_json::Value>, ApiError> {
    let (scope, snapshot) = load(&state, &caller, path).await?;
    Ok(Json(functions::schema_function(&scope, &snapshot, transition_param(&params)).await?))
}
