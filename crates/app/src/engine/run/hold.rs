//! How a run holds its instance across external I/O: the lease taken before
//! the first call, and giving the instance back unchanged.

use uuid::Uuid;

use super::{Failure, Hold, Run};
use crate::engine::EngineError;
use crate::store::{self, InstanceRow, Lease, Records, WriteMode};

impl Run {
    /// Marks the instance busy before the first external call and commits, so
    /// no transaction stays open across I/O.
    pub(crate) async fn ensure_lease(&mut self) -> Result<(), Failure> {
        let lease = Lease {
            token: Uuid::new_v4(),
            until: self.eng.clock.now() + self.eng.settings.lease,
            transition: self.first_key(),
            job_id: self.job_id,
        };
        match std::mem::replace(&mut self.hold, Hold::Closed) {
            Hold::Leased(l) => self.hold = Hold::Leased(l),
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
                let mut conn = self.pool.acquire().await?;
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

    /// Leaves the instance as it was: roll back, or give the lease back.
    pub(super) async fn abandon(&mut self) -> Result<(), EngineError> {
        match std::mem::replace(&mut self.hold, Hold::Closed) {
            Hold::Fresh | Hold::Nested | Hold::Closed => Ok(()),
            Hold::Locked(tx) => {
                tx.rollback().await?;
                Ok(())
            }
            Hold::Leased(lease) => {
                let mut tx = self.pool.begin().await?;
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
        }
    }
}
