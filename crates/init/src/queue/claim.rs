//! Claiming jobs: a claimed job is `running` under a worker's lock until it is
//! settled or the lock expires.
//!
//! The scheduler's [`claim`] takes due `pending` jobs and `running` jobs whose
//! lock expired (a worker died holding them) with `FOR UPDATE SKIP LOCKED`, so
//! concurrent schedulers never claim the same job, and in the same statement
//! reads when the next job comes due: an idle domain costs one query per
//! wake-up. It compares due times with the scheduler's clock, as the app wrote
//! them from its own.
//!
//! The app's in-process runner claims one job at a time: [`claim_by_id`] (a job
//! its commit just wrote for another instance) and [`claim_due`] (the next due
//! job of a kind), both by the database's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgExecutor, Row};
use uuid::Uuid;
use vnext_core::traits::{TriggerOrigin, TriggerRequest};

use super::JobKind;

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

    /// The trigger call that fires this job in `domain`.
    pub fn trigger_request(&self, domain: &str) -> TriggerRequest {
        TriggerRequest {
            domain: domain.to_string(),
            flow: self.flow.clone(),
            instance_id: self.instance_id,
            transition: self.transition_key.clone(),
            origin: self.origin(),
            armed_state: self.armed_state.clone(),
            body: self.body.clone().unwrap_or(Value::Null),
            job_id: self.id,
            attempt: self.attempts,
        }
    }

    /// A claimed row; `None` (logged) for a kind this build does not know.
    fn from_row(row: &PgRow, id: Uuid) -> Result<Option<ClaimedJob>, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        let Some(kind) = JobKind::parse(&kind) else {
            // The table's CHECK constraint makes this unreachable; fail the job loudly if it happens.
            tracing::error!(job = %id, kind, "job of unknown kind");
            return Ok(None);
        };
        Ok(Some(ClaimedJob {
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
        }))
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
        claim.jobs.extend(ClaimedJob::from_row(&row, id)?);
    }
    Ok(claim)
}

/// The start and the end of the one-job claims; the `WHERE` goes in between.
const CLAIM_ONE: &str = "UPDATE sys_queues.jobs SET status = 'running', locked_by = $1, \
     locked_until = now() + make_interval(secs => $2), attempts = attempts + 1";
const CLAIMED_ONE: &str =
    "RETURNING id, kind, flow, instance_id, transition_key, armed_state, body, due_at, attempts, last_error";

async fn claim_one<'q>(
    db: impl PgExecutor<'_>,
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<Option<ClaimedJob>, sqlx::Error> {
    match query.fetch_optional(db).await? {
        Some(row) => {
            let id: Uuid = row.try_get("id")?;
            ClaimedJob::from_row(&row, id)
        }
        None => Ok(None),
    }
}

/// Claims job `id` for `worker` for `lock` if it is still `pending`, whatever
/// its due time.
///
/// # Errors
/// The database error.
pub async fn claim_by_id(db: impl PgExecutor<'_>, id: Uuid, worker: &str, lock: Duration) -> Result<Option<ClaimedJob>, sqlx::Error> {
    let sql = format!("{CLAIM_ONE} WHERE id = $3 AND status = 'pending' {CLAIMED_ONE}");
    claim_one(db, sqlx::query(AssertSqlSafe(sql)).bind(worker).bind(lock.as_secs_f64()).bind(id)).await
}

/// Claims the `pending` job of `kind` due first (by the database's clock) for
/// `worker` for `lock`, skipping jobs other claims hold.
///
/// # Errors
/// The database error.
pub async fn claim_due(db: impl PgExecutor<'_>, kind: JobKind, worker: &str, lock: Duration) -> Result<Option<ClaimedJob>, sqlx::Error> {
    let sql = format!(
        "{CLAIM_ONE} WHERE id = (SELECT id FROM sys_queues.jobs WHERE status = 'pending' AND kind = $3 AND due_at <= now() \
         ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) {CLAIMED_ONE}"
    );
    claim_one(db, sqlx::query(AssertSqlSafe(sql)).bind(worker).bind(lock.as_secs_f64()).bind(kind.as_str())).await
}
