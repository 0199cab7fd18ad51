//! Incidents of an instance, newest first.
//!
//! - `GET …/instances/{instance}/incidents?page=&pageSize=` (every incident)
//! - `GET …/instances/{instance}/incidents/active` (unresolved only)

use axum::extract::State;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;


use super::AppState;
use super::auth::Caller;
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use crate::error::ApiError;
use crate::query::incidents::{self, Incident};
use crate::query::list::{MAX_PAGE, MAX_PAGE_SIZE, Page};
use crate::query::{instance, scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(all)).routes(routes!(active))
}

/// Every incident of the instance, newest first.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/incidents", operation_id = "listIncidents", tag = "incidents",
    params(super::openapi::params::InstancePath, super::openapi::params::PageQuery),
    responses((status = 200, description = "A page of incidents", body = Page<Incident>)))]
async fn all(state: State<AppState>, caller: Extension<Caller>, path: ApiPath<(String, String, String)>, params: Params) -> Result<Json<Page<Incident>>, ApiError> {
    list(state, caller, path, params, false).await
}

/// The unresolved incidents of the instance, newest first.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/incidents/active", operation_id = "listActiveIncidents", tag = "incidents",
    params(super::openapi::params::InstancePath, super::openapi::params::PageQuery),
    responses((status = 200, description = "A page of incidents", body = Page<Incident>)))]
async fn active(state: State<AppState>, caller: Extension<Caller>, path: ApiPath<(String, String, String)>, params: Params) -> Result<Json<Page<Incident>>, ApiError> {
    list(state, caller, path, params, true).await
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
    params: Params,
    active_only: bool,
) -> Result<Json<Page<Incident>>, ApiError> {
    let page = params.number("page", 1, 1, MAX_PAGE)?;
    let page_size = params.number("pageSize", state.settings.default_page_size, 1, MAX_PAGE_SIZE)?;
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&instance)?).await?;
    super::access::check_read(&state, &caller.roles(), &scope, &snapshot).await?;
    Ok(Json(incidents::incidents(&scope, snapshot.id, active_only, page, page_size).await?))
}
