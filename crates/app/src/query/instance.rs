//! One instance, by id or key, and the envelope the API answers with.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::FlowScope;
use crate::engine::{InstanceRef, InstanceSnapshot, InstanceStatus};
use crate::error::{ApiError, ErrorCode};

/// The columns every instance read selects, in [`InstanceRow`] order.
pub const COLUMNS: &str = "id, key, flow_version, status::text AS status, current_state, data, data_version, \
     data_version_no, etag, tags, has_incident, created_at, modified_at, completed_at";

/// An `instances` row.
#[derive(Debug, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: Uuid,
    pub key: Option<String>,
    pub flow_version: String,
    pub status: String,
    pub current_state: String,
    pub data: Value,
    pub data_version: String,
    pub data_version_no: i64,
    pub etag: String,
    pub tags: Vec<String>,
    pub has_incident: bool,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl InstanceRow {
    pub fn into_snapshot(self, scope: &FlowScope) -> InstanceSnapshot {
        let status = self
            .status
            .chars()
            .next()
            .and_then(InstanceStatus::from_code)
            .unwrap_or(InstanceStatus::Active);
        InstanceSnapshot {
            id: self.id,
            key: self.key,
            domain: scope.domain.to_string(),
            flow: scope.flow.to_string(),
            flow_version: self.flow_version,
            status,
            current_state: self.current_state,
            data: self.data,
            data_version: self.data_version,
            data_version_no: self.data_version_no,
            etag: self.etag,
            tags: self.tags,
            has_incident: self.has_incident,
            created_at: self.created_at,
            modified_at: self.modified_at,
            completed_at: self.completed_at,
        }
    }
}

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
    let by_id = format!("SELECT {COLUMNS} FROM {} WHERE id = $1", scope.table("instances"));
    let by_key = format!("SELECT {COLUMNS} FROM {} WHERE key = $1", scope.table("instances"));
    let row: Option<InstanceRow> = match instance {
        InstanceRef::Id(id) => {
            let found = sqlx::query_as(AssertSqlSafe(by_id.as_str())).bind(id).fetch_optional(&scope.pool).await.map_err(ApiError::database)?;
            match found {
                Some(row) => Some(row),
                None => sqlx::query_as(AssertSqlSafe(by_key.as_str()))
                    .bind(id.to_string())
                    .fetch_optional(&scope.pool)
                    .await
                    .map_err(ApiError::database)?,
            }
        }
        InstanceRef::Key(key) => {
            sqlx::query_as(AssertSqlSafe(by_key.as_str())).bind(key).fetch_optional(&scope.pool).await.map_err(ApiError::database)?
        }
    };
    row.map(|r| r.into_snapshot(scope)).ok_or_else(not_found)
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
