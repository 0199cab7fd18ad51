//! Lease recovery: no instance stays busy forever.
//!
//! A transition that runs external I/O marks its instance busy (`B`) with a
//! lease, commits, does the I/O, then commits the outcome. When the process
//! dies in between, the lease runs out with nobody to finish it. This scan finds
//! such instances in every flow schema of a domain and enqueues one `lease` job
//! per lease; the trigger then resumes the transition (job-origin transitions are
//! re-run) or faults the instance with an incident.
//!
//! The job's id is the lease token, so scanning again (here or in another
//! scheduler) never enqueues a second job for the same lease. If the job was
//! settled but the very same lease is still expired a while later, the job is
//! armed again rather than leaving the instance stuck.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor, QueryBuilder, Row};
use uuid::Uuid;
use vnext_core::ident::{quote, to_identifier};

/// Flow schemas read per query.
const SCHEMAS_PER_QUERY: usize = 50;

/// An instance whose lease ran out.
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

/// Finds expired leases in every registered flow schema of the connection's domain.
/// A schema that cannot be read is logged and skipped.
///
/// # Errors
/// The database error when the flow schema registry cannot be read.
pub async fn find_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Vec<ExpiredLease>, sqlx::Error> {
    let schemas: Vec<(String, String)> =
        sqlx::query_as("SELECT flow_key, schema_name FROM sys_schemas.flow_schemas ORDER BY flow_key")
            .fetch_all(&mut *conn)
            .await?;
    // Names come from our own registry; still, only valid identifiers reach SQL.
    let schemas: Vec<(String, String)> = schemas
        .into_iter()
        .filter(|(flow, schema)| {
            let ok = to_identifier(schema).is_ok_and(|s| &s == schema);
            if !ok {
                tracing::warn!(flow, schema, "flow schema registry entry is not a valid identifier; skipped");
            }
            ok
        })
        .collect();
    let mut found = Vec::new();
    for chunk in schemas.chunks(SCHEMAS_PER_QUERY) {
        let mut q = QueryBuilder::new("");
        for (i, (flow, schema)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(" UNION ALL ");
            }
            q.push("SELECT ")
                .push_bind(flow.clone())
                .push("::text AS flow, id, current_state, lease_token, lease_transition, lease_job_id, lease_until FROM ")
                .push(format_args!("{}.instances", quote(schema)))
                .push(" WHERE status = 'B' AND lease_until < ")
                .push_bind(now);
        }
        match q.build().fetch_all(&mut *conn).await {
            Ok(rows) => {
                for row in rows {
                    found.push(ExpiredLease {
                        flow: row.try_get("flow")?,
                        instance_id: row.try_get("id")?,
                        state: row.try_get("current_state")?,
                        token: row.try_get("lease_token")?,
                        transition: row.try_get("lease_transition")?,
                        job_id: row.try_get("lease_job_id")?,
                        until: row.try_get("lease_until")?,
                    });
                }
            }
            Err(e) => {
                let names: Vec<&str> = chunk.iter().map(|(_, s)| s.as_str()).collect();
                tracing::warn!(error = %e, schemas = ?names, "cannot scan flow schemas for expired leases");
            }
        }
    }
    Ok(found)
}

/// Enqueues one `lease` job per expired lease, due at `now`. Returns how many
/// jobs were created or re-armed.
///
/// A job already settled for the same lease is re-armed only once it has been
/// finished for longer than `rearm_after`.
///
/// # Errors
/// The database error.
pub async fn enqueue_recovery(
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
        bodies.push(json!({"leaseToken": l.token, "leaseJobId": l.job_id, "leaseUntil": l.until}));
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
