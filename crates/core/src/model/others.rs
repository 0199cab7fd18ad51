//! Schemas, views, functions and extensions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Label, RoleGrant, ScriptCode, TaskEntry};
use super::workflow::nullable;

/// The `attributes` of a `sys-schemas` component: a JSON Schema and what it is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaComponent {
    /// `workflow`, `task`, `function`, `view`, `schema`, `extension` or `headers`.
    #[serde(rename = "type")]
    pub schema_type: String,
    /// The JSON Schema document (draft 2020-12 unless it says otherwise).
    pub schema: Value,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
}

/// The `attributes` of a `sys-views` component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// 1 JSON, 2 HTML, 3 Markdown, 4 DeepLink, 5 Http, 6 URN.
    #[serde(rename = "type")]
    pub view_type: i64,
    pub content: Value,
    #[serde(default)]
    pub display: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub renderer: Option<Value>,
}

/// The `attributes` of a `sys-functions` component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// `D` domain, `F` flow, `I` instance.
    pub scope: String,
    /// Legacy single task.
    #[serde(default)]
    pub task: Option<TaskEntry>,
    #[serde(default, deserialize_with = "nullable")]
    pub on_execution_tasks: Vec<TaskEntry>,
    #[serde(default)]
    pub output: Option<ScriptCode>,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub verbs: Option<Vec<String>>,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// Who may call the function (deny wins over allow).
    #[serde(default)]
    pub roles: Option<Vec<RoleGrant>>,
    /// Answer with the last task's response data as it came, not `{data: ...}`.
    #[serde(default)]
    pub raw_response: bool,
    #[serde(default)]
    pub cache: Option<FunctionCache>,
}

/// A function's response cache: answers are reused for `ttl_in_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCache {
    /// A fixed cache key; without it the key is the verb and the request.
    #[serde(default)]
    pub key: Option<String>,
    /// Null or not positive: the answer is kept until the process restarts.
    #[serde(default)]
    pub ttl_in_seconds: Option<i64>,
}

/// The `attributes` of a `sys-extensions` component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    /// 1 Global, 2 GlobalAndRequested, 3 DefinedFlows, 4 DefinedFlowAndRequested.
    #[serde(rename = "type")]
    pub extension_type: i64,
    /// 1 GetInstance, 2 GetAllInstances, 3 Everywhere.
    pub scope: i64,
    pub task: TaskEntry,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
}
