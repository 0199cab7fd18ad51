//! Requests the engine accepts and what it answers.
//!
//! The instance types a request names and an answer carries belong to the
//! instance row (`store::instance_row`); they are re-exported here because they
//! are also the engine's vocabulary.

use serde_json::{Map, Value};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::roles::Roles;

pub use crate::store::{InstanceRef, InstanceSnapshot, InstanceStatus};

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
    /// The caller's roles, checked against the transition's `roles`.
    pub roles: Roles,
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
    /// The caller's roles, checked against the transition's `roles`.
    pub roles: Roles,
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
