//! The instance as the API answers it (vNext's envelope, data under
//! `attributes`) and the path an answer points to. Read and write handlers
//! answer with the same shape.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::store::InstanceSnapshot;

/// Base path of an instance, for `Location` headers.
pub fn href(domain: &str, workflow: &str, id: Uuid) -> String {
    format!("/api/v1/{domain}/workflows/{workflow}/instances/{id}")
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
