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
use axum::{Json, Router};

use super::AppState;
use super::body::JsonBody;
use super::command::{command_body, detached, outcome_response};
use super::envelope::href;
use super::instances::record;
use super::params::{ApiPath, Params, domain_name, flow_key, headers_map, instance_ref};
use crate::engine::{RetryRequest, TransitionRequest};
use crate::error::{ApiError, ErrorCode};
use crate::query::history::{self, History};
use crate::query::{instance, scope};

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
    ApiPath((domain, workflow, instance, transition)): ApiPath<(String, String, String, String)>,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let result = async {
        let domain = domain_name(&domain)?;
        let flow = flow_key(&workflow)?;
        let instance = instance_ref(&instance)?;
        if transition.is_empty() || transition.contains('\0') || transition.chars().count() > MAX_TRANSITION_CHARS {
            return Err(ApiError::new(
                ErrorCode::TransitionNotFound,
                format!("workflow `{flow}` defines no transition `{}`", transition.escape_debug()),
            ));
        }
        let sync = params.flag("sync", false)?;
        let command = command_body(&body, &headers)?;
        let request = TransitionRequest {
            domain: domain.clone(),
            flow: flow.clone(),
            instance,
            transition,
            key: command.key,
            attributes: command.attributes,
            headers: headers_map(&headers),
            query: params.to_map(),
            sync,
        };
        let engine = state.engine.clone();
        let outcome = detached(async move { engine.transition(request).await }).await?;
        Ok(outcome_response(outcome, |id| href(domain.as_str(), flow.as_str(), id)))
    }
    .await;
    record(&state, "transition", result)
}

async fn retry(
    State(state): State<AppState>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let result = async {
        let domain = domain_name(&domain)?;
        let flow = flow_key(&workflow)?;
        let instance = instance_ref(&instance)?;
        let sync = params.flag("sync", false)?;
        // vNext accepts a body on retry; it is checked for shape but the faulted
        // transition is re-run with the body it had.
        command_body(&body, &headers)?;
        let request = RetryRequest { domain: domain.clone(), flow: flow.clone(), instance, sync };
        let engine = state.engine.clone();
        let outcome = detached(async move { engine.retry(request).await }).await?;
        Ok(outcome_response(outcome, |id| href(domain.as_str(), flow.as_str(), id)))
    }
    .await;
    record(&state, "retry", result)
}

async fn list_history(
    State(state): State<AppState>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
) -> Result<Json<History>, ApiError> {
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&instance)?).await?;
    Ok(Json(history::history(&scope, snapshot.id).await?))
}
