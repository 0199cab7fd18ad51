//! The two seams between orchestration (app) and execution.
//!
//! App asks for tasks through [`TaskExecutor`]; the job scheduler asks for
//! transitions through [`TransitionTrigger`]. In `vnext up` both are in-process
//! calls; with separate services each is an authenticated HTTP call. Both are
//! plain data in and out, so they serialize unchanged over the wire.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::TaskType;

/// A task to run, after its input mapping has been applied to its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInvocation {
    pub domain: String,
    pub flow: String,
    pub instance_id: Uuid,
    #[serde(default)]
    pub instance_key: Option<String>,
    pub task_key: String,
    pub task_version: String,
    pub task_type: TaskType,
    /// The task's config with the input mapping's result merged in.
    pub config: Value,
    /// The same for every attempt at this call (a retry by the error boundary,
    /// a re-run after a crash), different for any other call: HTTP tasks send
    /// it as `Idempotency-Key`. See [`idempotency_key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The idempotency key of a task call, from what identifies the call
/// independently of its attempt: the instance, the state the hop leaves, the
/// instance's data version when the hop began, the transition, and the task's
/// phase, order and key. A retry re-runs the hop from the same state and data
/// version (the failed hop is undone), so the key repeats; any hop that
/// changed data in between yields a new one. 32 hex digits.
pub fn idempotency_key(instance_id: Uuid, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(instance_id.as_bytes());
    for p in parts {
        // Length-prefixed, so no two part lists hash the same text.
        hash.update((p.len() as u64).to_be_bytes());
        hash.update(p.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

/// What a task produced. `ctx.response` in output mappings is this value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    #[serde(default)]
    pub status_code: Option<u16>,
    pub is_success: bool,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    pub duration_ms: f64,
    /// Set when the task failed; `is_success` is then false.
    #[serde(default)]
    pub error: Option<TaskError>,
}

/// Why a task failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{code}: {message}")]
pub struct TaskError {
    /// Matched by error boundaries: `Task:503` for an HTTP status, `Task:timeout`,
    /// `Task:connection`, `Task:config`, `Task:script`, ...
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl TaskError {
    pub fn new(code: impl Into<String>, message: impl Into<String>, retryable: bool) -> Self {
        Self { code: code.into(), message: message.into(), retryable }
    }
}

/// Runs tasks that touch the outside world.
pub trait TaskExecutor: Send + Sync + 'static {
    /// Runs one task. Failures are reported in the response, never as a panic.
    fn execute(&self, invocation: TaskInvocation) -> BoxFuture<'_, TaskResponse>;
}

/// Why the scheduler fires a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerOrigin {
    /// A scheduled transition's timer fired.
    Timer,
    /// The workflow timeout fired (`$timeout`).
    Timeout,
    /// An async (`sync=false`) request is due.
    Async,
    /// A task retry is due.
    Retry,
    /// A lease expired while the instance was busy.
    Lease,
}

/// A transition the job scheduler wants run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRequest {
    pub domain: String,
    pub flow: String,
    pub instance_id: Uuid,
    pub transition: String,
    pub origin: TriggerOrigin,
    /// The state the job was armed for; the job is stale when the instance left it.
    #[serde(default)]
    pub armed_state: Option<String>,
    #[serde(default)]
    pub body: Value,
    /// The job, marked done in the same transaction as the transition it fires.
    pub job_id: Uuid,
    pub attempt: i32,
}

/// What became of a triggered transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerOutcome {
    /// Ran and committed (the job is done).
    Applied,
    /// Nothing to do: the instance left the armed state, completed, or the job was
    /// already done. The job is closed without effect.
    Stale,
    /// The instance is busy; try again shortly.
    Busy,
}

/// A triggered transition failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct TriggerError {
    pub message: String,
    pub retryable: bool,
}

/// Runs transitions on behalf of the job scheduler.
pub trait TransitionTrigger: Send + Sync + 'static {
    fn trigger(&self, request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>>;
}
