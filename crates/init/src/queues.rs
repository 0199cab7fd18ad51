//! Durable jobs in `sys_queues.jobs`: written in the caller's transaction, so a
//! state change and the jobs it schedules commit together (or not at all).
//!
//! Each enqueue also sends `NOTIFY vnext_jobs, '<kind>'`; PostgreSQL delivers it
//! only when the transaction commits, which wakes schedulers without polling.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// The channel that wakes job schedulers; the payload is the job kind.
pub const JOBS_CHANNEL: &str = "vnext_jobs";

/// What a job does when it comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A scheduled transition's timer fired.
    Timer,
    /// The workflow's timeout elapsed.
    Timeout,
    /// A transition accepted with `sync=false`.
    Async,
    /// A failed task or transition is retried.
    Retry,
    /// A busy instance's lease expired and must be recovered.
    Lease,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [JobKind::Timer, JobKind::Timeout, JobKind::Async, JobKind::Retry, JobKind::Lease];

    /// The value stored in `jobs.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Timer => "timer",
            JobKind::Timeout => "timeout",
            JobKind::Async => "async",
            JobKind::Retry => "retry",
            JobKind::Lease => "lease",
        }
    }

    /// Parses a stored `jobs.kind`.
    pub fn parse(s: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: Uuid,
    pub kind: JobKind,
    /// The workflow key (`customer-onboarding`).
    pub flow: String,
    pub instance_id: Uuid,
    /// The transition the job runs when it fires.
    pub transition_key: String,
    /// The state the job was armed in; the job is stale once the instance left it.
    pub armed_state: Option<String>,
    /// The transition's request body (async transitions).
    pub body: Option<Value>,
    pub due_at: DateTime<Utc>,
}

/// Inserts a pending job and notifies schedulers, in the caller's transaction.
///
/// # Errors
/// The database error (for example a duplicate `id`).
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH job AS (
            INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, armed_state, body, due_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            RETURNING kind
         )
         SELECT pg_notify($9, kind) FROM job",
    )
    .bind(job.id)
    .bind(job.kind.as_str())
    .bind(&job.flow)
    .bind(job.instance_id)
    .bind(&job.transition_key)
    .bind(&job.armed_state)
    .bind(&job.body)
    .bind(job.due_at)
    .bind(JOBS_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels the instance's pending jobs of the given kinds and returns how many.
/// Running jobs are left alone: the transition running one settles it itself,
/// and cancelling it under its feet would turn its own completion into a stale
/// job. An empty `kinds` cancels nothing.
///
/// # Errors
/// The database error.
pub async fn cancel_for_instance(
    conn: &mut PgConnection,
    flow: &str,
    instance_id: Uuid,
    kinds: &[JobKind],
) -> Result<u64, sqlx::Error> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let done = sqlx::query(
        "UPDATE sys_queues.jobs SET status = 'cancelled', finished_at = now()
          WHERE flow = $1 AND instance_id = $2 AND status = 'pending' AND kind = ANY($3)",
    )
    .bind(flow)
    .bind(instance_id)
    .bind(&kinds)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
