//! Transition history of an instance, each transition with its task runs.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::FlowScope;
use crate::error::ApiError;

/// A task execution (one attempt).
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TaskRun {
    pub id: Uuid,
    #[serde(skip)]
    pub transition_id: Option<Uuid>,
    pub task_key: String,
    pub task_version: String,
    pub task_type: String,
    /// `execution`, `exit` or `entry`.
    pub phase: String,
    pub order: i32,
    pub attempt: i32,
    /// `succeeded` or `failed`.
    pub status: String,
    pub request: Option<Value>,
    pub response: Option<Value>,
    pub error: Option<Value>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
}

/// One transition taken by an instance.
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TransitionRecord {
    pub id: Uuid,
    pub seq: i64,
    #[sqlx(rename = "transition_key")]
    pub transition: String,
    #[sqlx(rename = "from_state")]
    pub from: Option<String>,
    #[sqlx(rename = "to_state")]
    pub to: String,
    pub trigger_type: i16,
    /// `api`, `auto`, `timer`, `timeout`, `async`, `retry`.
    pub origin: String,
    pub body: Option<Value>,
    pub actor: Option<String>,
    pub data_version: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
    #[sqlx(skip)]
    pub tasks: Vec<TaskRun>,
}

/// The history answer: transitions oldest first; task runs not tied to a
/// transition (e.g. retried outside one) are listed apart.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub data: Vec<TransitionRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_task_runs: Vec<TaskRun>,
}

/// Loads the whole history of an instance.
///
/// # Errors
/// 503 when the database is unreachable.
pub async fn history(scope: &FlowScope, instance_id: Uuid) -> Result<History, ApiError> {
    let transitions_sql = format!(
        "SELECT id, seq, transition_key, from_state, to_state, trigger_type, origin, body, actor, data_version,
                started_at, finished_at, duration_ms
           FROM {} WHERE instance_id = $1 ORDER BY seq",
        scope.table("transitions")
    );
    let mut records: Vec<TransitionRecord> = sqlx::query_as(AssertSqlSafe(transitions_sql))
        .bind(instance_id)
        .fetch_all(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    let runs_sql = format!(
        "SELECT id, transition_id, task_key, task_version, task_type, phase, task_order AS \"order\", attempt, status,
                request, response, error, started_at, finished_at, duration_ms
           FROM {} WHERE instance_id = $1 ORDER BY started_at, task_order, id",
        scope.table("task_runs")
    );
    let runs: Vec<TaskRun> = sqlx::query_as(AssertSqlSafe(runs_sql))
        .bind(instance_id)
        .fetch_all(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    let mut other = Vec::new();
    for run in runs {
        match run.transition_id.and_then(|t| records.iter_mut().find(|r| r.id == t)) {
            Some(record) => record.tasks.push(run),
            None => other.push(run),
        }
    }
    Ok(History { data: records, other_task_runs: other })
}
