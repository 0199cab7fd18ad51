//! The instance functions, in the engine's shapes.
//!
//! - `GET …/instances/{instance}/functions/state`: state, status, the transitions a
//!   client may call now (each with its `kind`) and armed timers; ETag /
//!   `If-None-Match`, with long-poll while the instance is busy (see [`state_fn`]).
//! - `GET …/functions/data?version=`: data now, or at a past data version.
//! - `GET …/functions/view?transitionKey=`: the current state's view (or a transition's).
//! - `GET …/functions/schema?transitionKey=`: a transition's JSON Schema (or the
//!   workflow's master schema).
//! - `GET …/functions/catalog`: the functions the workflow references.
//! - `GET …/functions/authorize?transitionKey=|functionKey=|queryRoles=true|ack=true`:
//!   200 `{allowed:true}` or 403 `{allowed:false}`.
//! - Custom functions (`…/functions/{name}`) are served by `custom_functions`.
//! - `POST …/instances/{instance}/longpoll/ack`: 200, empty.
//!
//! `transition=` is read as well as the engine's `transitionKey=`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde_json::{Value, json};
use vnext_core::model::ViewBinding;

use super::access;
use super::auth::Caller;
use super::envelope::entity_etag;
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use super::{AppState, ENTITY_ETAG, etag_header, not_modified};
use crate::engine::{InstanceSnapshot, InstanceStatus};
use crate::error::{ApiError, ErrorCode};
use crate::query::{FlowScope, data, functions, instance, scope};

/// Longest a state read waits for a busy instance to change.
pub const LONG_POLL: Duration = Duration::from_secs(10);
const LONG_POLL_STEP: Duration = Duration::from_millis(200);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(state_fn))
        .routes(routes!(data_fn))
        .routes(routes!(view_fn))
        .routes(routes!(schema_fn))
        .routes(routes!(catalog_fn))
        .routes(routes!(authorize_fn))
        .routes(routes!(ack_fn))
}

type InstancePath = ApiPath<(String, String, String)>;

/// The instance, without checking who may read it.
async fn find(state: &AppState, domain: &str, workflow: &str, instance: &str) -> Result<(FlowScope, InstanceSnapshot), ApiError> {
    let scope = scope::resolve(state.engine.databases(), domain_name(domain)?, flow_key(workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(instance)?).await?;
    Ok((scope, snapshot))
}

/// The instance, when the caller's roles may read it (`queryRoles`).
async fn load(state: &AppState, caller: &Caller, path: InstancePath) -> Result<(FlowScope, InstanceSnapshot), ApiError> {
    let ApiPath((domain, workflow, instance)) = path;
    let (scope, snapshot) = find(state, &domain, &workflow, &instance).await?;
    access::check_read(state, &caller.roles(), &scope, &snapshot).await?;
    Ok((scope, snapshot))
}

/// A transition key from `?transitionKey=` (or our `?transition=`), if any.
fn transition_param(params: &Params) -> Option<&str> {
    params.get("transitionKey").or_else(|| params.get("transition")).map(str::trim).filter(|t| !t.is_empty())
}

/// `ETag` and `X-Entity-ETag` of an instance.
fn etag_headers(snapshot: &InstanceSnapshot) -> [(header::HeaderName, header::HeaderValue); 2] {
    [
        (header::ETAG, etag_header(&snapshot.etag)),
        (ENTITY_ETAG, etag_header(&entity_etag(snapshot))),
    ]
}

/// The state function. A client holding the current ETag of a busy instance
/// (`If-None-Match`) is answered when the ETag changes, or with 304 after
/// [`LONG_POLL`]; an instance at rest answers 304 at once. The answer's
/// `interaction` tells the client whether to keep polling.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/state", operation_id = "stateFunction", tag = "functions",
    params(super::openapi::params::InstancePath, ("If-None-Match" = Option<String>, Header, description = "An ETag the client holds")),
    responses(
        (status = 200, description = "Where the instance is and what a client may do now", body = super::openapi::shapes::StateFunction, headers(("ETag" = String, description = "The instance ETag, quoted"), ("X-Entity-ETag" = String, description = "The data ETag, quoted"))),
        (status = 304, description = "Not modified (a busy instance after the long-poll wait, one at rest at once)", headers(("ETag" = String, description = "The instance ETag, quoted"), ("X-Entity-ETag" = String, description = "The data ETag, quoted"))),
    ))]
async fn state_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, headers: HeaderMap) -> Result<Response, ApiError> {
    let ApiPath((domain, workflow, instance)) = path;
    let (scope, mut snapshot) = find(&state, &domain, &workflow, &instance).await?;
    access::check_read(&state, &caller.roles(), &scope, &snapshot).await?;
    let started = Instant::now();
    // Timers can be armed without a data write, but every arming commits a
    // transition, which changes the ETag: 304 is safe.
    while not_modified(&headers, &snapshot.etag) {
        if snapshot.status != InstanceStatus::Busy || started.elapsed() >= LONG_POLL {
            return Ok((StatusCode::NOT_MODIFIED, etag_headers(&snapshot)).into_response());
        }
        tokio::time::sleep(LONG_POLL_STEP).await;
        snapshot = instance::get(&scope, &instance_ref(&snapshot.id.to_string())?).await?;
    }
    let mut answer = functions::state_function(&scope, &snapshot, &caller.roles()).await?;
    // A rule-based view answers for the view its rules choose now.
    let workflow = functions::pinned_workflow(&scope, &snapshot).await?;
    if let Some(binding @ ViewBinding::Rules { .. }) = workflow.state(&snapshot.current_state).and_then(|s| s.view.as_ref()) {
        let chosen = state.engine.select_view(&scope.domain, binding, &snapshot).await?;
        answer["view"]["hasView"] = json!(chosen.is_some());
        answer["view"]["loadData"] = json!(chosen.and_then(|v| v.load_data).unwrap_or(false));
    }
    let base = functions::instance_href(&scope, snapshot.id);
    answer["interaction"] = json!({
        "terminateLongPoll": snapshot.status != InstanceStatus::Busy,
        "fallbackTimeoutSeconds": LONG_POLL.as_secs(),
        "ack": { "href": format!("{base}/longpoll/ack") },
    });
    Ok((etag_headers(&snapshot), Json(answer)).into_response())
}

/// The instance data now, or at a past data version.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/data", operation_id = "dataFunction", tag = "functions",
    params(super::openapi::params::InstancePath, super::openapi::params::DataVersionQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag the client holds")),
    responses(
        (status = 200, description = "The data", body = crate::query::data::DataAnswer),
        (status = 304, description = "Not modified", headers(("ETag" = String, description = "The instance ETag, quoted"), ("X-Entity-ETag" = String, description = "The data ETag, quoted"))),
    ))]
async fn data_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, params: Params, headers: HeaderMap) -> Result<Response, ApiError> {
    let version = params.get("version").map(str::trim).filter(|v| !v.is_empty()).map(data::parse_version).transpose()?;
    let (scope, snapshot) = load(&state, &caller, path).await?;
    let answer = data::data_at(&scope, &snapshot, version.as_ref()).await?;
    if answer.is_latest && not_modified(&headers, &snapshot.etag) {
        return Ok((StatusCode::NOT_MODIFIED, etag_headers(&snapshot)).into_response());
    }
    let mut response = Json(&answer).into_response();
    if answer.is_latest {
        response.headers_mut().extend(etag_headers(&snapshot));
    }
    Ok(response)
}

/// The current state's view (or a transition's).
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/view", operation_id = "viewFunction", tag = "functions",
    params(super::openapi::params::InstancePath, super::openapi::params::TransitionKeyQuery),
    responses((status = 200, description = "The view", body = super::openapi::shapes::ViewFunction)))]
async fn view_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, params: Params) -> Result<Json<Value>, ApiError> {
    let (scope, snapshot) = load(&state, &caller, path).await?;
    Ok(Json(functions::view_function(&state.engine, &scope, &snapshot, transition_param(&params)).await?))
}

/// A transition's JSON Schema (or the workflow's master schema).
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/schema", operation_id = "schemaFunction", tag = "functions",
    params(super::openapi::params::InstancePath, super::openapi::params::TransitionKeyQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag the client holds")),
    responses(
        (status = 200, description = "The schema", body = super::openapi::shapes::SchemaFunction, headers(("ETag" = String))),
        (status = 304, description = "Not modified", headers(("ETag" = String))),
    ))]
async fn schema_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath, params: Params, headers: HeaderMap) -> Result<Response, ApiError> {
    let (scope, snapshot) = load(&state, &caller, path).await?;
    let answer = functions::schema_function(&scope, &snapshot, transition_param(&params)).await?;
    let etag = answer["eTag"].as_str().unwrap_or_default().trim_matches('"').to_string();
    let value = etag_header(&etag);
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, value)]).into_response());
    }
    Ok(([(header::ETAG, value)], Json(answer)).into_response())
}

/// The functions the workflow references.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/catalog", operation_id = "catalogFunction", tag = "functions",
    params(super::openapi::params::InstancePath),
    responses((status = 200, description = "The catalog", body = super::openapi::shapes::Catalog)))]
async fn catalog_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath) -> Result<Json<Value>, ApiError> {
    let (scope, snapshot) = load(&state, &caller, path).await?;
    Ok(Json(functions::catalog(&scope, &snapshot).await?))
}

/// Answers whether the caller may do one thing: run `transitionKey` now, call
/// `functionKey`, read the instance (`queryRoles=true`) or acknowledge a
/// long-poll (`ack=true`). Exactly one must be asked.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/authorize", operation_id = "authorizeFunction", tag = "functions",
    params(super::openapi::params::InstancePath, super::openapi::params::AuthorizeQuery),
    responses(
        (status = 200, description = "Allowed", body = super::openapi::shapes::Authorization),
        (status = 403, description = "Not allowed", body = super::openapi::shapes::Authorization),
    ))]
async fn authorize_fn(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: InstancePath,
    params: Params,
) -> Result<Response, ApiError> {
    let transition = params.get("transitionKey").map(str::trim).filter(|t| !t.is_empty());
    let function = params.get("functionKey").map(str::trim).filter(|t| !t.is_empty());
    let query_roles = params.flag("queryRoles", false)?;
    let ack = params.flag("ack", false)?;
    let asked = usize::from(transition.is_some()) + usize::from(function.is_some()) + usize::from(query_roles) + usize::from(ack);
    if asked != 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("authorize takes exactly one of transitionKey, functionKey, queryRoles=true, ack=true; {asked} given"),
        ));
    }
    let ApiPath((domain, workflow, instance)) = path;
    let (scope, snapshot) = find(&state, &domain, &workflow, &instance).await?;
    let roles = caller.roles();
    let readable = match access::check_read(&state, &roles, &scope, &snapshot).await {
        Ok(()) => true,
        Err(e) if e.code == ErrorCode::AuthRoleDenied => false,
        Err(e) => return Err(e),
    };
    let allowed = if let Some(key) = transition {
        let workflow = functions::pinned_workflow(&scope, &snapshot).await?;
        functions::available_transitions(&workflow, &snapshot.current_state, snapshot.status)
            .into_iter()
            .any(|(t, _)| t.key == key && roles.may_run(t, Some(&snapshot.current_state)))
    } else if let Some(name) = function {
        readable && functions::references_function(&scope, &snapshot, name).await?
    } else {
        readable
    };
    let status = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
    Ok((status, Json(json!({ "allowed": allowed }))).into_response())
}

/// Acknowledges a long-poll answer: nothing to record, 200 with no body.
#[utoipa::path(post, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/longpoll/ack", operation_id = "longPollAck", tag = "functions",
    params(super::openapi::params::InstancePath),
    responses((status = 200, description = "Acknowledged; empty body")))]
async fn ack_fn(State(state): State<AppState>, Extension(caller): Extension<Caller>, path: InstancePath) -> Result<Response, ApiError> {
    load(&state, &caller, path).await?;
    Ok(StatusCode::OK.into_response())
}
