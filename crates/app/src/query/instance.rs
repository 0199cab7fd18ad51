//! One instance, by id or key.

use super::FlowScope;
use crate::error::{ApiError, ErrorCode};
use crate::store::{self, InstanceRef, InstanceRow, InstanceSnapshot};

/// Loads an instance by id, or by key (a UUID-shaped key is tried as a key too).
///
/// # Errors
/// [`ErrorCode::InstanceNotFound`]; 503 when the database is unreachable.
pub async fn get(scope: &FlowScope, instance: &InstanceRef) -> Result<InstanceSnapshot, ApiError> {
    let not_found = || {
        ApiError::new(
            ErrorCode::InstanceNotFound,
            format!("workflow `{}` of domain `{}` has no instance `{instance}`", scope.flow, scope.domain),
        )
    };
    if !scope.has_schema {
        return Err(not_found());
    }
    let find = |r: InstanceRef| async move { store::instances::find(&scope.pool, &scope.flow, &r).await.map_err(ApiError::database) };
    let row: Option<InstanceRow> = match instance {
        InstanceRef::Id(id) => match find(InstanceRef::Id(*id)).await? {
            Some(row) => Some(row),
            None => find(InstanceRef::Key(id.to_string())).await?,
        },
        InstanceRef::Key(_) => find(instance.clone()).await?,
    };
    row.map(|r| r.into_snapshot(&scope.domain, &scope.flow)).ok_or_else(not_found)
}
