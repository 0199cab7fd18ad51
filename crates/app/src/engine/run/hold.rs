//! How a run holds its instance across external I/O: the lease taken before
//! the first call (with the request and the step in flight, for lease
//! recovery), renewed before each later call, and giving the instance back
//! unchanged.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;
use vnext_init::queue::JobBody;

use super::{Failure, Hold, Run};
use crate::engine::lost::LeaseStep;
use crate::engine::EngineError;
use crate::store::{self, InstanceRow, Lease, Records, WriteMode};

/// How long a run that holds a lease keeps trying to write through an outage
/// at least (longer when the lease is longer). The lease's token keeps this
/// safe past the lease's end: a run whose lease recovery took over backs off.
const OUTAGE_BUDGET_MIN: chrono::Duration = chrono::Duration::seconds(30);

/// First pause between attempts of [`with_db_retry`]; it doubles up to [`RETRY_PAUSE_MAX`].
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(2);

/// Runs `op` again while it fails because the database is unreachable
/// (`EngineError::Unavailable`: the server restarting, a connection cut, no
/// connection to spare), pausing between attempts (100 ms doubling, at most
/// 2 s), for up to `budget` after the first failure; then, or on any other
/// error, returns the error. For work that holds a result only memory has
/// (an HTTP task's answer) and must not lose it to a short outage; `op` must be
/// safe to run again (a statement or a transaction that either committed or
/// did not).
pub(crate) async fn with_db_retry<T, E, F, Fut>(budget: chrono::Duration, mut op: F) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<EngineError>,
{
    let budget = budget.to_std().unwrap_or_default();
    let mut deadline = None;
    let mut pause = RETRY_PAUSE;
    loop {
        match op().await.map_err(Into::into) {
            Ok(v) => return Ok(v),
            Err(e @ EngineError::Unavailable(_)) => {
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + budget);
                if Instant::now() + pause > deadline {
                    return Err(e);
                }
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "database unavailable; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_PAUSE_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Run {
    /// How long this run keeps trying to write through an outage.
    pub(super) fn outage_budget(&self) -> chrono::Duration {
        self.eng.settings.lease.max(OUTAGE_BUDGET_MIN)
    }

    /// What lease recovery runs again if this run is lost: its first hop and
    /// request (headers and query redacted, as everywhere they are stored) at
    /// its attempt.
    fn lease_request(&self) -> JobBody {
        let r = &self.eng.settings.redaction;
        JobBody::request(&self.first, self.req.body.clone(), r.headers(&self.req.headers), r.query(&self.req.query))
            .with_attempt(self.attempt)
    }

    /// Marks the instance busy before the first external call and commits, so
    /// no transaction stays open across I/O; before a later call, records the
    /// new step on the lease (and extends it).
    pub(crate) async fn ensure_lease(&mut self, step: LeaseStep) -> Result<(), Failure> {
        let until = self.eng.clock.now() + self.eng.settings.lease;
        let lease = Lease {
            token: Uuid::new_v4(),
            until,
            transition: self.first_key(),
            job_id: self.job_id,
            request: Some(self.lease_request().to_value()),
            step: Some(step.to_value()),
        };
        match std::mem::replace(&mut self.hold, Hold::Closed) {
            Hold::Leased(mut l) => {
                let step = lease.step.as_ref();
                let renewed = with_db_retry(self.outage_budget(), || {
                    store::instances::renew_lease(&self.pool, &self.flow, self.row.id, l.token, until, step)
                })
                .await;
                if matches!(renewed, Ok(true)) {
                    l.until = until;
                }
                self.hold = Hold::Leased(l);
                if !renewed? {
                    // Lease recovery took the instance over: this run's outcome would not be written.
                    return Err(EngineError::Busy { instance: self.row.id.to_string() }.into());
                }
            }
            Hold::Nested => {
                self.hold = Hold::Nested;
                return Err(Failure::NeedsIo);
            }
            Hold::Closed => return Err(EngineError::Internal("run already closed".into()).into()),
            Hold::Locked(mut tx) => {
                store::instances::write_lease(&mut tx, &self.flow, self.row.id, &lease, self.now).await?;
                tx.commit().await?;
                self.hold = Hold::Leased(lease);
            }
            Hold::Fresh => {
                let w = self.row.clone().leased(&lease, self.now);
                let mut conn = vnext_init::db::acquire(&self.pool).await?;
                if !store::apply(&mut conn, &self.flow, WriteMode::Insert, &w, &Records::default()).await? {
                    return Err(match self.existing(&mut conn).await {
                        Ok(row) => Failure::Existing(row),
                        Err(e) => Failure::Abort(e),
                    });
                }
                self.hold = Hold::Leased(lease);
            }
        }
        Ok(())
    }

    /// The instance that holds this start's key (its insert found the key taken).
    pub(crate) async fn existing(&self, conn: &mut sqlx::PgConnection) -> Result<Box<InstanceRow>, EngineError> {
        let key = self.row.key.clone().unwrap_or_default();
        match store::instances::find(conn, &self.flow, &super::InstanceRef::Key(key)).await? {
            Some(row) => Ok(Box::new(row)),
            None => Err(EngineError::Internal("instance key conflict without an instance".into())),
        }
    }

    /// Gives the lease back (a start that leased its new row removes it),
    /// unless recovery took it over. Safe to repeat.
    async fn give_back(&self, lease: &Lease) -> Result<(), EngineError> {
        let mut tx = vnext_init::db::begin(&self.pool).await?;
        let row = store::instances::lock_wait(&mut tx, &self.flow, self.row.id).await?;
        if row.and_then(|r| r.lease_token) == Some(lease.token) {
            if self.fresh {
                store::instances::delete(&mut tx, &self.flow, self.row.id).await?;
            } else {
                store::instances::release_lease(&mut tx, &self.flow, self.row.id, self.prev_status).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Leaves the instance as it was: roll back, or give the lease back.
    pub(super) async fn abandon(&mut self) -> Result<(), EngineError> {
        match std::mem::replace(&mut self.hold, Hold::Closed) {
            Hold::Fresh | Hold::Nested | Hold::Closed => Ok(()),
            Hold::Locked(tx) => {
                tx.rollback().await?;
                Ok(())
            }
            Hold::Leased(lease) => with_db_retry(self.outage_budget(), || self.give_back(&lease)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn outage() -> EngineError {
        EngineError::Unavailable("terminating connection due to administrator command".into())
    }

    #[tokio::test]
    async fn an_outage_is_waited_out_other_errors_are_not() {
        let calls = AtomicU32::new(0);
        let out = with_db_retry(chrono::Duration::seconds(5), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(outage()) } else { Ok("written") }
        })
        .await;
        assert_eq!((out.ok(), calls.load(Ordering::SeqCst)), (Some("written"), 3));

        let calls = AtomicU32::new(0);
        let out: Result<(), _> = with_db_retry(chrono::Duration::seconds(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(EngineError::Internal("a bug".into()))
        })
        .await;
        assert!(matches!(out, Err(EngineError::Internal(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not retried");
    }

    #[tokio::test]
    async fn an_outage_longer_than_the_budget_is_answered_unavailable() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = with_db_retry(chrono::Duration::milliseconds(350), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(outage())
        })
        .await;
        assert!(matches!(out, Err(EngineError::Unavailable(_))));
        // 100 ms, 200 ms, then the next pause (400 ms) would pass the budget.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
