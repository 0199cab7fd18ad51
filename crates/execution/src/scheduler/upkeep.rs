//! A worker's periodic upkeep besides claiming: the lease scan that enqueues
//! recovery jobs, and the purge of finished jobs past their retention.

use sqlx::PgConnection;
use vnext_core::ident::DomainName;
use vnext_init::queue;

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
