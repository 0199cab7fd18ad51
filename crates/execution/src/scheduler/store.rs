//! The SQL of the job queue (`sys_queues.jobs`), as the scheduler uses it.
//!
//! Claiming takes due `pending` jobs and `running` jobs whose lock expired (a
//! worker died holding them) with `FOR UPDATE SKIP LOCKED`, so concurrent
//! schedulers never claim the same job, and in the same statement reads when
//! the next job comes due: an idle domain costs one query per wake-up.
//!
//! Settling a job is always conditional on it still being `running` under this
//! worker's lock: the app marks a job done in the transaction that commits its
//! transition, and this side must neither undo that nor touch a job another
//! worker reclaimed.
//!
//! Every function takes any executor (a pool or one connection): the scheduler
//! runs a domain's queries on the one connection it holds for that domain.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, Row};
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
    /// Why the previous delivery did not succeed, if it did not.
    pub last_error: Option<String>,
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
WITH expired AS (
    SELECT id FROM sys_queues.jobs
     WHERE status = 'running' AND locked_until < $1
     ORDER BY locked_until
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id FROM sys_queues.jobs
     WHERE status = 'pending' AND due_at <= $1
     ORDER BY due_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE sys_queues.jobs j
       SET status = 'running', locked_by = $3, locked_until = $4, attempts = j.attempts + 1
     WHERE j.id IN (SELECT id FROM (SELECT id FROM expired UNION ALL SELECT id FROM due) c LIMIT $2)
 RETURNING j.id, j.kind, j.flow, j.instance_id, j.transition_key, j.armed_state, j.body, j.due_at, j.attempts,
           j.last_error
)
SELECT id, kind, flow, instance_id, transition_key, armed_state, body, due_at, attempts, last_error,
       NULL::timestamptz AS next_at
  FROM claimed
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       LEAST((SELECT min(due_at) FROM sys_queues.jobs WHERE status = 'pending' AND due_at > $1),
             (SELECT min(locked_until) FROM sys_queues.jobs WHERE status = 'running' AND locked_until >= $1))";

/// Claims up to `limit` jobs, those whose lock expired first, then due ones in
/// due order, for `worker` until `locked_until`.
///
/// # Errors
/// The database error; nothing is claimed then.
pub async fn claim(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
    worker: &str,
    locked_until: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    let rows = sqlx::query(CLAIM).bind(now).bind(limit).bind(worker).bind(locked_until).fetch_all(db).await?;
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
            last_error: row.try_get("last_error")?,
        });
    }
    Ok(claim)
}

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
            Settlement::Done { .. } => ("done", None, None, false),
            Settlement::Pending { due_at, last_error, count_attempt, .. } => {
                ("pending", Some(*due_at), last_error.as_deref(), !count_attempt)
            }
            Settlement::Failed { error, .. } => ("failed", None, Some(error.as_str()), false),
        };
        statuses.push(status);
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
