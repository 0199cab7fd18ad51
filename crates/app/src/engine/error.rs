//! What can go wrong when the engine runs a request.

use serde::Serialize;
use vnext_init::InitError;
use vnext_core::machine::GateError;
use vnext_init::db::DbError;
use vnext_init::unavailable::is_unavailable;

/// One way a payload failed its transition's JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadError {
    /// JSON pointer into the payload (`/amount`); empty for the whole payload.
    pub pointer: String,
    pub message: String,
}

/// Every engine failure says what and where. The API maps each variant to a
/// status code and a stable error code; only [`EngineError::Internal`] is a 500.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// 404: the domain is not registered.
    #[error("unknown domain `{0}`")]
    UnknownDomain(String),
    /// 404: no published workflow matches.
    #[error("unknown workflow `{flow}`{}", version.as_ref().map(|v| format!(" (version `{v}`)")).unwrap_or_default())]
    UnknownFlow { flow: String, version: Option<String> },
    /// 404: no instance with this id or key.
    #[error("workflow `{flow}` has no instance `{instance}`")]
    UnknownInstance { flow: String, instance: String },
    /// 404: the workflow defines no transition with this key.
    #[error("transition `{transition}` is not defined (current state `{state}`)")]
    UnknownTransition { transition: String, state: String },
    /// 409: the transition exists but not in the current state.
    #[error("transition `{transition}` is not available in state `{state}` (available: {})", available.join(", "))]
    NotAvailable { transition: String, state: String, available: Vec<String> },
    /// 422: the payload failed the transition's schema.
    #[error("payload of transition `{transition}` is invalid: {}", errors.iter().map(|e| format!("{}: {}", if e.pointer.is_empty() { "/" } else { &e.pointer }, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidPayload { transition: String, errors: Vec<PayloadError> },
    /// 403: the caller's roles do not allow the transition (its `roles`, or
    /// the `availableIn` entry of the current state).
    #[error("the caller's roles do not allow transition `{transition}`{}", state.as_ref().map(|s| format!(" in state `{s}`")).unwrap_or_default())]
    RoleDenied { transition: String, state: Option<String> },
    /// 409: another transition holds the instance.
    #[error("instance `{instance}` is busy with another transition")]
    Busy { instance: String },
    /// 409: the instance is completed or faulted.
    #[error("instance `{instance}` is finished (status {status})")]
    Finished { instance: String, status: String },
    /// 409: retry was asked for an instance that is not faulted.
    #[error("instance `{instance}` is not faulted; only faulted instances can be retried")]
    NotFaulted { instance: String },
    /// 422: automatic transitions kept firing past the configured depth.
    #[error("automatic transitions chained more than {depth} times (last state `{state}`); nothing was committed")]
    ChainTooDeep { depth: u32, state: String },
    /// 422: a script failed or was stopped.
    #[error("script {location} failed: {message}")]
    Script { location: String, message: String },
    /// 503: a script of the domain could not get a script thread within
    /// `runtime.script_queue_timeout_ms` (its domain's calls or all threads were
    /// busy); it did not run, nothing was committed, and the request may be retried.
    #[error("scripts of domain `{domain}` are busy: no script thread within {waited_ms} ms; retry shortly")]
    ScriptsBusy { domain: String, waited_ms: u64 },
    /// 409: the published definition cannot run (missing reference, bad schema, ...).
    #[error("definition problem: {message}")]
    Definition { message: String },
    /// 409: a transition sent `key` for an instance without one, and another
    /// instance of the workflow already has that key.
    #[error("key `{key}` is already used by another instance of workflow `{flow}`")]
    KeyTaken { flow: String, key: String },
    /// 422: the definition asks for something this runtime does not do yet
    /// (a cross-domain subflow, a SubProcess started by a state).
    #[error("not supported: {message}")]
    Unsupported { message: String },
    /// 503: the database is unreachable or has no connection to spare right
    /// now; nothing was committed and the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or an infrastructure failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// Retrying later may succeed (a job is rescheduled rather than failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, EngineError::Internal(_) | EngineError::Unavailable(_) | EngineError::ScriptsBusy { .. })
    }

    /// A short, stable name of the failure for metric labels (`not-available`,
    /// `invalid-payload`, ...): a fixed set, whatever the message says.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::UnknownDomain(_) => "unknown-domain",
            EngineError::UnknownFlow { .. } => "unknown-workflow",
            EngineError::UnknownInstance { .. } => "unknown-instance",
            EngineError::UnknownTransition { .. } => "unknown-transition",
            EngineError::NotAvailable { .. } => "not-available",
            EngineError::InvalidPayload { .. } => "invalid-payload",
            EngineError::RoleDenied { .. } => "role-denied",
            EngineError::Busy { .. } => "busy",
            EngineError::Finished { .. } => "finished",
            EngineError::NotFaulted { .. } => "not-faulted",
            EngineError::ChainTooDeep { .. } => "chain-too-deep",
            EngineError::Script { .. } => "script-failed",
            EngineError::ScriptsBusy { .. } => "scripts-busy",
            EngineError::Definition { .. } => "definition-unusable",
            EngineError::KeyTaken { .. } => "key-taken",
            EngineError::Unsupported { .. } => "unsupported",
            EngineError::Unavailable(_) => "unavailable",
            EngineError::Internal(_) => "internal",
        }
    }

    /// A failure of the init layer while doing `context`.
    pub(crate) fn from_init(context: &str, e: InitError) -> EngineError {
        // A server that refuses the connection (a domain role it does not
        // know, a missing database) cannot serve either: retry later.
        let unavailable = e.is_unavailable() || matches!(&e, InitError::Database(db) if matches!(**db, DbError::Connect { .. }));
        if unavailable { EngineError::Unavailable(format!("{context}: {e}")) } else { EngineError::Internal(format!("{context}: {e}")) }
    }
}

impl From<sqlx::Error> for EngineError {
    /// An outage ([`vnext_init::unavailable`]) is `Unavailable`; anything else a bug.
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) { EngineError::Unavailable(e.to_string()) } else { EngineError::Internal(format!("database: {e}")) }
    }
}

/// A transition the state machine refused, as the engine reports it.
pub(crate) fn gate_error(e: GateError) -> EngineError {
    match e {
        GateError::Unknown { transition, state } => EngineError::UnknownTransition { transition, state },
        GateError::NotAvailable { transition, state, available } => EngineError::NotAvailable { transition, state, available },
        GateError::BadTarget { transition, target } => EngineError::Definition {
            message: format!("transition `{transition}` targets `{target}`, which is not a state"),
        },
        GateError::UnknownState { state } => EngineError::Definition {
            message: format!("the instance is in `{state}`, which its workflow version does not define"),
        },
    }
}

pub(crate) fn script_error(location: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Script { location: location.to_string(), message: e.to_string() }
}
