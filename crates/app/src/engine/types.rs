//! Requests the engine accepts and what it answers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};

/// An instance named by id or by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceRef {
    Id(Uuid),
    Key(String),
}

impl InstanceRef {
    /// A UUID names an instance by id; anything else is its key.
    pub fn parse(s: &str) -> InstanceRef {
        match Uuid::parse_str(s) {
            Ok(id) => InstanceRef::Id(id),
            Err(_) => InstanceRef::Key(s.to_string()),
        }
    }
}

impl std::fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstanceRef::Id(id) => write!(f, "{id}"),
            InstanceRef::Key(k) => f.write_str(k),
        }
    }
}

/// Start a new instance (or return the existing one with the same key).
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub domain: DomainName,
    pub flow: FlowKey,
    /// Version selector (`1.2.3`, `1`, `1.2`, `latest`); latest when absent.
    pub version: Option<String>,
    pub key: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Value,
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
    pub sync: bool,
}

/// Run a transition on an instance.
#[derive(Debug, Clone)]
pub struct TransitionRequest {
    pub domain: DomainName,
    pub flow: FlowKey,
    pub instance: InstanceRef,
    pub transition: String,
    pub key: Option<String>,
    pub attributes: Value,
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
    pub sync: bool,
}

/// Re-run the transition that faulted an instance.
#[derive(Debug, Clone)]
pub struct RetryRequest {
    pub domain: DomainName,
    pub flow: FlowKey,
    pub instance: InstanceRef,
    pub sync: bool,
}

/// What a request produced.
// The snapshot is returned once per request; boxing it buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Ran to a rest point (sync): the instance as committed.
    Done(InstanceSnapshot),
    /// Recorded as a job (async): runs shortly.
    Accepted { id: Uuid, status: InstanceStatus },
}

/// Instance status, with vNext's one-letter codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum InstanceStatus {
    Active,
    Busy,
    Completed,
    Faulted,
    Passive,
}

impl InstanceStatus {
    pub fn code(self) -> char {
        match self {
            InstanceStatus::Active => 'A',
            InstanceStatus::Busy => 'B',
            InstanceStatus::Completed => 'C',
            InstanceStatus::Faulted => 'F',
            InstanceStatus::Passive => 'P',
        }
    }

    pub fn from_code(c: char) -> Option<InstanceStatus> {
        Some(match c {
            'A' => InstanceStatus::Active,
            'B' => InstanceStatus::Busy,
            'C' => InstanceStatus::Completed,
            'F' => InstanceStatus::Faulted,
            'P' => InstanceStatus::Passive,
            _ => return None,
        })
    }

    /// Completed and faulted instances take no transitions (retry aside).
    pub fn is_finished(self) -> bool {
        matches!(self, InstanceStatus::Completed | InstanceStatus::Faulted)
    }
}

/// An instance as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSnapshot {
    pub id: Uuid,
    pub key: Option<String>,
    pub domain: String,
    pub flow: String,
    pub flow_version: String,
    pub status: InstanceStatus,
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
