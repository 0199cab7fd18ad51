//! Task definitions (`sys-tasks`): a type code and its config.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The vNext task type codes ("1" to "20", strings in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TaskType {
    DaprHttpEndpoint,
    DaprBinding,
    DaprService,
    DaprPubSub,
    HumanTask,
    Http,
    Script,
    Condition,
    Timer,
    Notification,
    Start,
    DirectTrigger,
    GetInstanceData,
    SubProcess,
    GetInstances,
    Soap,
    StateStore,
    CacheAside,
    GetInstance,
    DaprConversation,
}

impl TaskType {
    const ALL: [TaskType; 20] = [
        TaskType::DaprHttpEndpoint,
        TaskType::DaprBinding,
        TaskType::DaprService,
        TaskType::DaprPubSub,
        TaskType::HumanTask,
        TaskType::Http,
        TaskType::Script,
        TaskType::Condition,
        TaskType::Timer,
        TaskType::Notification,
        TaskType::Start,
        TaskType::DirectTrigger,
        TaskType::GetInstanceData,
        TaskType::SubProcess,
        TaskType::GetInstances,
        TaskType::Soap,
        TaskType::StateStore,
        TaskType::CacheAside,
        TaskType::GetInstance,
        TaskType::DaprConversation,
    ];

    /// The code as written in JSON, e.g. `"6"` for HTTP.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|t| *t == self).map(|i| i as u8 + 1).unwrap_or(0)
    }

    pub fn from_code(code: &str) -> Option<Self> {
        let n: usize = code.trim().parse().ok()?;
        Self::ALL.get(n.checked_sub(1)?).copied()
    }

    /// Human name used in diagnostics and the invoke API path.
    pub fn name(self) -> &'static str {
        match self {
            TaskType::DaprHttpEndpoint => "dapr-http-endpoint",
            TaskType::DaprBinding => "dapr-binding",
            TaskType::DaprService => "dapr-service",
            TaskType::DaprPubSub => "dapr-pubsub",
            TaskType::HumanTask => "human",
            TaskType::Http => "http",
            TaskType::Script => "script",
            TaskType::Condition => "condition",
            TaskType::Timer => "timer",
            TaskType::Notification => "notification",
            TaskType::Start => "start",
            TaskType::DirectTrigger => "direct-trigger",
            TaskType::GetInstanceData => "get-instance-data",
            TaskType::SubProcess => "subprocess",
            TaskType::GetInstances => "get-instances",
            TaskType::Soap => "soap",
            TaskType::StateStore => "state-store",
            TaskType::CacheAside => "cache-aside",
            TaskType::GetInstance => "get-instance",
            TaskType::DaprConversation => "dapr-conversation",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Task types this runtime executes. Publishing any other type is an error,
    /// never a silent accept.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            TaskType::Http
                | TaskType::Script
                | TaskType::Start
                | TaskType::DirectTrigger
                | TaskType::GetInstanceData
                | TaskType::GetInstance
        )
    }
}

impl TaskType {
    /// Why a type will never run here, for the types that need a Dapr
    /// sidecar's own building blocks rather than an HTTP call.
    pub fn never_supported_because(self) -> Option<&'static str> {
        match self {
            TaskType::DaprBinding => Some(
                "Dapr input/output bindings are components of a Dapr sidecar, which this runtime does not run; \
                 call the bound system with an HTTP task (type \"6\") instead",
            ),
            TaskType::DaprConversation => Some(
                "the Dapr conversation API is served by a Dapr sidecar's LLM components, which this runtime does not run; \
                 call the model's HTTP API with an HTTP task (type \"6\") instead",
            ),
            _ => None,
        }
    }
}

impl TryFrom<String> for TaskType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TaskType::from_code(&s).ok_or_else(|| format!("unknown task type `{s}` (expected \"1\" to \"20\")"))
    }
}

impl From<TaskType> for String {
    fn from(t: TaskType) -> String {
        t.code().to_string()
    }
}

/// The `attributes` of a task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Type-specific configuration; see the typed views below.
    #[serde(default)]
    pub config: Value,
}

/// Config of an HTTP task (type 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpTaskConfig {
    /// May hold `{placeholders}` that the input mapping fills.
    pub url: String,
    pub method: String,
    #[serde(default)]
    pub headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Seconds before the call is abandoned (30 when absent).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub validate_ssl: Option<bool>,
    /// Status patterns treated as success: `"404"`, `"4xx"`, `"40x"`.
    #[serde(default)]
    pub accepted_status_codes: Option<Vec<String>>,
}

/// Config of the instance tasks: Start (11), DirectTrigger (12),
/// GetInstanceData (13) and GetInstance (19).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTaskConfig {
    pub domain: String,
    pub flow: String,
    /// DirectTrigger: the transition to run.
    #[serde(default)]
    pub transition_name: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub sync: Option<bool>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}
