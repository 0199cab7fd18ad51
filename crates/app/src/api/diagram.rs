//! Diagrams of a workflow version and of an instance (see [`crate::diagram`]).
//!
//! - `GET /api/v1/{domain}/workflows/{workflow}/diagram?version=&format=svg|mermaid`;
//! - `GET /api/v1/{domain}/workflows/{workflow}/instances/{instance}/diagram?format=`:
//!   the version the instance is pinned to, its current state and the path it took.
//!
//! `format` defaults to `svg` (`image/svg+xml`); `mermaid` answers `text/plain`.
//! Reads: authorized like the discovery endpoints, not audited.

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::access;
use super::auth::Caller;
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use crate::diagram::{Diagram, START, Trail, mermaid, svg};
use crate::error::{ApiError, ErrorCode};
use crate::query::{functions, history, instance, scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(workflow_diagram)).routes(routes!(instance_diagram))
}

#[derive(Clone, Copy)]
enum Format {
    Svg,
    Mermaid,
}

impl Format {
    fn of(params: &Params) -> Result<Format, ApiError> {
        match params.get("format").map(str::trim) {
            None | Some("" | "svg") => Ok(Format::Svg),
            Some("mermaid") => Ok(Format::Mermaid),
            Some(other) => Err(ApiError::new(ErrorCode::InvalidParameter, format!("format must be svg or mermaid, not {:?}", crate::error::printable(other)))),
        }
    }

    fn answer(self, diagram: &Diagram) -> Response {
        match self {
            Format::Svg => ([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg::render(diagram)).into_response(),
            Format::Mermaid => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], mermaid::render(diagram)).into_response(),
        }
    }
}

/// The diagram of a workflow version (latest by default).
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/diagram", operation_id = "workflowDiagram", tag = "discovery",
    params(super::openapi::params::WorkflowPath, super::openapi::params::ComponentVersionQuery,
        ("format" = Option<String>, Query, description = "`svg` (default) or `mermaid`")),
    responses((status = 200, description = "The diagram", content((String = "image/svg+xml"), (String = "text/plain")))))]
async fn workflow_diagram(State(state): State<AppState>, ApiPath((domain, workflow)): ApiPath<(String, String)>, params: Params) -> Result<Response, ApiError> {
    let format = Format::of(&params)?;
    let selector = params.version()?.map(|(raw, _)| raw.to_string());
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let mut conn = vnext_init::db::acquire(&scope.pool).await.map_err(ApiError::database)?;
    let def = state.engine.definitions().select(&mut conn, &scope.domain, &scope.flow, selector.as_deref()).await?;
    drop(conn);
    Ok(format.answer(&Diagram::of(&def.workflow)))
}

/// The diagram of an instance: its version, current state and path taken.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/diagram", operation_id = "instanceDiagram", tag = "discovery",
    params(super::openapi::params::InstancePath, ("format" = Option<String>, Query, description = "`svg` (default) or `mermaid`")),
    responses((status = 200, description = "The diagram, current state and path marked", content((String = "image/svg+xml"), (String = "text/plain")))))]
async fn instance_diagram(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, id)): ApiPath<(String, String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let format = Format::of(&params)?;
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&id)?).await?;
    access::check_read(&state, &caller.roles(), &scope, &snapshot).await?;
    let definition = functions::pinned_workflow(&scope, &snapshot).await?;
    let history = history::history(&scope, snapshot.id).await?;
    let steps = history
        .transitions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // The first row is the start transition, taken from the start marker.
            let from = if i == 0 && t.from_state.is_empty() { START.to_string() } else { t.from_state.clone() };
            (t.transition_id.clone(), from, t.to_state.clone())
        })
        .collect();
    let mut diagram = Diagram::of(&definition);
    diagram.mark(&Trail { current: snapshot.current_state.clone(), steps });
    Ok(format.answer(&diagram))
}
