//! Instances: start, read one (ETag / `If-None-Match` → 304), list.
//!
//! - `POST /api/v1/{domain}/workflows/{workflow}/instances/start?sync=&version=`
//! - `GET  /api/v1/{domain}/workflows/{workflow}/instances/{instance}`
//! - `GET  /api/v1/{domain}/workflows/{workflow}/instances?filter=&page=&pageSize=&sort=`

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use vnext_core::version::VersionSelector;

use super::auth::Caller;
use super::body::JsonBody;
use super::command::{self, Command, CommandInput, CommandRequest};
use super::envelope::InstanceEnvelope;
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use super::{AppState, etag_header, not_modified};
use crate::engine::StartRequest;
use crate::error::{ApiError, ErrorCode};
use crate::query::list::{self, ListRequest, MAX_PAGE, MAX_PAGE_SIZE, Page};
use crate::query::{filter, instance, scope, sort};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/{domain}/workflows/{workflow}/instances/start", post(start))
        .route("/api/v1/{domain}/workflows/{workflow}/instances", get(list_instances))
        .route("/api/v1/{domain}/workflows/{workflow}/instances/{instance}", get(get_instance))
}

async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow)): ApiPath<(String, String)>,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let req = CommandRequest { domain: &domain, workflow: &workflow, params: &params, headers: &headers, body: &body };
    let roles = caller.roles();
    command::run(&state, "start", req, |_| {
        let version = match params.get("version").map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) if VersionSelector::parse(v).is_some() => Some(v.to_string()),
            Some(v) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("`version` must be a version (1.2.3), a major (1), a major.minor (1.2) or latest, found `{}`", v.escape_debug()),
                ));
            }
        };
        Ok(move |c: CommandInput| {
            Command::Start(StartRequest {
                domain: c.domain,
                flow: c.flow,
                version,
                key: c.body.key,
                tags: c.body.tags,
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

async fn get_instance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&instance)?).await?;
    super::access::check_read(&state, &caller.roles(), &scope, &snapshot).await?;
    let etag = etag_header(&snapshot.etag);
    if not_modified(&headers, &snapshot.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok(([(header::ETAG, etag)], Json(InstanceEnvelope::from(snapshot))).into_response())
}

async fn list_instances(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Json<Page<InstanceEnvelope>>, ApiError> {
    // Parameters first: a bad filter is a 400 whatever the domain.
    let mut request = ListRequest {
        filter: filter::parse_filters(params.all("filter"))?,
        sort: sort::parse_sort(params.get("sort").or_else(|| params.get("orderBy")))?,
        page: params.number("page", 1, 1, MAX_PAGE)?,
        page_size: params.number("pageSize", state.settings.default_page_size, 1, MAX_PAGE_SIZE)?,
        readable: None,
    };
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    request.readable = super::access::readable_states(&state, &caller.roles(), &scope).await?;
    let page = list::list(&scope, &request).await?;
    Ok(Json(Page { data: page.data.into_iter().map(InstanceEnvelope::from).collect(), pagination: page.pagination }))
}
