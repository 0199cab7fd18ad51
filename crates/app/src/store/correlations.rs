//! Subflow correlations: the parent's link to the child it waits for, kept in
//! the parent's flow schema, and what a child writes back to its parent.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgConnection, PgExecutor};
use uuid::Uuid;
use vnext_core::ident::FlowKey;

use super::records::IncidentRow;

/// A correlation as stored (`kind` is always `S` here: SubProcesses are not
/// started by states).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CorrelationRow {
    pub id: Uuid,
    pub parent_instance_id: Uuid,
    pub parent_state: String,
    pub child_domain: String,
    pub child_flow: String,
    pub child_instance_id: Uuid,
    pub completed: bool,
    pub outcome: Option<String>,
}

/// Records correlations (open, or already completed when the child finished
/// within the same run).
///
/// # Errors
/// Database errors.
pub async fn insert(conn: &mut PgConnection, flow: &FlowKey, rows: &[CorrelationRow], now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO {}.correlations (id, parent_instance_id, parent_state, child_domain, child_flow, child_instance_id, \
         kind, completed, outcome, created_at, completed_at) \
         SELECT id, parent, state, cdomain, cflow, child, 'S', done, outcome, $2, CASE WHEN done THEN $2 END \
         FROM unnest($1::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::bool[], $9::text[]) \
           AS r(id, parent, state, cdomain, cflow, child, done, outcome)",
        flow.quoted()
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(now)
        .bind(rows.iter().map(|r| r.parent_instance_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.parent_state.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.child_domain.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.child_flow.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.child_instance_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.completed).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.outcome.clone()).collect::<Vec<Option<String>>>())
        .execute(conn)
        .await?;
    Ok(())
}

/// Closes an open correlation with `outcome` (completed, canceled, faulted).
/// Returns false when it was not open.
///
/// # Errors
/// Database errors.
pub async fn close(conn: &mut PgConnection, flow: &FlowKey, id: Uuid, outcome: &str, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE {}.correlations SET completed = true, outcome = $2, completed_at = $3 WHERE id = $1 AND NOT completed",
        flow.quoted()
    );
    Ok(sqlx::query(AssertSqlSafe(sql)).bind(id).bind(outcome).bind(now).execute(conn).await?.rows_affected() > 0)
}

/// A correlation by id.
///
/// # Errors
/// Database errors.
pub async fn find<'e>(exec: impl PgExecutor<'e>, flow: &FlowKey, id: Uuid) -> Result<Option<CorrelationRow>, sqlx::Error> {
    let sql = format!(
        "SELECT id, parent_instance_id, parent_state, child_domain, child_flow, child_instance_id, completed, outcome \
         FROM {}.correlations WHERE id = $1",
        flow.quoted()
    );
    sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(exec).await
}

/// A child's data as it ended (the input of the parent's output mapping).
///
/// # Errors
/// Database errors, including a missing flow schema.
pub async fn child_data<'e>(exec: impl PgExecutor<'e>, child_flow: &FlowKey, child: Uuid) -> Result<Option<(String, Value)>, sqlx::Error> {
    let sql = format!("SELECT status::text, data FROM {}.instances WHERE id = $1", child_flow.quoted());
    sqlx::query_as(AssertSqlSafe(sql)).bind(child).fetch_optional(exec).await
}

/// Tells a parked parent that its child stopped without completing: an
/// incident on the parent, which stays parked (it resumes if the child is
/// retried and completes). Nothing happens when the parent no longer waits
/// for this correlation.
///
/// # Errors
/// Database errors.
pub async fn report_to_parent(
    conn: &mut PgConnection,
    parent_flow: &FlowKey,
    parent_id: Uuid,
    correlation: Uuid,
    incident: &IncidentRow,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let s = parent_flow.quoted();
    let sql = format!(
        "WITH p AS (UPDATE {s}.instances SET has_incident = true, modified_at = $3 WHERE id = $1 AND parked_on = $2 RETURNING id) \
         INSERT INTO {s}.incidents (id, instance_id, state, transition_key, task_key, error_code, message, status_code, \
           boundary_action, retry_count, request, created_at) \
         SELECT $4, p.id, $5, $6, $7, $8, $9, $10, $11, 0, $12, $3 FROM p"
    );
    let n = sqlx::query(AssertSqlSafe(sql))
        .bind(parent_id)
        .bind(correlation)
        .bind(now)
        .bind(incident.id)
        .bind(&incident.state)
        .bind(&incident.transition_key)
        .bind(&incident.task_key)
        .bind(&incident.error_code)
        .bind(&incident.message)
        .bind(incident.status_code)
        .bind(&incident.boundary_action)
        .bind(&incident.request)
        .execute(conn)
        .await?;
    Ok(n.rows_affected() > 0)
}
