//! A worker's periodic upkeep besides claiming: the lease scan that enqueues
//! recovery jobs, the census of open incidents, and the purge of finished jobs
//! past their retention.

use sqlx::{PgConnection, Row};
use vnext_core::ident::{quote, DomainName};
use vnext_init::queue;
use vnext_telemetry::metrics::{self, Flow};

use super::{lease, SchedulerError, Shared};

/// Jobs deleted per purge statement.
const PURGE_BATCH: i64 = 5_000;

/// Deletes jobs finished longer than the retention ago, in bounded batches.
pub(crate) async fn purge(shared: &Shared, domain: &DomainName, conn: &mut PgConnection) {
    let Ok(retention) = chrono::Duration::from_std(shared.config.retention) else { return };
    let before = shared.clock.now() - retention;
    let mut total = 0;
    loop {
        match queue::purge_finished(&mut *conn, before, PURGE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < PURGE_BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(domain = %domain, error = %e, "cannot purge finished jobs");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(domain = %domain, jobs = total, "finished jobs past retention deleted");
    }
}

/// The periodic scan of a domain's flow schemas: expired leases get their
/// recovery jobs ([`recover_leases`]) and open incidents are counted
/// ([`count_open_incidents`], logged when it fails: it only feeds a gauge).
pub(crate) async fn scan_flows(shared: &Shared, domain: &DomainName, conn: &mut PgConnection) -> Result<u64, SchedulerError> {
    let enqueued = recover_leases(shared, domain, &mut *conn).await?;
    if let Err(e) = count_open_incidents(domain, &mut *conn).await {
        tracing::warn!(domain = %domain, error = %e, "cannot count open incidents");
    }
    Ok(enqueued)
}

/// Scans for expired leases and enqueues their recovery jobs.
pub(crate) async fn recover_leases(
    shared: &Shared,
    domain: &DomainName,
    conn: &mut PgConnection,
) -> Result<u64, SchedulerError> {
    let now = shared.clock.now();
    let db = |context| move |source| SchedulerError::Db { domain: domain.to_string(), context, source };
    let expired = lease::find_expired(&mut *conn, now).await.map_err(db("scanning for expired leases"))?;
    if expired.is_empty() {
        return Ok(0);
    }
    let rearm = chrono::Duration::from_std(shared.config.lease_rearm_after).unwrap_or(chrono::Duration::minutes(1));
    let n = queue::enqueue_lease_recovery(&mut *conn, &expired, now, rearm).await.map_err(db("enqueueing lease recovery"))?;
    if n > 0 {
        tracing::info!(domain = %domain, jobs = n, "expired leases found; recovery jobs enqueued");
    }
    Ok(n)
}

/// Counts the unresolved incidents of every workflow of the domain and sets
/// `vnext_incidents_open` (part of [`scan_flows`]). A gauge from the tables,
/// not from counters, so it is right after restarts and across replicas: every
/// execution replica reports the same figure for a domain it serves.
pub(crate) async fn count_open_incidents(domain: &DomainName, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let schemas = lease::flow_schemas(&mut *conn).await?;
    for chunk in schemas.chunks(lease::SCHEMAS_PER_QUERY) {
        // `incidents_open` (a partial index) answers this without the heap
        // when nothing is open.
        let mut q = lease::union_per_schema(chunk, |q, schema| {
            q.push(format_args!("count(*) AS open FROM {}.incidents WHERE NOT resolved", quote(schema)));
        });
        for row in q.build().fetch_all(&mut *conn).await? {
            let (flow, open): (String, i64) = (row.try_get("flow")?, row.try_get("open")?);
            metrics::incidents_open(Flow { domain: domain.as_str(), workflow: &flow }, open);
        }
    }
    Ok(())
}
