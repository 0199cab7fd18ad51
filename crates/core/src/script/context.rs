//! The `ctx` map every script function receives (ARCHITECTURE.md §5).
//!
//! Build a [`ScriptContext`] with named fields and pass [`ScriptContext::to_value`]
//! to [`super::ScriptHost::call`]. The script gets its own copy: whatever it changes
//! in `ctx` is gone when the call returns.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::TriggerType;
use crate::traits::{TaskError, TaskResponse};

/// `ctx`: what a mapping, rule or timer script can read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScriptContext {
    /// The request's `attributes` object.
    pub body: Value,
    /// Request headers; keys are lower-cased when the context is built.
    #[serde(serialize_with = "lowercase_keys")]
    pub headers: Map<String, Value>,
    /// Query-string parameters.
    pub query: Map<String, Value>,
    pub instance: InstanceContext,
    /// The transition running; `()` in scripts when there is none.
    pub transition: Option<TransitionContext>,
    /// The task result an output mapping maps; `()` elsewhere.
    pub response: Option<ResponseContext>,
    /// Results of the tasks that already ran in this transition, by task key.
    pub responses: BTreeMap<String, ResponseContext>,
    pub runtime: RuntimeContext,
}

/// `ctx.instance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InstanceContext {
    pub id: Uuid,
    pub key: Option<String>,
    pub flow: String,
    pub domain: String,
    /// The current state key.
    pub state: String,
    /// The status code: `A` active, `B` busy, `C` completed, `F` faulted, `P` passive.
    pub status: String,
    /// The instance data before this step's changes.
    pub data: Value,
}

/// `ctx.transition`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionContext {
    pub key: String,
    /// The state left (absent for the start transition).
    pub from: Option<String>,
    /// The target state (`$self` already resolved to the current state).
    pub to: Option<String>,
    /// `manual`, `automatic`, `scheduled` or `event`.
    #[serde(serialize_with = "trigger_name")]
    pub trigger: TriggerType,
}

/// `ctx.response` and the entries of `ctx.responses`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseContext {
    pub status_code: Option<u16>,
    pub is_success: bool,
    pub data: Value,
    #[serde(serialize_with = "lowercase_keys")]
    pub headers: Map<String, Value>,
    /// `{code, message, retryable}` when the task failed.
    pub error: Option<TaskError>,
}

impl From<&TaskResponse> for ResponseContext {
    fn from(r: &TaskResponse) -> Self {
        ResponseContext {
            status_code: r.status_code,
            is_success: r.is_success,
            data: r.data.clone(),
            headers: r.headers.clone(),
            error: r.error.clone(),
        }
    }
}

/// `ctx.runtime`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuntimeContext {
    pub domain: String,
    /// The step's time, passed in by the caller; RFC 3339 in UTC in scripts.
    #[serde(serialize_with = "rfc3339")]
    pub now: DateTime<Utc>,
}

impl ScriptContext {
    /// The context as the JSON map scripts see.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a script context always serializes")
    }
}

fn trigger_name<S: Serializer>(trigger: &TriggerType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(trigger.name())
}

fn lowercase_keys<S: Serializer>(map: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    let lowered: Map<String, Value> = map.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect();
    lowered.serialize(s)
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn serializes_to_the_documented_shape() {
        let mut headers = Map::new();
        headers.insert("X-Request-Id".into(), json!("r1"));
        let ctx = ScriptContext {
            body: json!({"amount": 5}),
            headers,
            query: Map::new(),
            instance: InstanceContext {
                id: Uuid::nil(),
                key: Some("k1".into()),
                flow: "loan".into(),
                domain: "bank".into(),
                state: "draft".into(),
                status: "A".into(),
                data: json!({"a": 1}),
            },
            transition: Some(TransitionContext {
                key: "submit".into(),
                from: Some("draft".into()),
                to: Some("review".into()),
                trigger: TriggerType::Manual,
            }),
            response: None,
            responses: BTreeMap::from([(
                "check".to_string(),
                ResponseContext { status_code: Some(200), is_success: true, ..Default::default() },
            )]),
            runtime: RuntimeContext { domain: "bank".into(), now: Utc.with_ymd_and_hms(2025, 1, 31, 9, 0, 0).unwrap() },
        };
        assert_eq!(
            ctx.to_value(),
            json!({
                "body": {"amount": 5},
                "headers": {"x-request-id": "r1"},
                "query": {},
                "instance": {"id": "00000000-0000-0000-0000-000000000000", "key": "k1", "flow": "loan",
                             "domain": "bank", "state": "draft", "status": "A", "data": {"a": 1}},
                "transition": {"key": "submit", "from": "draft", "to": "review", "trigger": "manual"},
                "response": null,
                "responses": {"check": {"status_code": 200, "is_success": true, "data": null, "headers": {}, "error": null}},
                "runtime": {"domain": "bank", "now": "2025-01-31T09:00:00Z"},
            })
        );
    }
}
