//! Transitions: run one, retry a faulted instance, read the history.
//!
//! - `PATCH /api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions/{transition}?sync=`
//! - `POST  /api/v1/{domain}/workflows/{workflow}/instances/{instance}/retry?sync=`
//! - `GET   /api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions`
//!
//! A transition that exists in the workflow but is not offered in the current
//! state is a 409 `transition.not-available` (the request is well-formed; the
//! instance's state conflicts with it), listing what is available. A transition
//! the workflow never defines is a 404 `transition.not-found`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;


use super::AppState;
use super::auth::Caller;
use super::body::JsonBody;
use super::command::{self, Command, CommandInput, CommandRequest};
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use crate::engine::{RetryRequest, TransitionRequest};
use crate::error::{ApiError, ErrorCode};
use crate::query::history::{self, History};
use crate::query::{incidents, instance, scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run_transition)).routes(routes!(list_history)).routes(routes!(retry))
}

/// Longest transition key accepted before it is looked up.
const MAX_TRANSITION_CHARS: usize = 200;

/// Runs a transition of the instance.
#[utoipa::path(patch, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions/{transition}", operation_id = "runTransition", tag = "transitions",
    params(super::openapi::params::InstancePath, ("transition" = String, Path, description = "The transition's key"), super::openapi::params::SyncQuery, ("x-vnext-payload-mode" = Option<super::openapi::params::PayloadMode>, Header, description = "How the body is read; absent: by its shape")),
    request_body(content = super::openapi::shapes::CommandBody, description = "`{key?, tags?, attributes?}`, or any object taken whole as `attributes`", content_type = "application/json"),
    responses(
        (status = 200, description = "Ran to a rest point (busy: `Location` and `Retry-After` say where and when to poll)", body = super::envelope::CommandAnswer,
            headers(("ETag" = String), ("X-Entity-ETag" = String), ("Location" = String, description = "Only while busy"))),
        (status = 202, description = "Accepted to run later: `{id, key?, status}`", body = super::envelope::CommandAnswer, headers(("Location" = String))),
    ))]
async fn run_transition(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, instance, transition)): ApiPath<(String, String, String, String)>,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let req = CommandRequest { domain: &domain, workflow: &workflow, params: &params, headers: &headers, body: &body, retried: None };
    let roles = caller.roles();
    command::run(&state, "transition", req, |flow| {
        let instance = instance_ref(&instance)?;
        if transition.is_empty() || transition.contains('\0') || transition.chars().count() > MAX_TRANSITION_CHARS {
            return Err(ApiError::new(
                ErrorCode::TransitionNotFound,
                format!("workflow `{flow}` defines no transition `{}`", transition.escape_debug()),
            ));
        }
        Ok(move |c: CommandInput| {
            Command::Transition(TransitionRequest {
                domain: c.domain,
                flow: c.flow,
                instance,
                transition,
                key: c.body.key,
                attributes: c.body.attributes,
                headers: c.headers,
                query: c.query,
                sync: c.sync,
                roles,
            })
        })
    })
    .await
}

/// Re-runs the faulted transition of a faulted instance.
#[utoipa::path(post, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/retry", operation_id = "retryInstance", tag = "transitions",
    params(super::openapi::params::InstancePath, super::openapi::params::SyncQuery, ("x-vnext-payload-mode" = Option<super::openapi::params::PayloadMode>, Header, description = "How the body is read; absent: by its shape")),
    request_body(content = super::openapi::shapes::CommandBody, description = "Checked for shape; the faulted transition re-runs with the body it had", content_type = "application/json"),
    responses((status = 200, description = "Retried (ran or queued)", body = super::openapi::shapes::RetryAnswer)))]
async fn retry(
    State(state): State<AppState>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let retried = retried_transition(&state, &domain, &workflow, &instance).await?;
    let req = CommandRequest { domain: &domain, workflow: &workflow, params: &params, headers: &headers, body: &body, retried: Some(&retried) };
    command::run(&state, "retry", req, |_| {
        let instance = instance_ref(&instance)?;
        // vNext accepts a body on retry; it is checked for shape but the faulted
        // transition is re-run with the body it had.
        Ok(move |c: CommandInput| Command::Retry(RetryRequest { domain: c.domain, flow: c.flow, instance, sync: c.sync }))
    })
    .await
}

/// The key of the transition a retry re-runs: the one of the instance's open
/// incident. An instance without one is answered by the engine (not faulted).
async fn retried_transition(state: &AppState, domain: &str, workflow: &str, instance: &str) -> Result<String, ApiError> {
    let scope = scope::resolve(state.engine.databases(), domain_name(domain)?, flow_key(workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(instance)?).await?;
    let open = incidents::incidents(&scope, snapshot.id, true, 1, 1).await?;
    Ok(open.data.into_iter().next().and_then(|i| i.transition).unwrap_or_default())
}

/// The instance's history: every transition with its task runs.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions", operation_id = "listTransitions", tag = "transitions",
    params(super::openapi::params::InstancePath),
    responses((status = 200, description = "The history, oldest first", body = History)))]
async fn list_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
) -> Result<Json<History>, ApiError> {
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&instance)?).await?;
    super::access::check_read(&state, &caller.roles(), &scope, &snapshot).await?;
    Ok(Json(history::history(&scope, snapshot.id).await?))
}
