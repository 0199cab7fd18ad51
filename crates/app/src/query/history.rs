//! Transition history of an instance, each transition with its task runs.

use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::FlowScope;
use crate::error::ApiError;
use crate::store::history::{TASK_RUN_COLUMNS, TRANSITION_COLUMNS, TaskRunRow, TransitionRow};

/// One transition taken by an instance, with the task attempts it ran.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct TransitionRecord {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub row: TransitionRow,
    #[sqlx(skip)]
    pub tasks: Vec<TaskRunRow>,
}

/// The history answer: transitions oldest first; task runs not tied to a
/// transition (e.g. retried outside one) are listed apart.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub data: Vec<TransitionRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_task_runs: Vec<TaskRunRow>,
}

/// Loads the whole history of an instance.
///
/// # Errors
/// 503 when the database is unreachable.
pub async fn history(scope: &FlowScope, instance_id: Uuid) -> Result<History, ApiError> {
    let transitions_sql =
        format!("SELECT {TRANSITION_COLUMNS} FROM {} WHERE instance_id = $1 ORDER BY seq", scope.table("transitions"));
    let mut records: Vec<TransitionRecord> = sqlx::query_as(AssertSqlSafe(transitions_sql))
        .bind(instance_id)
        .fetch_all(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    let runs_sql = format!(
        "SELECT {TASK_RUN_COLUMNS} FROM {} WHERE instance_id = $1 ORDER BY started_at, task_order, id",
        scope.table("task_runs")
    );
    let runs: Vec<TaskRunRow> = sqlx::query_as(AssertSqlSafe(runs_sql))
        .bind(instance_id)
        .fetch_all(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    let mut other = Vec::new();
    for mut run in runs {
        // Nested under its transition (or listed apart), a run shows no link.
        match run.transition_id.take().and_then(|t| records.iter_mut().find(|r| r.row.id == t)) {
            Some(record) => record.tasks.push(run),
            None => other.push(run),
        }
    }
    Ok(History { data: records, other_task_runs: other })
}
