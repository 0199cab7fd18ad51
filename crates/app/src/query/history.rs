//! Transition history of an instance, each transition with its task runs.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use uuid::Uuid;
use vnext_core::model::TriggerType;

use super::FlowScope;
use crate::error::ApiError;
use crate::store::history::{Origin, TASK_RUN_COLUMNS, TRANSITION_COLUMNS, TaskRunRow, TransitionRow};

/// One transition taken by an instance, with the task attempts it ran.
#[derive(Debug, sqlx::FromRow)]
pub struct TransitionRecord {
    #[sqlx(flatten)]
    pub row: TransitionRow,
    #[sqlx(skip)]
    pub tasks: Vec<TaskRunRow>,
}

/// A history element in the engine's wire form (`transitionId` is the
/// transition's key, `triggerType` the trigger's name), plus ours: `seq`,
/// `origin`, `actor`, `dataVersion`, `durationMs` and the `tasks` it ran.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub id: Uuid,
    pub transition_id: String,
    pub from_state: String,
    /// Absent while the transition runs; a row is written when its hop
    /// commits, so a stored row always has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_state: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    #[schema(value_type = String)]
    pub trigger_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    pub seq: i64,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_version: Option<String>,
    pub duration_ms: f64,
    pub tasks: Vec<TaskRunRow>,
}

/// The engine's names of the stored trigger codes (manual 0, automatic 1,
/// scheduled 2, event 3).
/// An unknown code reads as manual.
pub fn trigger_name(code: i16) -> &'static str {
    TriggerType::try_from(i64::from(code)).map_or("manual", TriggerType::name)
}

impl From<TransitionRecord> for HistoryEntry {
    fn from(r: TransitionRecord) -> Self {
        let row = r.row;
        HistoryEntry {
            id: row.id,
            transition_id: row.transition_key,
            // The start transition leaves from no state: the engine names none either.
            from_state: row.from_state.unwrap_or_default(),
            effective_state: Some(row.to_state.clone()),
            to_state: Some(row.to_state),
            started_at: row.started_at,
            finished_at: Some(row.finished_at),
            duration_seconds: row.duration_ms / 1000.0,
            trigger_type: trigger_name(row.trigger_type),
            body: row.body,
            created_at: row.started_at,
            created_by: row.actor,
            seq: row.seq,
            origin: row.origin,
            data_version: row.data_version,
            duration_ms: row.duration_ms,
            tasks: r.tasks,
        }
    }
}

/// The history answer (`{transitions}`): transitions oldest first; task runs
/// not tied to a transition (e.g. retried outside one) are listed apart.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub transitions: Vec<HistoryEntry>,
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
    Ok(History { transitions: records.into_iter().map(HistoryEntry::from).collect(), other_task_runs: other })
}
