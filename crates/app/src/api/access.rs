//! Reads under the workflow model's `queryRoles` (see `vnext_core::roles`).
//!
//! Reading one instance (the instance, its functions, history and incidents)
//! needs the caller's roles to pass the `queryRoles` of the instance's current
//! state (else the workflow's), in the workflow version the instance is
//! pinned to; otherwise 403 `auth.role-denied`. Instance lists leave out the
//! instances the caller may not read (in SQL, so pages and counts stay true).
//!
//! Callers without roles to check (admin keys and identities, open
//! development runs) skip all of this and load no definition.

use std::collections::BTreeSet;

use serde_json::Value;
use vnext_core::model::ComponentKind;
use vnext_core::roles::Roles;

use super::AppState;
use crate::engine::InstanceSnapshot;
use crate::error::{ApiError, ErrorCode};
use crate::query::FlowScope;

/// Refuses reading `instance` when the caller's `roles` do not pass its `queryRoles`.
///
/// # Errors
/// 403 `auth.role-denied`; the definition's load errors.
pub async fn check_read(state: &AppState, roles: &Roles, scope: &FlowScope, instance: &InstanceSnapshot) -> Result<(), ApiError> {
    if roles.is_unrestricted() {
        return Ok(());
    }
    let mut conn = vnext_init::db::acquire(&scope.pool).await.map_err(ApiError::database)?;
    let def = state.engine.definitions().get(&mut conn, &scope.domain, &scope.flow, &instance.flow_version).await?;
    if roles.may_read(&def.workflow, &instance.current_state) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::AuthRoleDenied,
        format!("the caller's roles do not allow reading instances of `{}` in state `{}` (queryRoles)", scope.flow, instance.current_state),
    )
    .with_extra("state", Value::String(instance.current_state.clone())))
}

/// The `(flow version, state)` pairs the caller may read, over every
/// published version of the workflow; `None` when it may read them all.
///
/// # Errors
/// The definitions' load errors.
pub async fn readable_states(state: &AppState, roles: &Roles, scope: &FlowScope) -> Result<Option<Vec<(String, String)>>, ApiError> {
    if roles.is_unrestricted() {
        return Ok(None);
    }
    let versions: BTreeSet<String> = vnext_init::components::inventory(&scope.pool)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|(kind, _, key, _)| *kind == ComponentKind::Workflow && key == scope.flow.as_str())
        .map(|(_, _, _, version)| version)
        .collect();
    let mut conn = vnext_init::db::acquire(&scope.pool).await.map_err(ApiError::database)?;
    let mut pairs = Vec::new();
    let mut restricted = false;
    for version in versions {
        let def = state.engine.definitions().get(&mut conn, &scope.domain, &scope.flow, &version).await?;
        let readable = match roles.readable_states(&def.workflow) {
            Some(states) => {
                restricted = true;
                states
            }
            None => def.workflow.states.iter().map(|s| s.key.clone()).collect(),
        };
        pairs.extend(readable.into_iter().map(|s| (version.clone(), s)));
    }
    Ok(restricted.then_some(pairs))
}
