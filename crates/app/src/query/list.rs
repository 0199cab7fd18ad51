//! Instance lists: filtered, sorted, paged.

use serde::Serialize;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, AssertSqlSafe};

use super::FlowScope;
use super::filter::{self, Bind, Filter, SqlParts};
use super::sort::{self, SortKey};
use crate::store::instance_row::{COLUMNS, InstanceRow, InstanceSnapshot};
use crate::error::ApiError;

/// Pages are 1-based; vNext accepts pages up to 1000 and at most 100 per page.
pub const MAX_PAGE: u32 = 1000;
pub const MAX_PAGE_SIZE: u32 = 100;

/// What to list.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub filter: Filter,
    pub sort: Vec<SortKey>,
    pub page: u32,
    pub page_size: u32,
    /// Only instances in these `(flow version, state)` pairs (the caller's
    /// `queryRoles`); `None`: no such limit.
    pub readable: Option<Vec<(String, String)>>,
}

/// `pagination` of a list answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub total_count: i64,
    pub total_pages: i64,
}

impl Pagination {
    pub fn new(page: u32, page_size: u32, total_count: i64) -> Self {
        let size = i64::from(page_size.max(1));
        Pagination { page, page_size, total_count, total_pages: (total_count + size - 1) / size }
    }
}

/// One page of items.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

/// Binds values in placeholder order.
///
/// # Errors
/// Only if a value cannot be encoded, which would be a bug (500).
pub fn arguments(binds: &[Bind]) -> Result<PgArguments, ApiError> {
    let mut args = PgArguments::default();
    for b in binds {
        let added = match b {
            Bind::Text(s) => args.add(s.clone()),
            Bind::TextArray(v) => args.add(v.clone()),
            Bind::Json(v) => args.add(sqlx::types::Json(v.clone())),
            Bind::Bool(x) => args.add(*x),
            Bind::Time(t) => args.add(*t),
            Bind::Uuid(u) => args.add(*u),
        };
        added.map_err(|e| ApiError::internal(format!("cannot bind a filter value: {e}")))?;
    }
    Ok(args)
}

/// Lists instances of a workflow. A workflow that never started an instance has
/// no schema yet and lists empty.
///
/// # Errors
/// 503 when the database is unreachable; bad filters were refused at parse time.
pub async fn list(scope: &FlowScope, request: &ListRequest) -> Result<Page<InstanceSnapshot>, ApiError> {
    if !scope.has_schema {
        return Ok(Page { data: Vec::new(), pagination: Pagination::new(request.page, request.page_size, 0) });
    }
    let mut parts = SqlParts::default();
    let mut where_sql = filter::to_sql(&request.filter, &mut parts);
    if let Some(pairs) = &request.readable {
        let versions = parts.push(Bind::TextArray(pairs.iter().map(|p| p.0.clone()).collect()));
        let states = parts.push(Bind::TextArray(pairs.iter().map(|p| p.1.clone()).collect()));
        where_sql = format!("({where_sql}) AND (flow_version, current_state) IN (SELECT * FROM unnest({versions}::text[], {states}::text[]))");
    }
    let count_binds = parts.binds.clone();
    let order_sql = sort::to_sql(&request.sort, &mut parts);
    let limit = parts.push(Bind::Text(request.page_size.to_string()));
    let offset = parts.push(Bind::Text((u64::from(request.page.saturating_sub(1)) * u64::from(request.page_size)).to_string()));
    let table = scope.table("instances");

    let count_sql = format!("SELECT count(*) FROM {table} WHERE {where_sql}");
    let total: i64 = sqlx::query_scalar_with(AssertSqlSafe(count_sql), arguments(&count_binds)?)
        .fetch_one(&scope.pool)
        .await
        .map_err(ApiError::database)?;

    let page_sql = format!(
        "SELECT {COLUMNS} FROM {table} WHERE {where_sql} ORDER BY {order_sql} LIMIT {limit}::bigint OFFSET {offset}::bigint"
    );
    let rows: Vec<InstanceRow> = sqlx::query_as_with(AssertSqlSafe(page_sql), arguments(&parts.binds)?)
        .fetch_all(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    Ok(Page {
        data: rows.into_iter().map(|r| r.into_snapshot(&scope.domain, &scope.flow)).collect(),
        pagination: Pagination::new(request.page, request.page_size, total),
    })
}
