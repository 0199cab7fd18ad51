//! One instance, by id or key, and the envelope the API answers with.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::FlowScope;
use crate::store::{self, InstanceRef, InstanceRow, InstanceSnapshot};
use crate::error::{ApiError, ErrorCode};

/// Parses an `{instance}` path segment.
///
/// # Errors
/// [`ErrorCode::InstanceNotFound`] for text that cannot be a key.
pub fn instance_ref(raw: &str) -> Result<InstanceRef, ApiError> {
    if raw.is_empty() || raw.contains('\0') || raw.chars().count() > 200 {
        return Err(ApiError::new(
            ErrorCode::InstanceNotFound,
            format!("`{}` is neither an instance id nor a possible key", super::scope::printable(raw)),
        ));
    }
    Ok(InstanceRef::parse(raw))
}

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

/// `metadata` of the instance envelope.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub current_state: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub data_version: String,
    pub has_incident: bool,
}

/// The instance as the API shows it (vNext's envelope): data under `attributes`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceEnvelope {
    pub id: Uuid,
    pub key: Option<String>,
    pub flow: String,
    pub domain: String,
    pub flow_version: String,
    pub etag: String,
    pub tags: Vec<String>,
    pub metadata: Metadata,
    pub attributes: Value,
}

impl From<InstanceSnapshot> for InstanceEnvelope {
    fn from(s: InstanceSnapshot) -> Self {
        InstanceEnvelope {
            id: s.id,
            key: s.key,
            flow: s.flow,
            domain: s.domain,
            flow_version: s.flow_version,
            etag: s.etag,
            tags: s.tags,
            metadata: Metadata {
                current_state: s.current_state,
                status: s.status.code().to_string(),
                created_at: s.created_at,
                modified_at: s.modified_at,
                completed_at: s.completed_at,
                data_version: s.data_version,
                has_incident: s.has_incident,
            },
            attributes: s.data,
        }
    }
}
