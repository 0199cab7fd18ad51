//! Instances: start, read one (ETag / `If-None-Match` → 304), list.
//!
//! - `POST /api/v1/{domain}/workflows/{workflow}/instances/start?sync=&version=`
//! - `GET  /api/v1/{domain}/workflows/{workflow}/instances/{instance}`
//! - `GET  /api/v1/{domain}/workflows/{workflow}/instances?filter=&page=&pageSize=&sort=`
//!   answered `{links: {self, first, next, prev}, items}` as the engine does.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;
use vnext_core::version::VersionSelector;

use super::auth::Caller;
use super::body::JsonBody;
use super::command::{self, Command, CommandInput, CommandRequest};
use super::envelope::{InstanceEnvelope, entity_etag};
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use super::{AppState, ENTITY_ETAG, etag_header, not_modified};
use crate::engine::StartRequest;
use crate::error::{ApiError, ErrorCode};
use crate::query::list::{self, ListRequest, MAX_PAGE, MAX_PAGE_SIZE};
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
    let req = CommandRequest { domain: &domain, workflow: &workflow, params: &params, headers: &headers, body: &body, retried: None };
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
    let entity = etag_header(&entity_etag(&snapshot));
    if not_modified(&headers, &snapshot.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag), (ENTITY_ETAG, entity)]).into_response());
    }
    Ok(([(header::ETAG, etag), (ENTITY_ETAG, entity)], Json(InstanceEnvelope::from(snapshot))).into_response())
}

async fn list_instances(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Json<ListAnswer>, ApiError> {
    // Parameters first: a bad filter is a 400 whatever the domain.
    let mut request = ListRequest {
        filter: filter::parse_filters(params.all("filter"))?,
        // As the engine: `orderBy` wins over `sort`.
        sort: sort::parse_sort(params.get("orderBy").or_else(|| params.get("sort")))?,
        page: params.number("page", 1, 1, MAX_PAGE)?,
        page_size: params.number("pageSize", state.settings.default_page_size, 1, MAX_PAGE_SIZE)?,
        readable: None,
    };
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    request.readable = super::access::readable_states(&state, &caller.roles(), &scope).await?;
    let page = list::list(&scope, &request).await?;
    let base = format!("/api/v1/{}/workflows/{}/instances", scope.domain, scope.flow);
    let links = Links::new(&base, &params, request.page, request.page_size, page.pagination.total_pages);
    Ok(Json(ListAnswer { links, items: page.data.into_iter().map(InstanceEnvelope::list_item).collect() }))
}

/// The list answer, as the engine's: paging links and the page's items.
#[derive(Debug, Serialize)]
pub struct ListAnswer {
    pub links: Links,
    pub items: Vec<InstanceEnvelope>,
}

/// Root-relative links to pages of the same query; `next`/`prev` are `""`
/// when there is no such page.
#[derive(Debug, Serialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub first: String,
    pub next: String,
    pub prev: String,
}

impl Links {
    /// Links of page `page` of `total_pages` under `base`, keeping the request's other parameters.
    pub(crate) fn new(base: &str, params: &Params, page: u32, page_size: u32, total_pages: i64) -> Links {
        let link = |n: u32| page_link(base, params, n, page_size);
        Links {
            this: link(page),
            first: link(1),
            next: if i64::from(page) < total_pages && page < MAX_PAGE { link(page + 1) } else { String::new() },
            prev: if page > 1 { link(page - 1) } else { String::new() },
        }
    }
}

/// `base?page=N&pageSize=M&<the request's other parameters>`.
fn page_link(base: &str, params: &Params, page: u32, page_size: u32) -> String {
    use crate::query::functions::QUERY_VALUE;
    use percent_encoding::utf8_percent_encode;
    let mut query = format!("page={page}&pageSize={page_size}");
    for (name, value) in params.0.iter().filter(|(n, _)| n != "page" && n != "pageSize") {
        query.push('&');
        query.extend(utf8_percent_encode(name, QUERY_VALUE));
        query.push('=');
        query.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    format!("{base}?{query}")
}
