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
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};

use super::AppState;
use super::auth::Caller;
use super::body::JsonBody;
use super::command::{self, Command, CommandInput, CommandRequest};
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use crate::engine::{RetryRequest, TransitionRequest};
use crate::error::{ApiError, ErrorCode};
use crate::query::history::{self, History};
use crate::query::{incidents, instance, scope};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions/{transition}",
            patch(run_transition),
        )
        .route("/api/v1/{domain}/workflows/{workflow}/instances/{instance}/transitions", get(list_history))
        .route("/api/v1/{domain}/workflows/{workflow}/instances/{instance}/retry", post(retry))
}

/// Longest transition key accepted before it is looked up.
const MAX_TRANSITION_CHARS: usize = 200;

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
