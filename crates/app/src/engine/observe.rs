//! What the engine tells operators: the metrics of every start, transition,
//! retry and job run, and one WARN line per fault, incident and lease
//! recovery (metric names: `vnext_telemetry::metrics`).
//!
//! Everything is recorded at the engine's outcome points (the entry points,
//! the trigger, the commit, lease recovery), never in the API handlers, so a
//! job-driven run counts like a request. A WARN line names the domain,
//! workflow, instance, transition, error code and trace id (the request's
//! `x-request-id`, or `job:<id>` for a job); it never carries instance data,
//! request bodies or headers.

use std::time::Instant;

use vnext_core::ident::{DomainName, FlowKey};
use vnext_telemetry::metrics::{self, Flow, UNKNOWN};

use super::writes::Pending;
use super::{EngineError, InstanceStatus, Outcome};
use crate::store::IncidentRow;

/// Times one start, transition, retry or job run and counts its outcome.
pub(crate) struct Measure {
    domain: String,
    workflow: String,
    kind: &'static str,
    started: Instant,
}

impl Measure {
    pub(crate) fn new(domain: &DomainName, flow: &FlowKey, kind: &'static str) -> Measure {
        Measure { domain: domain.as_str().to_string(), workflow: flow.as_str().to_string(), kind, started: Instant::now() }
    }

    /// Records a request's result.
    pub(crate) fn request(self, result: &Result<Outcome, EngineError>) {
        let outcome = match result {
            Ok(Outcome::Done(snapshot)) => status_outcome(snapshot.status),
            Ok(Outcome::Accepted { .. }) => "accepted",
            Err(e) => e.kind(),
        };
        // Names a client sent that are not published never become label values.
        let (domain, workflow) = match result {
            Err(EngineError::UnknownDomain(_)) => (UNKNOWN, UNKNOWN),
            Err(EngineError::UnknownFlow { .. } | EngineError::UnknownInstance { .. }) => (self.domain.as_str(), UNKNOWN),
            _ => (self.domain.as_str(), self.workflow.as_str()),
        };
        metrics::transition(Flow { domain, workflow }, self.kind, outcome, self.started.elapsed().as_secs_f64());
    }

    /// Records a job run's result (the instance as committed, or the error).
    pub(crate) fn job(self, result: Result<InstanceStatus, &EngineError>) {
        let outcome = match result {
            Ok(status) => status_outcome(status),
            Err(e) => e.kind(),
        };
        let flow = Flow { domain: &self.domain, workflow: &self.workflow };
        metrics::transition(flow, self.kind, outcome, self.started.elapsed().as_secs_f64());
    }
}

/// The outcome label of an instance that rests in `status`.
fn status_outcome(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Active => "active",
        InstanceStatus::Busy => "busy",
        InstanceStatus::Completed => "completed",
        InstanceStatus::Faulted => "faulted",
        InstanceStatus::Passive => "passive",
    }
}

/// A write was committed: each incident it opens (its own, its children's)
/// is a fault to count and log; resolved incidents are counted.
pub(crate) fn committed(domain: &DomainName, pending: &Pending, trace_id: &str) {
    for child in &pending.sub.children {
        committed(domain, child, trace_id);
    }
    let flow = Flow { domain: domain.as_str(), workflow: pending.flow.as_str() };
    for incident in &pending.records.incidents {
        fault(flow, pending.row.id, incident, trace_id);
    }
    if pending.records.resolve_incidents {
        metrics::incidents_resolved(flow);
    }
}

/// One fault: its metrics and its WARN line.
pub(crate) fn fault(flow: Flow<'_>, instance: uuid::Uuid, incident: &IncidentRow, trace_id: &str) {
    metrics::fault(flow, &incident.error_code);
    tracing::warn!(
        domain = flow.domain,
        workflow = flow.workflow,
        instance = %instance,
        transition = incident.transition_key.as_deref().unwrap_or("-"),
        task = incident.task_key.as_deref().unwrap_or("-"),
        state = incident.state.as_deref().unwrap_or("-"),
        status_code = incident.status_code,
        boundary = incident.boundary_action.as_deref().unwrap_or("-"),
        error_code = incident.error_code.as_str(),
        trace_id,
        "instance faulted; incident opened"
    );
}

/// The trace id of a run: the request's id when a request runs it, else the job's.
pub(crate) fn trace_id(headers: &serde_json::Map<String, serde_json::Value>, job: Option<uuid::Uuid>) -> String {
    match (headers.get("x-request-id").and_then(serde_json::Value::as_str), job) {
        (Some(id), _) => id.to_string(),
        (None, Some(job)) => format!("job:{job}"),
        (None, None) => "-".to_string(),
    }
}
