//! The SQL of the job queue (`sys_queues.jobs`), as the scheduler uses it.
//!
//! Claiming takes due `pending` jobs and `running` jobs whose lock expired (a
//! worker died holding them) with `FOR UPDATE SKIP LOCKED`, so concurrent
//! schedulers never claim the same job, and in the same statement reads when
//! the next job comes due: an idle domain costs one query per wake-up.
//!
//! Settling a job is always conditional on it still being `running`: the app
//! marks a job done in the transaction that commits its transition, and this
//! side must neither undo that nor resurrect a job another worker reclaimed.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use vnext_core::traits::TriggerOrigin;
use vnext_init::queues::JobKind;

/// A job this worker holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub kind: JobKind,
    pub flow: String,
    pub instance_id: Uuid,
    pub transition_key: String,
    pub armed_state: Option<String>,
    pub body: Option<Value>,
    pub due_at: DateTime<Utc>,
    /// Claims so far, this one included.
    pub attempts: i32,
}

impl ClaimedJob {
    pub fn origin(&self) -> TriggerOrigin {
        match self.kind {
            JobKind::Timer => TriggerOrigin::Timer,
            JobKind::Timeout => TriggerOrigin::Timeout,
            JobKind::Async => TriggerOrigin::Async,
            JobKind::Retry => TriggerOrigin::Retry,
            JobKind::Lease => TriggerOrigin::Lease,
        }
    }
}

/// What one claim returned.
#[derive(Debug, Default)]
pub struct Claim {
    pub jobs: Vec<ClaimedJob>,
    /// When the next pending job falls due (or a running job's lock expires),
    /// as seen before this claim; `None` when nothing is scheduled.
    pub next_at: Option<DateTime<Utc>>,
}

const CLAIM: &str = "
WITH due AS (
    SELECT id FROM sys_queues.jobs
     WHERE status = 'pending' AND due_at <= $1
     ORDER BY due_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id FROM sys_queues.jobs
     WHERE status = 'running' AND locked_until < $1
     ORDER BY locked_until
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE sys_queues.jobs j
       SET status = 'running', locked_by = $3, locked_until = $4, attempts = j.attempts + 1
     WHERE j.id IN (SELECT id FROM due UNION ALL SELECT id FROM expired)
 RETURNING j.id, j.kind, j.flow, j.instance_id, j.transition_key, j.armed_state, j.body, j.due_at, j.attempts
)
SELECT id, kind, flow, instance_id, transition_key, armed_state, body, due_at, attempts,
       NULL::timestamptz AS next_at
  FROM claimed
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       LEAST((SELECT min(due_at) FROM sys_queues.jobs WHERE status = 'pending' AND due_at > $1),
             (SELECT min(locked_until) FROM sys_queues.jobs WHERE status = 'running' AND locked_until >= $1))";

/// Claims up to `limit` due jobs (plus up to `limit` with expired locks) for
/// `worker` until `locked_until`.
///
/// # Errors
/// The database error; nothing is claimed then.
pub async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
    worker: &str,
    locked_until: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    let rows = sqlx::query(CLAIM).bind(now).bind(limit).bind(worker).bind(locked_until).fetch_all(pool).await?;
    let mut claim = Claim::default();
    for row in rows {
        let id: Option<Uuid> = row.try_get("id")?;
        let Some(id) = id else {
            claim.next_at = row.try_get("next_at")?;
            continue;
        };
        let kind: String = row.try_get("kind")?;
        let Some(kind) = JobKind::parse(&kind) else {
            // The table's CHECK constraint makes this unreachable; fail the job loudly if it happens.
            tracing::error!(job = %id, kind, "job of unknown kind");
            continue;
        };
        claim.jobs.push(ClaimedJob {
            id,
            kind,
            flow: row.try_get("flow")?,
            instance_id: row.try_get("instance_id")?,
            transition_key: row.try_get("transition_key")?,
            armed_state: row.try_get("armed_state")?,
            body: row.try_get("body")?,
            due_at: row.try_get("due_at")?,
            attempts: row.try_get("attempts")?,
        });
    }
    Ok(claim)
}

/// Closes a job whose transition ran or had nothing to do. A no-op when the
/// app already marked it done in its own transaction.
///
/// # Errors
/// The database error.
pub async fn mark_done(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sys_queues.jobs SET status = 'done', finished_at = now()
          WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_done`] for many jobs in one statement; returns how many it closed.
///
/// # Errors
/// The database error.
pub async fn mark_done_many(pool: &PgPool, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sys_queues.jobs SET status = 'done', finished_at = now()
          WHERE id = ANY($1) AND status = 'running'",
    )
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Puts a job held by `worker` back to `pending`, due at `due_at`.
/// `count_attempt = false` gives the claim back (a busy instance is not a failure).
///
/// # Errors
/// The database error.
pub async fn reschedule(
    pool: &PgPool,
    id: Uuid,
    worker: &str,
    due_at: DateTime<Utc>,
    last_error: Option<&str>,
    count_attempt: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sys_queues.jobs
            SET status = 'pending', due_at = $3, locked_by = NULL, locked_until = NULL,
                last_error = COALESCE($4, last_error),
                attempts = CASE WHEN $5 THEN attempts ELSE greatest(attempts - 1, 0) END
          WHERE id = $1 AND status = 'running' AND locked_by = $2",
    )
    .bind(id)
    .bind(worker)
    .bind(due_at)
    .bind(last_error)
    .bind(count_attempt)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives up on a job held by `worker`, keeping the reason.
///
/// # Errors
/// The database error.
pub async fn mark_failed(pool: &PgPool, id: Uuid, worker: &str, error: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sys_queues.jobs SET status = 'failed', finished_at = now(), last_error = $3
          WHERE id = $1 AND status = 'running' AND locked_by = $2",
    )
    .bind(id)
    .bind(worker)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Hands claimed jobs that never started back to `pending` (shutdown).
///
/// # Errors
/// The database error.
pub async fn release(pool: &PgPool, ids: &[Uuid], worker: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sys_queues.jobs
            SET status = 'pending', locked_by = NULL, locked_until = NULL, attempts = greatest(attempts - 1, 0)
          WHERE id = ANY($1) AND status = 'running' AND locked_by = $2",
    )
    .bind(ids)
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `limit` jobs that finished (`done` or `cancelled`) before
/// `before`; failed jobs stay for diagnosis. Returns how many went.
///
/// # Errors
/// The database error.
pub async fn purge_finished(pool: &PgPool, before: DateTime<Utc>, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sys_queues.jobs WHERE id IN (
            SELECT id FROM sys_queues.jobs
             WHERE status IN ('done', 'cancelled') AND finished_at < $1
             LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
