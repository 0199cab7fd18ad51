//! Lease recovery: no instance stays busy forever.
//!
//! A transition that runs external I/O marks its instance busy (`B`) with a
//! lease, commits, does the I/O, then commits the outcome. When the process
//! dies in between, the lease runs out with nobody to finish it. This scan finds
//! such instances in every flow schema of a domain; the worker enqueues one
//! `lease` job per lease ([`vnext_init::queue::enqueue_lease_recovery`], which
//! says how a lease gets exactly one job); the trigger then resumes the
//! transition (job-origin transitions are re-run) or faults the instance with
//! an incident.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use vnext_core::ident::{quote, to_identifier};
pub use vnext_init::queue::ExpiredLease;

/// Every registered flow schema of the connection's domain as `(flow key,
/// schema name)`, by flow key. Names come from our own registry; still, only
/// valid identifiers reach SQL (others are logged and left out).
///
/// # Errors
/// The database error when the registry cannot be read.
pub(crate) async fn flow_schemas(conn: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let schemas: Vec<(String, String)> =
        sqlx::query_as("SELECT flow_key, schema_name FROM sys_schemas.flow_schemas ORDER BY flow_key")
            .fetch_all(&mut *conn)
            .await?;
    Ok(schemas
        .into_iter()
        .filter(|(flow, schema)| {
            let ok = to_identifier(schema).is_ok_and(|s| &s == schema);
            if !ok {
                tracing::warn!(flow, schema, "flow schema registry entry is not a valid identifier; skipped");
            }
            ok
        })
        .collect())
}

/// One statement over a chunk of flow schemas: a `UNION ALL` of one branch per
/// schema, each starting `SELECT <flow key>::text AS flow, ` and completed by
/// `rest` for the schema.
pub(crate) fn union_per_schema(
    chunk: &[(String, String)],
    mut rest: impl FnMut(&mut QueryBuilder<Postgres>, &str),
) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new("");
    for (i, (flow, schema)) in chunk.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT ").push_bind(flow.clone()).push("::text AS flow, ");
        rest(&mut q, schema);
    }
    q
}

/// Flow schemas read per query.
pub(crate) const SCHEMAS_PER_QUERY: usize = 50;

/// Finds expired leases in every registered flow schema of the connection's domain.
/// A schema that cannot be read is logged and skipped.
///
/// # Errors
/// The database error when the flow schema registry cannot be read.
pub async fn find_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Vec<ExpiredLease>, sqlx::Error> {
    let schemas = flow_schemas(conn).await?;
    let mut found = Vec::new();
    for chunk in schemas.chunks(SCHEMAS_PER_QUERY) {
        let mut q = union_per_schema(chunk, |q, schema| {
            q.push("id, current_state, lease_token, lease_transition, lease_job_id, lease_until FROM ")
                .push(format_args!("{}.instances", quote(schema)))
                .push(" WHERE status = 'B' AND lease_until < ")
                .push_bind(now);
        });
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
