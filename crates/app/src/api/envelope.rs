//! The instance as the API answers it, in the engine's wire format: camelCase,
//! null members omitted, status codes as one-letter strings, ETags quoted.
//!
//! - [`InstanceEnvelope`]: `GET …/instances/{instance}` and each list item;
//! - [`CommandAnswer`]: the answer of a start or transition that ran (200).
//!
//! Our additions (never in place of an engine field): `metadata.dataVersion`
//! and, in a command answer, the instance's `metadata`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::store::InstanceSnapshot;

/// Base path of an instance, for `Location` headers.
pub fn href(domain: &str, workflow: &str, id: Uuid) -> String {
    format!("/api/v1/{domain}/workflows/{workflow}/instances/{id}")
}

/// An ETag as the body and headers carry it: quoted.
pub fn quoted(tag: &str) -> String {
    format!("\"{tag}\"")
}

/// The data ETag (`entityEtag`, header `X-Entity-ETag`, unquoted): changes
/// exactly when the instance's data changes, unlike the instance ETag, which
/// every write changes.
pub fn entity_etag(s: &InstanceSnapshot) -> String {
    format!("{}-{}", s.id.simple(), s.data_version_no)
}

/// `metadata.incident`: whether an incident is open, and where to read them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentLinks {
    pub has_active_incident: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<Href>,
    pub history: Href,
}

/// `{href}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Href {
    pub href: String,
}

/// `metadata` of the instance envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub current_state: String,
    /// The state a client acts on; the current state (a parent parked on a
    /// subflow is read through the state function's `correlations`).
    pub effective_state: String,
    pub status: String,
    pub effective_status: String,
    /// `R`: a root instance; `S`: a subflow child.
    #[serde(rename = "type")]
    pub instance_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Seconds from creation to completion, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub incident: IncidentLinks,
    /// Ours: the data version (`1.0.2`).
    pub data_version: String,
}

impl Metadata {
    fn of(s: &InstanceSnapshot) -> Metadata {
        let base = href(&s.domain, &s.flow, s.id);
        let status = s.status.code().to_string();
        Metadata {
            current_state: s.current_state.clone(),
            effective_state: s.current_state.clone(),
            effective_status: status.clone(),
            status,
            instance_type: if s.is_subflow { "S" } else { "R" }.to_string(),
            completed_at: s.completed_at,
            duration: s.completed_at.map(|at| (at - s.created_at).num_milliseconds() as f64 / 1000.0),
            created_at: s.created_at,
            modified_at: s.modified_at,
            incident: IncidentLinks {
                has_active_incident: s.has_incident,
                active: s.has_incident.then(|| Href { href: format!("{base}/incidents/active") }),
                history: Href { href: format!("{base}/incidents") },
            },
            data_version: s.data_version.clone(),
        }
    }
}

/// The instance as `GET …/{instance}` answers it (and each list item, without
/// `eTag`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceEnvelope {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub flow: String,
    pub domain: String,
    pub flow_version: String,
    #[serde(rename = "eTag", skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub entity_etag: String,
    pub tags: Vec<String>,
    pub metadata: Metadata,
    pub attributes: Value,
    /// The extensions that ran for this read, by key (see `engine::extension`).
    pub extensions: Map<String, Value>,
}

impl From<InstanceSnapshot> for InstanceEnvelope {
    fn from(s: InstanceSnapshot) -> Self {
        InstanceEnvelope {
            id: s.id,
            etag: Some(quoted(&s.etag)),
            entity_etag: quoted(&entity_etag(&s)),
            metadata: Metadata::of(&s),
            key: s.key,
            flow: s.flow,
            domain: s.domain,
            flow_version: s.flow_version,
            tags: s.tags,
            attributes: s.data,
            extensions: Map::new(),
        }
    }
}

impl InstanceEnvelope {
    /// The list item form: the envelope without `eTag`.
    pub fn list_item(s: InstanceSnapshot) -> Self {
        InstanceEnvelope { etag: None, ..InstanceEnvelope::from(s) }
    }
}

/// The answer of a start or transition that ran to a rest point (200), and
/// of one accepted to run later (202: `id`, `key`, `status` only).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAnswer {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    #[serde(rename = "eTag", skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
    /// Ours: where the instance is now, so a client need not read it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

impl CommandAnswer {
    /// A command that ran (sync).
    pub fn ran(s: InstanceSnapshot) -> CommandAnswer {
        let status = s.status.code().to_string();
        CommandAnswer {
            id: s.id,
            effective_status: Some(status.clone()),
            status,
            etag: Some(quoted(&s.etag)),
            entity_etag: Some(quoted(&entity_etag(&s))),
            extensions: Some(Map::new()),
            metadata: Some(Metadata::of(&s)),
            key: s.key,
            attributes: Some(s.data),
        }
    }

    /// A command accepted to run later (async).
    pub fn accepted(id: Uuid, key: Option<String>, status: char) -> CommandAnswer {
        CommandAnswer {
            id,
            key,
            status: status.to_string(),
            effective_status: None,
            attributes: None,
            etag: None,
            entity_etag: None,
            extensions: None,
            metadata: None,
        }
    }
}
