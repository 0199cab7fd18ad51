//! Instances: start, read one (ETag / `If-None-Match` → 304), list.
//!
//! - `POST /api/v1/{domain}/workflows/{workflow}/instances/start?sync=&version=`
//! - `GET  /api/v1/{domain}/workflows/{workflow}/instances/{instance}`
//! - `GET  /api/v1/{domain}/workflows/{workflow}/instances?filter=&page=&pageSize=&sort=`
//!   answered `{links: {self, first, next, prev}, items}` as the engine does.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::JsonBody;
use super::command::{self, Command, CommandInput, CommandRequest};
use super::envelope::{InstanceEnvelope, entity_etag};
use super::params::{ApiPath, Params, domain_name, flow_key, instance_ref};
use super::{AppState, ENTITY_ETAG, etag_header, not_modified};
use crate::engine::{ReadKind, StartRequest};
use crate::error::ApiError;
use crate::query::list::{self, ListRequest, MAX_PAGE, MAX_PAGE_SIZE};
use crate::query::{filter, instance, scope, sort};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(list_instances)).routes(routes!(get_instance))
}

/// Starts an instance of the workflow.
#[utoipa::path(post, path = "/api/v1/{domain}/workflows/{workflow}/instances/start", operation_id = "startInstance", tag = "instances",
    params(super::openapi::params::WorkflowPath, super::openapi::params::StartQuery, ("x-vnext-payload-mode" = Option<super::openapi::params::PayloadMode>, Header, description = "How the body is read; absent: by its shape")),
    request_body(content = super::openapi::shapes::CommandBody, description = "`{key?, tags?, attributes?}`, or any object taken whole as `attributes`", content_type = "application/json"),
    responses(
        (status = 200, description = "Ran to a rest point (busy: `Location` and `Retry-After` say where and when to poll)", body = super::envelope::CommandAnswer,
            headers(("ETag" = String), ("X-Entity-ETag" = String), ("Location" = String, description = "Only while busy"))),
        (status = 202, description = "Accepted to run later: `{id, key?, status}`", body = super::envelope::CommandAnswer, headers(("Location" = String))),
    ))]
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
        let version = params.version()?.map(|(raw, _)| raw.to_string());
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

/// One instance; `If-None-Match` with its current ETag → 304.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}", operation_id = "getInstance", tag = "instances",
    params(super::openapi::params::InstancePath, ("If-None-Match" = Option<String>, Header, description = "An ETag the client holds")),
    responses(
        (status = 200, description = "The instance", body = super::envelope::InstanceEnvelope, headers(("ETag" = String, description = "The instance ETag, quoted"), ("X-Entity-ETag" = String, description = "The data ETag, quoted"))),
        (status = 304, description = "Not modified", headers(("ETag" = String, description = "The instance ETag, quoted"), ("X-Entity-ETag" = String, description = "The data ETag, quoted"))),
    ))]
async fn get_instance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, instance)): ApiPath<(String, String, String)>,
    params: Params,
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
    let workflow = crate::query::functions::pinned_workflow(&scope, &snapshot).await?;
    let extensions = state.engine.extensions_for(&scope.domain, &workflow.extensions, &requested(&params), ReadKind::Single).await?;
    let slots = state.engine.run_extensions(&scope.domain, &extensions, &snapshot).await;
    let mut envelope = InstanceEnvelope::from(snapshot);
    envelope.extensions = slots;
    Ok(([(header::ETAG, etag), (ENTITY_ETAG, entity)], Json(envelope)).into_response())
}

/// The names `?extensions=a,b` asks for (repeated parameters add up).
fn requested(params: &Params) -> Vec<String> {
    params.all("extensions").flat_map(|v| v.split(',')).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// A page of the workflow's instances.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}/instances", operation_id = "listInstances", tag = "instances",
    params(super::openapi::params::WorkflowPath, super::openapi::params::ListQuery),
    responses((status = 200, description = "Paging links and the page's items", body = ListAnswer)))]
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
    let extensions = match page.data.first() {
        Some(first) => {
            let workflow = crate::query::functions::pinned_workflow(&scope, first).await?;
            state.engine.extensions_for(&scope.domain, &workflow.extensions, &requested(&params), ReadKind::List).await?
        }
        None => Vec::new(),
    };
    let mut items = Vec::with_capacity(page.data.len());
    for snapshot in page.data {
        let slots = state.engine.run_extensions(&scope.domain, &extensions, &snapshot).await;
        let mut item = InstanceEnvelope::list_item(snapshot);
        item.extensions = slots;
        items.push(item);
    }
    Ok(Json(ListAnswer { links, items }))
}

/// The list answer, as the engine's: paging links and the page's items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListAnswer {
    pub links: Links,
    pub items: Vec<InstanceEnvelope>,
}

/// Root-relative links to pages of the same query; `next`/`prev` are `""`
/// when there is no such page.
#[derive(Debug, Serialize, ToSchema)]
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
