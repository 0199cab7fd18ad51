//! Recording how jobs ended.
//!
//! The app marks the job a transition runs done in the transaction that
//! commits the transition ([`mark_done`]), so a job fires its effects at most
//! once. Settling by the scheduler is therefore always conditional on the job
//! still being `running` under this worker's lock: it must neither undo the
//! app's `done` nor touch a job another worker reclaimed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::JobStatus;

/// How a fired job is to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The transition ran or had nothing to do. A formality when the app
    /// already closed the job in its own transaction.
    Done { id: Uuid },
    /// Back to `pending`, due at `due_at`. `count_attempt = false` gives the
    /// claim back (a busy instance is not a failure).
    Pending { id: Uuid, due_at: DateTime<Utc>, last_error: Option<String>, count_attempt: bool },
    /// Given up, with the reason.
    Failed { id: Uuid, error: String },
}

impl Settlement {
    pub fn id(&self) -> Uuid {
        match self {
            Settlement::Done { id } | Settlement::Pending { id, .. } | Settlement::Failed { id, .. } => *id,
        }
    }
}

/// Records many settlements held by `worker` in one statement; returns how
/// many jobs changed. A job no longer `running` under this worker's lock (the
/// app closed it, or another worker reclaimed it) is left alone.
///
/// # Errors
/// The database error; nothing is recorded then.
pub async fn settle(db: impl PgExecutor<'_>, worker: &str, settlements: &[Settlement]) -> Result<u64, sqlx::Error> {
    if settlements.is_empty() {
        return Ok(0);
    }
    let n = settlements.len();
    let (mut ids, mut statuses, mut due, mut errors, mut uncount) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for s in settlements {
        ids.push(s.id());
        let (status, due_at, error, give_back) = match s {
            Settlement::Done { .. } => (JobStatus::Done, None, None, false),
            Settlement::Pending { due_at, last_error, count_attempt, .. } => {
                (JobStatus::Pending, Some(*due_at), last_error.as_deref(), !count_attempt)
            }
            Settlement::Failed { error, .. } => (JobStatus::Failed, None, Some(error.as_str()), false),
        };
        statuses.push(status.as_str());
        due.push(due_at);
        errors.push(error);
        uncount.push(give_back);
    }
    let done = sqlx::query(
        "UPDATE sys_queues.jobs j
            SET status = s.status,
                due_at = COALESCE(s.due_at, j.due_at),
                finished_at = CASE WHEN s.status = 'pending' THEN NULL ELSE now() END,
                locked_by = CASE WHEN s.status = 'pending' THEN NULL ELSE j.locked_by END,
                locked_until = CASE WHEN s.status = 'pending' THEN NULL ELSE j.locked_until END,
                last_error = COALESCE(s.last_error, j.last_error),
                attempts = CASE WHEN s.uncount THEN greatest(j.attempts - 1, 0) ELSE j.attempts END
           FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::bool[])
                AS s(id, status, due_at, last_error, uncount)
          WHERE j.id = s.id AND j.status = 'running' AND j.locked_by = $6",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&due)
    .bind(&errors)
    .bind(&uncount)
    .bind(worker)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Records how a job claimed by the app's in-process runner ended, unless it
/// is no longer `running`: [`JobStatus::Pending`] puts it back, due after
/// `retry_in` by the database's clock; any other status finishes it.
///
/// # Errors
/// The database error.
pub async fn settle_inline(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: JobStatus,
    last_error: Option<String>,
    retry_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sys_queues.jobs SET status = $2, last_error = $3, locked_by = NULL, locked_until = NULL, \
         due_at = CASE WHEN $2 = 'pending' THEN now() + make_interval(secs => $4) ELSE due_at END, \
         finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(last_error)
    .bind(retry_in.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// Hands claimed jobs that never started back to `pending` (shutdown).
///
/// # Errors
/// The database error.
pub async fn release(db: impl PgExecutor<'_>, ids: &[Uuid], worker: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sys_queues.jobs
            SET status = 'pending', locked_by = NULL, locked_until = NULL, attempts = greatest(attempts - 1, 0)
          WHERE id = ANY($1) AND status = 'running' AND locked_by = $2",
    )
    .bind(ids)
    .bind(worker)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `limit` jobs that finished (`done` or `cancelled`) before
/// `before`; failed jobs stay for diagnosis. Returns how many went.
///
/// # Errors
/// The database error.
pub async fn purge_finished(db: impl PgExecutor<'_>, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sys_queues.jobs WHERE id IN (
            SELECT id FROM sys_queues.jobs
             WHERE status IN ('done', 'cancelled') AND finished_at < $1
             LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Marks the job a transition runs done, in the transaction that commits the
/// transition. False when it is not `running` (settled already, or never
/// claimed): the caller must not run it.
///
/// # Errors
/// The database error.
pub async fn mark_done(tx: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE sys_queues.jobs SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'running'")
        .bind(id)
        .execute(tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Closes a job whose run another one takes over (lease recovery re-runs the
/// job that held the lease), in the caller's transaction, so a later claim of
/// it (a retry still pending, or a dead worker's claim) cannot run it again.
///
/// # Errors
/// The database error.
pub async fn close_held(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sys_queues.jobs SET status = 'done', finished_at = now() WHERE id = $1 AND status IN ('pending', 'running')")
        .bind(id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Cancels job `id` if it has not started, in the caller's transaction (the
/// row stays locked until it ends). False when there is no such job or it is
/// no longer `pending`.
///
/// # Errors
/// The database error.
pub async fn cancel_if_pending(tx: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM sys_queues.jobs WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if status.as_deref().and_then(JobStatus::parse) != Some(JobStatus::Pending) {
        return Ok(false);
    }
    sqlx::query("UPDATE sys_queues.jobs SET status = 'cancelled', finished_at = now() WHERE id = $1")
        .bind(id)
        .execute(tx)
        .await?;
    Ok(true)
}
