//! Discovery: what exists, for clients and operators finding their way.
//!
//! - `GET /api/v1/domains`: the domains the caller may read (every domain for
//!   an admin and an open development run; a domain-scoped key or identity
//!   only the domains it holds `read` on), with their registry status,
//!   database, server (`host:port`, never credentials) and published workflow count;
//! - `GET /api/v1/{domain}/workflows`: every published workflow, its versions,
//!   whether its schema exists yet and its instances counted by status;
//! - `GET /api/v1/{domain}/components?kind=`: every published component version;
//! - `GET /api/v1/{domain}/workflows/{workflow}?version=`: a summary of one
//!   version (latest by default): states, transitions, tasks, start transition.
//!
//! Lists are paged like the instance list (`{links, items}`, `page`, `pageSize`).
//! They are small (one row per domain, workflow or component version), so a
//! list is read whole and paged here. These are reads: not audited.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use vnext_init::db::Databases;
use sqlx::{AssertSqlSafe, PgPool};
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::model::{ComponentKind, Reference, TaskEntry, Transition};
use vnext_init::keys::Grant;

use super::AppState;
use super::auth::Caller;
use super::instances::Links;
use super::params::{ApiPath, Params, domain_name, flow_key};
use crate::error::{ApiError, ErrorCode, printable};
use crate::query::list::{MAX_PAGE, MAX_PAGE_SIZE, Pagination};
use crate::query::scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(domains)).routes(routes!(workflows)).routes(routes!(components)).routes(routes!(summary))
}

/// The instance status letters, in the order counts are answered.
const STATUS_LETTERS: [&str; 5] = ["A", "B", "C", "F", "P"];

/// A page of a discovery list: the same `{links, items}` as the instance list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing<T> {
    pub links: Links,
    pub items: Vec<T>,
}

/// `page` and `pageSize`, read before anything else so a bad value is a 400 whatever the path.
#[derive(Debug, Clone, Copy)]
struct Paging {
    page: u32,
    page_size: u32,
}

impl Paging {
    fn of(state: &AppState, params: &Params) -> Result<Paging, ApiError> {
        Ok(Paging {
            page: params.number("page", 1, 1, MAX_PAGE)?,
            page_size: params.number("pageSize", state.settings.default_page_size, 1, MAX_PAGE_SIZE)?,
        })
    }

    /// The page's slice of `all`, with links to the other pages under `base`.
    fn cut<T>(self, all: Vec<T>, base: &str, params: &Params) -> Listing<T> {
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let pagination = Pagination::new(self.page, self.page_size, total);
        let skip = (self.page as usize - 1).saturating_mul(self.page_size as usize);
        let items = all.into_iter().skip(skip).take(self.page_size as usize).collect();
        Listing { links: Links::new(base, params, self.page, self.page_size, pagination.total_pages), items }
    }
}

// ---------------------------------------------------------------- domains

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DomainItem {
    domain: String,
    /// The registry's status: `active` (ready), `provisioning` or `failed`.
    status: String,
    database: String,
    /// `host:port` of the PostgreSQL server; credentials are never shown.
    server: String,
    /// Workflows published (distinct keys); `null` while the domain is not active.
    flow_count: Option<i64>,
}

/// The domains the caller may read.
#[utoipa::path(get, path = "/api/v1/domains", operation_id = "listDomains", tag = "discovery",
    params(super::openapi::params::PageQuery),
    responses((status = 200, description = "A page of domains", body = Listing<DomainItem>)))]
async fn domains(State(state): State<AppState>, Extension(caller): Extension<Caller>, params: Params) -> Result<Json<Listing<DomainItem>>, ApiError> {
    let paging = Paging::of(&state, &params)?;
    let databases = state.engine.databases();
    let rows: Vec<(String, String, Option<String>, String)> =
        match sqlx::query_as("SELECT domain, database, server_url, status FROM vnext_control.domains ORDER BY domain")
            .fetch_all(databases.control())
            .await
        {
            Ok(rows) => rows,
            // No registry yet: nothing was ever provisioned.
            Err(e) if matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42P01" | "3F000")) => Vec::new(),
            Err(e) => return Err(ApiError::database(e)),
        };
    let visible: Vec<_> = rows.into_iter().filter(|(domain, ..)| caller.allows(domain, Grant::Read)).collect();
    let listing = paging.cut(visible, "/api/v1/domains", &params);
    // The page's counts are read together, each within a short wait: one
    // domain whose server is down must not hide or hold up the others; its
    // count is left out and the listing still answers.
    let items = futures::future::join_all(listing.items.into_iter().map(|(domain, database, server_url, status)| async move {
        let flow_count = match (status.as_str(), DomainName::new(&domain)) {
            ("active", Ok(name)) => match tokio::time::timeout(FLOW_COUNT_WAIT, flow_count(databases, &name)).await {
                Ok(Ok(count)) => Some(count),
                Ok(Err(e)) => {
                    tracing::warn!(domain = %name, error = %e, "flow count of a domain could not be read");
                    None
                }
                Err(_) => {
                    tracing::warn!(domain = %name, "flow count of a domain not read within {FLOW_COUNT_WAIT:?}");
                    None
                }
            },
            _ => None,
        };
        let url = server_url.as_deref().unwrap_or(&databases.config().database.url);
        DomainItem { domain, status, database, server: server_address(url), flow_count }
    }))
    .await;
    Ok(Json(Listing { links: listing.links, items }))
}

/// How long the domain listing waits for one domain's count.
const FLOW_COUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Workflows published in a domain (distinct keys).
async fn flow_count(databases: &Databases, name: &DomainName) -> Result<i64, ApiError> {
    let pool = scope::domain_pool(databases, name).await?;
    sqlx::query_scalar("SELECT count(DISTINCT key) FROM sys_flows.components").fetch_one(&pool).await.map_err(ApiError::database)
}

/// `host:port` of a connection URL; the user, password and options are left out.
fn server_address(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(options) => format!("{}:{}", options.get_host(), options.get_port()),
        Err(_) => "unknown".into(),
    }
}

// ---------------------------------------------------------------- workflows

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WorkflowItem {
    key: String,
    /// Every published version, lowest first.
    versions: Vec<String>,
    latest: String,
    /// The workflow's schema is created when its first instance starts.
    schema_exists: bool,
    /// Instances by status letter; every letter is present, zero included.
    #[schema(value_type = BTreeMap<String, i64>)]
    instances: BTreeMap<&'static str, i64>,
}

/// Every published workflow of the domain, with its instances counted by status.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows", operation_id = "listWorkflows", tag = "discovery",
    params(super::openapi::params::DomainPath, super::openapi::params::PageQuery),
    responses((status = 200, description = "A page of workflows", body = Listing<WorkflowItem>)))]
async fn workflows(State(state): State<AppState>, ApiPath(domain): ApiPath<String>, params: Params) -> Result<Json<Listing<WorkflowItem>>, ApiError> {
    let paging = Paging::of(&state, &params)?;
    let domain = domain_name(&domain)?;
    let pool = scope::domain_pool(state.engine.databases(), &domain).await?;
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, version) in published_versions(&pool, ComponentKind::Workflow).await? {
        by_key.entry(key).or_default().push(version);
    }
    let listing = paging.cut(by_key.into_iter().collect(), &format!("/api/v1/{domain}/workflows"), &params);
    let mut items = Vec::with_capacity(listing.items.len());
    for (key, versions) in listing.items {
        let (schema_exists, instances) = instance_counts(&pool, &key).await?;
        let latest = versions.last().cloned().unwrap_or_default();
        items.push(WorkflowItem { key, versions, latest, schema_exists, instances });
    }
    Ok(Json(Listing { links: listing.links, items }))
}

/// `(key, version)` of every stored version of `kind`, by key, then lowest version first
/// (the order `latest` selection uses).
async fn published_versions(pool: &PgPool, kind: ComponentKind) -> Result<Vec<(String, String)>, ApiError> {
    let sql = format!("SELECT key, version FROM {}.components ORDER BY key, major, minor, patch, version", kind.schema());
    sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await.map_err(ApiError::database)
}

/// Whether the workflow's schema exists, and its instances counted by status.
async fn instance_counts(pool: &PgPool, key: &str) -> Result<(bool, BTreeMap<&'static str, i64>), ApiError> {
    let mut counts: BTreeMap<&'static str, i64> = STATUS_LETTERS.iter().map(|s| (*s, 0)).collect();
    // A stored key that is not a valid flow key could never have had a schema.
    let Ok(flow) = FlowKey::new(key) else { return Ok((false, counts)) };
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(flow.ident())
        .fetch_one(pool)
        .await
        .map_err(ApiError::database)?;
    if !exists {
        return Ok((false, counts));
    }
    let sql = format!("SELECT status::text, count(*) FROM {}.instances GROUP BY status", flow.quoted());
    let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await.map_err(ApiError::database)?;
    for (status, n) in rows {
        if let Some(letter) = STATUS_LETTERS.iter().find(|l| **l == status) {
            counts.insert(letter, n);
        }
    }
    Ok((true, counts))
}

// ---------------------------------------------------------------- components

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ComponentItem {
    key: String,
    /// The component flow (`sys-flows`, `sys-tasks`, …), as in component files.
    #[schema(value_type = String)]
    flow: &'static str,
    version: String,
    published_at: DateTime<Utc>,
}

/// Every published component version of the domain.
#[utoipa::path(get, path = "/api/v1/{domain}/components", operation_id = "listComponents", tag = "discovery",
    params(super::openapi::params::DomainPath, ("kind" = Option<String>, Query, description = "Only this component flow (`sys-flows`, `sys-tasks`, …)"), super::openapi::params::PageQuery),
    responses((status = 200, description = "A page of component versions", body = Listing<ComponentItem>)))]
async fn components(State(state): State<AppState>, ApiPath(domain): ApiPath<String>, params: Params) -> Result<Json<Listing<ComponentItem>>, ApiError> {
    let paging = Paging::of(&state, &params)?;
    let kinds: Vec<ComponentKind> = match params.get("kind").map(str::trim).filter(|k| !k.is_empty()) {
        None => ComponentKind::PUBLISH_ORDER.to_vec(),
        Some(raw) => vec![ComponentKind::from_flow(raw).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "`kind` must be a component flow (sys-flows, sys-tasks, sys-schemas, sys-views, sys-functions, sys-extensions), found `{}`",
                    printable(raw)
                ),
            )
            .with_extra("parameter", Value::String("kind".into()))
        })?],
    };
    let domain = domain_name(&domain)?;
    let pool = scope::domain_pool(state.engine.databases(), &domain).await?;
    let mut all = Vec::new();
    for kind in kinds {
        let sql = format!("SELECT key, version, published_at FROM {}.components ORDER BY key, major, minor, patch, version", kind.schema());
        let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&pool).await.map_err(ApiError::database)?;
        all.extend(rows.into_iter().map(|(key, version, published_at)| ComponentItem { key, flow: kind.flow(), version, published_at }));
    }
    Ok(Json(paging.cut(all, &format!("/api/v1/{domain}/components"), &params)))
}

// ---------------------------------------------------------------- summary

/// A summary of one workflow version: states, transitions, tasks.
#[utoipa::path(get, path = "/api/v1/{domain}/workflows/{workflow}", operation_id = "workflowSummary", tag = "discovery",
    params(super::openapi::params::WorkflowPath, super::openapi::params::ComponentVersionQuery),
    responses((status = 200, description = "The summary", body = super::openapi::shapes::WorkflowSummary)))]
async fn summary(State(state): State<AppState>, ApiPath((domain, workflow)): ApiPath<(String, String)>, params: Params) -> Result<Json<Value>, ApiError> {
    let selector = params.version()?.map(|(raw, _)| raw.to_string());
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let mut conn = vnext_init::db::acquire(&scope.pool).await.map_err(ApiError::database)?;
    let def = state.engine.definitions().select(&mut conn, &scope.domain, &scope.flow, selector.as_deref()).await?;
    drop(conn);
    let versions: Vec<String> = published_versions(&scope.pool, ComponentKind::Workflow)
        .await?
        .into_iter()
        .filter(|(key, _)| key == scope.flow.as_str())
        .map(|(_, version)| version)
        .collect();
    let wf = &def.workflow;

    let mut transitions = Vec::new();
    let mut tasks: Vec<Value> = Vec::new();
    let mut note_tasks = |entries: &[TaskEntry]| {
        for entry in entries {
            let task = reference(&entry.task);
            if !tasks.contains(&task) {
                tasks.push(task);
            }
        }
    };
    note_tasks(&wf.start_transition.on_execution_tasks);
    for s in &wf.states {
        note_tasks(&s.on_entries);
        note_tasks(&s.on_exits);
        for t in &s.transitions {
            note_tasks(&t.on_execution_tasks);
            transitions.push(transition(t, Some(&s.key), "state"));
        }
    }
    for t in &wf.shared_transitions {
        note_tasks(&t.on_execution_tasks);
        let mut item = transition(t, None, "shared");
        item["availableIn"] = t.available_in.iter().map(|a| Value::String(a.state().to_string())).collect();
        transitions.push(item);
    }
    for (t, scope_name) in [(&wf.cancel, "cancel"), (&wf.exit, "exit"), (&wf.update_data, "updateData"), (&def.timeout, "timeout")] {
        if let Some(t) = t {
            note_tasks(&t.on_execution_tasks);
            transitions.push(transition(t, None, scope_name));
        }
    }
    let states: Vec<Value> = wf
        .states
        .iter()
        .map(|s| {
            let sub_flow = s.sub_flow.as_ref().map(|f| reference(&f.process));
            json!({ "key": s.key, "type": s.state_type.name(), "subFlow": sub_flow })
        })
        .collect();
    let latest = versions.last().cloned().unwrap_or_default();
    Ok(Json(json!({
        "domain": scope.domain.as_str(),
        "key": scope.flow.as_str(),
        "version": def.version,
        "latest": latest,
        "versions": versions,
        "type": wf.flow_type,
        "startTransition": transition(&wf.start_transition, None, "start"),
        "states": states,
        "transitions": transitions,
        "tasks": tasks,
    })))
}

fn transition(t: &Transition, from: Option<&str>, scope_name: &str) -> Value {
    json!({
        "key": t.key,
        "from": from.or(t.from.as_deref()),
        "target": t.target,
        "triggerType": t.trigger_type.name(),
        "scope": scope_name,
    })
}

/// `{key, domain, flow, version}` of an explicit reference, `{ref}` of a file reference.
fn reference(r: &Reference) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_leaves_credentials_out() {
        assert_eq!(server_address("postgres://user:secret@db.example:6543/control?sslmode=disable"), "db.example:6543");
        assert_eq!(server_address("postgres://127.0.0.1/x"), "127.0.0.1:5432");
        assert!(!server_address("postgres://u:pw@h:1/d").contains("pw"));
    }
}
