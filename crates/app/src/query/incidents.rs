//! Incidents of an instance: one row per failure that stopped or diverted it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::FlowScope;
use super::list::{Page, Pagination};
use crate::error::ApiError;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub id: Uuid,
    pub state: Option<String>,
    #[sqlx(rename = "transition_key")]
    pub transition: Option<String>,
    #[sqlx(rename = "task_key")]
    pub task: Option<String>,
    pub error_code: String,
    pub message: String,
    pub status_code: Option<i32>,
    pub boundary_action: Option<String>,
    pub retry_count: i32,
    pub resolved: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A page of an instance's incidents, newest first; `active_only` hides resolved ones.
///
/// # Errors
/// 503 when the database is unreachable.
pub async fn incidents(
    scope: &FlowScope,
    instance_id: Uuid,
    active_only: bool,
    page: u32,
    page_size: u32,
) -> Result<Page<Incident>, ApiError> {
    let table = scope.table("incidents");
    let filter = "instance_id = $1 AND (NOT $2 OR NOT resolved)";
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE {filter}")))
        .bind(instance_id)
        .bind(active_only)
        .fetch_one(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    let sql = format!(
        "SELECT id, state, transition_key, task_key, error_code, message, status_code, boundary_action,
                retry_count, resolved, resolved_at, created_at
           FROM {table} WHERE {filter} ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    );
    let rows: Vec<Incident> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(instance_id)
        .bind(active_only)
        .bind(i64::from(page_size))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(page_size))
        .fetch_all(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    Ok(Page { data: rows, pagination: Pagination::new(page, page_size, total) })
}
