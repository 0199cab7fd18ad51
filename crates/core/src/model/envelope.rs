//! The envelope every component file shares, and the component kinds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Extension, Function, SchemaComponent, Task, View, Workflow};

/// The six component flows a domain stores, each in its own `sys_*` schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ComponentKind {
    #[serde(rename = "sys-schemas")]
    Schema,
    #[serde(rename = "sys-tasks")]
    Task,
    #[serde(rename = "sys-views")]
    View,
    #[serde(rename = "sys-functions")]
    Function,
    #[serde(rename = "sys-extensions")]
    Extension,
    #[serde(rename = "sys-flows")]
    Workflow,
}

impl ComponentKind {
    /// All kinds in publish order: a kind only references kinds before it
    /// (workflows reference everything, functions and extensions reference tasks).
    pub const PUBLISH_ORDER: [ComponentKind; 6] = [
        ComponentKind::Schema,
        ComponentKind::Task,
        ComponentKind::View,
        ComponentKind::Function,
        ComponentKind::Extension,
        ComponentKind::Workflow,
    ];

    /// The component flow name used in files and references, e.g. `sys-tasks`.
    pub fn flow(self) -> &'static str {
        match self {
            ComponentKind::Schema => "sys-schemas",
            ComponentKind::Task => "sys-tasks",
            ComponentKind::View => "sys-views",
            ComponentKind::Function => "sys-functions",
            ComponentKind::Extension => "sys-extensions",
            ComponentKind::Workflow => "sys-flows",
        }
    }

    /// The PostgreSQL schema that stores this kind, e.g. `sys_tasks`.
    pub fn schema(self) -> &'static str {
        match self {
            ComponentKind::Schema => "sys_schemas",
            ComponentKind::Task => "sys_tasks",
            ComponentKind::View => "sys_views",
            ComponentKind::Function => "sys_functions",
            ComponentKind::Extension => "sys_extensions",
            ComponentKind::Workflow => "sys_flows",
        }
    }

    /// Parses a component flow name (`sys-tasks`); `None` for anything else.
    pub fn from_flow(flow: &str) -> Option<Self> {
        Self::PUBLISH_ORDER.into_iter().find(|k| k.flow() == flow)
    }
}

impl std::fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flow())
    }
}

/// The fields every component file carries around its `attributes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<A> {
    pub key: String,
    pub version: String,
    pub domain: String,
    pub flow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_version: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub attributes: A,
}

/// A parsed component of any kind.
// Parsed once per definition and cached, so the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Component {
    Schema(Envelope<SchemaComponent>),
    Task(Envelope<Task>),
    View(Envelope<View>),
    Function(Envelope<Function>),
    Extension(Envelope<Extension>),
    Workflow(Box<Envelope<Workflow>>),
}

impl Component {
    pub fn kind(&self) -> ComponentKind {
        match self {
            Component::Schema(_) => ComponentKind::Schema,
            Component::Task(_) => ComponentKind::Task,
            Component::View(_) => ComponentKind::View,
            Component::Function(_) => ComponentKind::Function,
            Component::Extension(_) => ComponentKind::Extension,
            Component::Workflow(_) => ComponentKind::Workflow,
        }
    }

    /// `(key, version, domain)` of whichever kind this is.
    pub fn identity(&self) -> (&str, &str, &str) {
        fn id<A>(e: &Envelope<A>) -> (&str, &str, &str) {
            (&e.key, &e.version, &e.domain)
        }
        match self {
            Component::Schema(e) => id(e),
            Component::Task(e) => id(e),
            Component::View(e) => id(e),
            Component::Function(e) => id(e),
            Component::Extension(e) => id(e),
            Component::Workflow(e) => id(e),
        }
    }

    /// Parses a component from JSON, choosing the attribute type by its `flow`.
    ///
    /// # Errors
    /// A message naming the problem (unknown flow, missing or mistyped field) in
    /// serde's words, with the path where serde reports one.
    pub fn from_json(value: &Value) -> Result<Component, String> {
        let flow = value
            .get("flow")
            .and_then(Value::as_str)
            .ok_or_else(|| "missing string field `flow`".to_string())?;
        let kind = ComponentKind::from_flow(flow).ok_or_else(|| {
            format!("unknown component flow `{flow}` (expected one of sys-flows, sys-tasks, sys-schemas, sys-views, sys-functions, sys-extensions)")
        })?;
        fn parse<A: serde::de::DeserializeOwned>(v: &Value) -> Result<Envelope<A>, String> {
            Envelope::<A>::deserialize(v).map_err(|e| e.to_string())
        }
        Ok(match kind {
            ComponentKind::Schema => Component::Schema(parse(value)?),
            ComponentKind::Task => Component::Task(parse(value)?),
            ComponentKind::View => Component::View(parse(value)?),
            ComponentKind::Function => Component::Function(parse(value)?),
            ComponentKind::Extension => Component::Extension(parse(value)?),
            ComponentKind::Workflow => Component::Workflow(Box::new(parse(value)?)),
        })
    }
}
