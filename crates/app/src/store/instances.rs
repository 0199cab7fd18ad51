//! Statements on the instance row: locking it, reading it, leasing it.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection, PgExecutor};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};

use super::instance_row::{COLUMNS, InstanceRef, InstanceRow, InstanceSnapshot, InstanceStatus, Lease};

/// Why an instance row could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another transaction holds the row.
    #[error("row is locked")]
    Busy,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn where_clause(r: &InstanceRef) -> &'static str {
    match r {
        InstanceRef::Id(_) => "id = $1",
        InstanceRef::Key(_) => "key = $1",
    }
}

fn bind_ref<'q>(
    q: sqlx::query::QueryAs<'q, sqlx::Postgres, InstanceRow, sqlx::postgres::PgArguments>,
    r: &'q InstanceRef,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, InstanceRow, sqlx::postgres::PgArguments> {
    match r {
        InstanceRef::Id(id) => q.bind(*id),
        InstanceRef::Key(k) => q.bind(k.as_str()),
    }
}

/// Locks the row (`FOR UPDATE NOWAIT`) and reads it. `Ok(None)`: no such instance.
///
/// # Errors
/// [`LockError::Busy`] when another transaction holds it; database errors,
/// including a missing flow schema (see [`super::is_missing_schema`]).
pub async fn lock(conn: &mut PgConnection, flow: &FlowKey, r: &InstanceRef) -> Result<Option<InstanceRow>, LockError> {
    let sql = format!("SELECT {COLUMNS} FROM {}.instances WHERE {} FOR UPDATE NOWAIT", flow.quoted(), where_clause(r));
    bind_ref(sqlx::query_as(AssertSqlSafe(sql)), r).fetch_optional(conn).await.map_err(|e| {
        if super::is_lock_not_available(&e) { LockError::Busy } else { LockError::Db(e) }
    })
}

/// Locks the row, waiting for it (used by the holder of a lease, whose row no
/// one else may change).
///
/// # Errors
/// Database errors.
pub async fn lock_wait(conn: &mut PgConnection, flow: &FlowKey, id: Uuid) -> Result<Option<InstanceRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM {}.instances WHERE id = $1 FOR UPDATE", flow.quoted());
    sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
}

/// Reads the row without locking.
///
/// # Errors
/// Database errors, including a missing flow schema.
pub async fn find<'e>(exec: impl PgExecutor<'e>, flow: &FlowKey, r: &InstanceRef) -> Result<Option<InstanceRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM {}.instances WHERE {}", flow.quoted(), where_clause(r));
    bind_ref(sqlx::query_as(AssertSqlSafe(sql)), r).fetch_optional(exec).await
}

/// The instance as the API shows it; `None` when it (or its workflow's schema)
/// does not exist.
///
/// # Errors
/// Database errors other than a missing schema.
pub async fn load_snapshot<'e>(
    exec: impl PgExecutor<'e>,
    domain: &DomainName,
    flow: &FlowKey,
    r: &InstanceRef,
) -> Result<Option<InstanceSnapshot>, sqlx::Error> {
    match find(exec, flow, r).await {
        Ok(row) => Ok(row.map(|row| row.into_snapshot(domain, flow))),
        Err(e) if super::is_missing_schema(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Marks the instance busy under `lease`.
///
/// # Errors
/// Database errors.
pub async fn write_lease(conn: &mut PgConnection, flow: &FlowKey, id: Uuid, lease: &Lease, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE {}.instances SET status = 'B', lease_token = $2, lease_until = $3, lease_transition = $4, \
         lease_job_id = $5, modified_at = $6, lease_request = $7, lease_step = $8 WHERE id = $1",
        flow.quoted()
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(lease.token)
        .bind(lease.until)
        .bind(&lease.transition)
        .bind(lease.job_id)
        .bind(now)
        .bind(lease.request.as_ref())
        .bind(lease.step.as_ref())
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the next step in flight under a lease still held with `token`,
/// and extends it to `until`. False when the lease is no longer this one
/// (recovery took the instance over).
///
/// # Errors
/// Database errors.
pub async fn renew_lease<'e>(
    exec: impl PgExecutor<'e>,
    flow: &FlowKey,
    id: Uuid,
    token: Uuid,
    until: DateTime<Utc>,
    step: Option<&serde_json::Value>,
) -> Result<bool, sqlx::Error> {
    let sql = format!("UPDATE {}.instances SET lease_until = $3, lease_step = $4 WHERE id = $1 AND lease_token = $2", flow.quoted());
    let done = sqlx::query(AssertSqlSafe(sql)).bind(id).bind(token).bind(until).bind(step).execute(exec).await?;
    Ok(done.rows_affected() > 0)
}

/// Sets the instance's key when it has none (a transition that sends `key`).
/// Returns false when the instance already has a key.
///
/// # Errors
/// A unique violation (23505, see [`super::is_unique_violation`]) when another
/// instance holds the key; other database errors.
pub async fn set_key_if_empty(conn: &mut PgConnection, flow: &FlowKey, id: Uuid, key: &str) -> Result<bool, sqlx::Error> {
    let sql = format!("UPDATE {}.instances SET key = $2 WHERE id = $1 AND key IS NULL", flow.quoted());
    Ok(sqlx::query(AssertSqlSafe(sql)).bind(id).bind(key).execute(conn).await?.rows_affected() > 0)
}

/// Gives a lease back without other changes: the instance returns to `status`.
///
/// # Errors
/// Database errors.
pub async fn release_lease(conn: &mut PgConnection, flow: &FlowKey, id: Uuid, status: InstanceStatus) -> Result<(), sqlx::Error> {
    let sql = format!(
        "UPDATE {}.instances SET status = $2::text::\"char\", lease_token = NULL, lease_until = NULL, \
         lease_transition = NULL, lease_job_id = NULL, lease_request = NULL, lease_step = NULL WHERE id = $1",
        flow.quoted()
    );
    sqlx::query(AssertSqlSafe(sql)).bind(id).bind(status.code().to_string()).execute(conn).await?;
    Ok(())
}

/// Removes an instance that never finished starting (its start failed after
/// the row was leased), with anything recorded for it.
///
/// # Errors
/// Database errors.
pub async fn delete(conn: &mut PgConnection, flow: &FlowKey, id: Uuid) -> Result<(), sqlx::Error> {
    let s = flow.quoted();
    let sql = format!(
        "WITH a AS (DELETE FROM {s}.task_runs WHERE instance_id = $1), b AS (DELETE FROM {s}.transitions WHERE instance_id = $1) \
         DELETE FROM {s}.instances WHERE id = $1"
    );
    sqlx::query(AssertSqlSafe(sql)).bind(id).execute(conn).await?;
    Ok(())
}
