//! Writing jobs and reading an instance's jobs.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use super::{JobBody, JobKind, NewJob, JOBS_CHANNEL};

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

/// An instance whose lease ran out (found by the scheduler's lease scan).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredLease {
    pub flow: String,
    pub instance_id: Uuid,
    pub state: String,
    pub token: Option<Uuid>,
    pub transition: Option<String>,
    pub job_id: Option<Uuid>,
    pub until: DateTime<Utc>,
}

/// Enqueues one `lease` job per expired lease, due at `now`. Returns how many
/// jobs were created or re-armed.
///
/// The job's id is the lease token, so scanning again (here or in another
/// scheduler) never enqueues a second job for the same lease. A job already
/// settled for the same lease is re-armed only once it has been finished for
/// longer than `rearm_after`.
///
/// # Errors
/// The database error.
pub async fn enqueue_lease_recovery(
    db: impl PgExecutor<'_>,
    leases: &[ExpiredLease],
    now: DateTime<Utc>,
    rearm_after: Duration,
) -> Result<u64, sqlx::Error> {
    if leases.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(leases.len());
    let mut flows = Vec::with_capacity(leases.len());
    let mut instances = Vec::with_capacity(leases.len());
    let mut transitions = Vec::with_capacity(leases.len());
    let mut states = Vec::with_capacity(leases.len());
    let mut bodies = Vec::with_capacity(leases.len());
    for l in leases {
        // One job per lease; an instance without a token gets one per instance.
        ids.push(l.token.unwrap_or(l.instance_id));
        flows.push(l.flow.clone());
        instances.push(l.instance_id);
        transitions.push(l.transition.clone().unwrap_or_default());
        states.push(l.state.clone());
        bodies.push(JobBody::lease(l.token, l.job_id, l.until).to_value());
    }
    let done = sqlx::query(
        "INSERT INTO sys_queues.jobs AS j (id, kind, flow, instance_id, transition_key, armed_state, body, due_at)
         SELECT id, 'lease', flow, instance_id, transition_key, armed_state, body, $7
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[])
                AS t(id, flow, instance_id, transition_key, armed_state, body)
         ON CONFLICT (id) DO UPDATE
            SET status = 'pending', due_at = EXCLUDED.due_at, locked_by = NULL, locked_until = NULL,
                finished_at = NULL, attempts = 0,
                last_error = 'lease still expired after this job was settled; armed again'
          WHERE j.kind = 'lease' AND j.status IN ('done', 'failed', 'cancelled') AND j.finished_at < $8",
    )
    .bind(&ids)
    .bind(&flows)
    .bind(&instances)
    .bind(&transitions)
    .bind(&states)
    .bind(&bodies)
    .bind(now)
    .bind(now - rearm_after)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A job as lease recovery re-runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldJob {
    /// `None` for a kind this build does not know.
    pub kind: Option<JobKind>,
    pub transition_key: String,
    pub body: JobBody,
}

/// The job that held an expired lease, whatever its status.
///
/// # Errors
/// The database error.
pub async fn held_job(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<HeldJob>, sqlx::Error> {
    let row = sqlx::query("SELECT kind, transition_key, body FROM sys_queues.jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.try_get("kind")?;
    let body: Option<serde_json::Value> = row.try_get("body")?;
    Ok(Some(HeldJob {
        kind: JobKind::parse(&kind),
        transition_key: row.try_get("transition_key")?,
        body: body.as_ref().map(JobBody::from_value).unwrap_or_default(),
    }))
}

/// A timer or the workflow timeout armed for an instance.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ArmedJob {
    #[sqlx(try_from = "String")]
    pub kind: JobKind,
    pub transition_key: String,
    pub due_at: DateTime<Utc>,
}

/// The instance's armed timers and timeout (pending, or firing right now), in
/// due order. `flows` names the instance's workflow as it may be stored.
///
/// # Errors
/// The database error.
pub async fn armed_timers(db: impl PgExecutor<'_>, instance_id: Uuid, flows: &[String]) -> Result<Vec<ArmedJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, transition_key, due_at FROM sys_queues.jobs
          WHERE instance_id = $1 AND flow = ANY($2) AND kind IN ('timer', 'timeout')
            AND status IN ('pending', 'running')
          ORDER BY due_at",
    )
    .bind(instance_id)
    .bind(flows)
    .fetch_all(db)
    .await
}
