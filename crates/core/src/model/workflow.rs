//! Workflow definitions (`sys-flows`): states, transitions, task entries, timers,
//! error boundaries and subflows.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{Label, Reference, RoleGrant, ScriptCode, VersionStrategy};

/// Treats an explicit `null` like an absent field (vNext files write `"onEntries": null`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Declares a serde enum carried as an integer code in JSON.
macro_rules! int_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl TryFrom<i64> for $name {
            type Error = String;
            fn try_from(code: i64) -> Result<Self, String> {
                match code {
                    $($code => Ok($name::$variant),)+
                    other => Err(format!(concat!("unknown ", stringify!($name), " code {}"), other)),
                }
            }
        }

        impl From<$name> for i64 {
            fn from(v: $name) -> i64 {
                match v { $($name::$variant => $code),+ }
            }
        }
    };
}

int_enum!(
    /// What kind of state a state is.
    StateType { Initial = 1, Intermediate = 2, Final = 3, SubFlow = 4, Wizard = 5 }
);

int_enum!(
    /// Who fires a transition.
    TriggerType { Manual = 0, Automatic = 1, Scheduled = 2, Event = 3 }
);

impl StateType {
    /// The engine's name of the state type, as its wire format spells it.
    pub fn name(self) -> &'static str {
        match self {
            StateType::Initial => "initial",
            StateType::Intermediate => "intermediate",
            StateType::Final => "finish",
            StateType::SubFlow => "subFlow",
            StateType::Wizard => "wizard",
        }
    }
}

impl TriggerType {
    /// The engine's name of the trigger type (history, scripts, summaries).
    pub fn name(self) -> &'static str {
        match self {
            TriggerType::Manual => "manual",
            TriggerType::Automatic => "automatic",
            TriggerType::Scheduled => "scheduled",
            TriggerType::Event => "event",
        }
    }
}

int_enum!(
    /// What an error boundary rule does with a task failure.
    ErrorAction { Abort = 0, Retry = 1, Rollback = 2, Ignore = 3, Notify = 4, Log = 5 }
);

/// `triggerKind: 10` marks the default automatic transition of a state.
pub const TRIGGER_KIND_DEFAULT_AUTO: i64 = 10;

/// The `attributes` of a workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// `C` core, `F` flow, `S` subflow, `P` subprocess.
    #[serde(rename = "type")]
    pub flow_type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    pub start_transition: Transition,
    #[serde(default, deserialize_with = "nullable")]
    pub states: Vec<State>,
    #[serde(default)]
    pub timeout: Option<WorkflowTimeout>,
    #[serde(default, deserialize_with = "nullable")]
    pub functions: Vec<Reference>,
    #[serde(default, deserialize_with = "nullable")]
    pub features: Vec<Reference>,
    #[serde(default, deserialize_with = "nullable")]
    pub extensions: Vec<Reference>,
    #[serde(default, deserialize_with = "nullable")]
    pub shared_transitions: Vec<Transition>,
    #[serde(default)]
    pub cancel: Option<Transition>,
    #[serde(default)]
    pub exit: Option<Transition>,
    #[serde(default)]
    pub update_data: Option<Transition>,
    #[serde(default)]
    pub error_boundary: Option<ErrorBoundary>,
    /// Master schema: validates every data write of the instance.
    #[serde(default)]
    pub schema: Option<Reference>,
    #[serde(default)]
    pub query_roles: Option<Vec<RoleGrant>>,
    #[serde(default)]
    pub output: Option<ScriptCode>,
}

impl Workflow {
    pub fn state(&self, key: &str) -> Option<&State> {
        self.states.iter().find(|s| s.key == key)
    }

    pub fn initial_state(&self) -> Option<&State> {
        self.states.iter().find(|s| s.state_type == StateType::Initial)
    }
}

/// A state of the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub key: String,
    pub state_type: StateType,
    /// vNext sub type code (0 none, 1 success, 2 error, 3 terminated, ...); kept open
    /// because real files use codes outside the documented enum.
    #[serde(default)]
    pub sub_type: Option<i64>,
    #[serde(default)]
    pub version_strategy: VersionStrategy,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub view: Option<ViewBinding>,
    #[serde(default)]
    pub sub_flow: Option<SubFlow>,
    #[serde(default, deserialize_with = "nullable")]
    pub transitions: Vec<Transition>,
    #[serde(default, deserialize_with = "nullable")]
    pub on_entries: Vec<TaskEntry>,
    #[serde(default, deserialize_with = "nullable")]
    pub on_exits: Vec<TaskEntry>,
    #[serde(default)]
    pub error_boundary: Option<ErrorBoundary>,
    #[serde(default)]
    pub query_roles: Option<Vec<RoleGrant>>,
}

/// Any transition: start, state, shared, `cancel`, `exit` or `updateData`.
/// They share one shape; which fields are allowed depends on the kind and the
/// trigger type, and [`crate::validate`] checks that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub key: String,
    /// A state key or `$self`.
    pub target: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub version_strategy: VersionStrategy,
    pub trigger_type: TriggerType,
    /// 10 marks the default automatic transition.
    #[serde(default)]
    pub trigger_kind: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    /// JSON Schema (a `sys-schemas` reference) the payload must satisfy.
    #[serde(default)]
    pub schema: Option<Reference>,
    /// Condition of an automatic transition.
    #[serde(default)]
    pub rule: Option<ScriptCode>,
    /// When a scheduled transition fires.
    #[serde(default)]
    pub timer: Option<Timer>,
    #[serde(default)]
    pub view: Option<ViewBinding>,
    /// Maps the request body into instance data.
    #[serde(default)]
    pub mapping: Option<ScriptCode>,
    #[serde(default, deserialize_with = "nullable")]
    pub on_execution_tasks: Vec<TaskEntry>,
    #[serde(default)]
    pub roles: Option<Vec<RoleGrant>>,
    /// Shared transitions: the states they are offered in (empty = every state).
    #[serde(default, deserialize_with = "nullable")]
    pub available_in: Vec<AvailableIn>,
    #[serde(default)]
    pub annotations: Option<Value>,
    /// `S` synchronous or `A` asynchronous; overrides the request's `sync`.
    #[serde(default)]
    pub execution_type: Option<String>,
}

impl Transition {
    pub fn is_default_auto(&self) -> bool {
        self.trigger_type == TriggerType::Automatic
            && self.trigger_kind == Some(TRIGGER_KIND_DEFAULT_AUTO)
    }

    /// True when this transition targets the state it leaves (`$self`).
    pub fn targets_self(&self) -> bool {
        self.target == SELF_TARGET
    }
}

/// Target keyword for "stay in the current state".
pub const SELF_TARGET: &str = "$self";

/// An `availableIn` entry: a bare state key or `{state, roles}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AvailableIn {
    State(String),
    Entry {
        state: String,
        #[serde(default)]
        roles: Option<Vec<RoleGrant>>,
    },
}

impl AvailableIn {
    pub fn state(&self) -> &str {
        match self {
            AvailableIn::State(s) => s,
            AvailableIn::Entry { state, .. } => state,
        }
    }
}

/// When a scheduled transition fires: a rhai timer script, or one of the
/// declarative forms `{"duration": "PT8S"}`, `{"cron": "0 9 * * *", "timezone": "..."}`,
/// `{"at": "<RFC 3339>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timer {
    Declarative(DeclarativeTimer),
    Script(ScriptCode),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclarativeTimer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A task run from `onEntries`, `onExits` or `onExecutionTasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEntry {
    /// Entries of the same order run concurrently; orders run ascending.
    pub order: i64,
    pub task: Reference,
    /// Input/output mapping script.
    #[serde(default)]
    pub mapping: Option<ScriptCode>,
    #[serde(default)]
    pub error_boundary: Option<ErrorBoundary>,
    /// Where the task's response is stored when one task runs twice in one order.
    #[serde(default)]
    pub variable_key: Option<String>,
}

/// How a view is attached to a state or transition: a plain binding or rule-based.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ViewBinding {
    Plain(ViewRef),
    Rules {
        rules: Vec<ViewRule>,
        #[serde(default)]
        default: Option<ViewRef>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewRef {
    pub view: Reference,
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
    #[serde(default)]
    pub load_data: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewRule {
    pub rule: ScriptCode,
    pub view: Reference,
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
    #[serde(default)]
    pub load_data: Option<bool>,
}

/// A SubFlow state's child: `{type: "S", process, mapping}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubFlow {
    #[serde(rename = "type")]
    pub flow_type: String,
    pub process: Reference,
    #[serde(default)]
    pub mapping: Option<ScriptCode>,
    #[serde(default)]
    pub view_overrides: Option<Value>,
    #[serde(default)]
    pub overrides: Option<Value>,
}

/// The workflow-wide timeout: fires `$timeout` to `target` after `timer.duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTimeout {
    pub key: String,
    pub target: String,
    #[serde(default)]
    pub version_strategy: VersionStrategy,
    pub timer: TimeoutTimer,
    #[serde(default)]
    pub mapping: Option<ScriptCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeoutTimer {
    #[serde(default)]
    pub reset: Option<String>,
    /// ISO-8601 duration, e.g. `PT24H`.
    pub duration: String,
}

/// Error handling policy at task, state or workflow level.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBoundary {
    #[serde(default, deserialize_with = "nullable")]
    pub on_error: Vec<ErrorRule>,
    #[serde(default)]
    pub on_timeout: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRule {
    pub action: ErrorAction,
    #[serde(default, deserialize_with = "nullable")]
    pub error_types: Vec<String>,
    /// `Task:503`, `500`, `*`; empty matches every error.
    #[serde(default, deserialize_with = "nullable")]
    pub error_codes: Vec<String>,
    /// Transition run by Rollback and Notify.
    #[serde(default)]
    pub transition: Option<String>,
    /// Lower runs first; 100 when absent.
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicySpec>,
    #[serde(default)]
    pub log_only: Option<bool>,
}

/// `retryPolicy` as written in a definition. [`crate::retry`] turns it into delays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicySpec {
    /// ISO-8601 duration before the first retry.
    pub initial_delay: String,
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// 0 fixed, 1 exponential (default).
    #[serde(default)]
    pub backoff_type: Option<i64>,
    #[serde(default)]
    pub backoff_multiplier: Option<f64>,
    #[serde(default)]
    pub max_delay: Option<String>,
    #[serde(default)]
    pub use_jitter: Option<bool>,
}
