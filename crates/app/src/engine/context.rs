//! The read-only `ctx` map scripts receive (ARCHITECTURE.md §5).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use vnext_core::traits::TaskResponse;

/// What the request brought: the same for every hop of a chain.
#[derive(Debug, Clone, Default)]
pub struct RequestData {
    /// The request's `attributes` (an object, `{}` when absent).
    pub body: Value,
    /// Header names lower-cased.
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
}

impl RequestData {
    pub fn new(body: Value, headers: Map<String, Value>, query: Map<String, Value>) -> RequestData {
        let headers = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        RequestData { body, headers, query }
    }

    /// Who asked, when the caller says so.
    pub fn actor(&self) -> Option<String> {
        ["x-actor", "x-user-id", "user_reference"]
            .iter()
            .find_map(|h| self.headers.get(*h).and_then(Value::as_str).map(str::to_string))
    }
}

/// The instance fields scripts see.
pub struct InstanceView<'a> {
    pub id: &'a uuid::Uuid,
    pub key: Option<&'a str>,
    pub flow: &'a str,
    pub domain: &'a str,
    pub state: &'a str,
    pub status: char,
    pub data: &'a Value,
}

/// The hop scripts run in.
pub struct HopView<'a> {
    pub key: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub trigger: &'a str,
}

/// Builds `ctx`.
pub fn build(
    req: &RequestData,
    instance: &InstanceView<'_>,
    hop: &HopView<'_>,
    response: Option<Value>,
    responses: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "body": req.body,
        "headers": req.headers,
        "query": req.query,
        "instance": {
            "id": instance.id.to_string(),
            "key": instance.key,
            "flow": instance.flow,
            "domain": instance.domain,
            "state": instance.state,
            "status": instance.status.to_string(),
            "data": instance.data,
        },
        "transition": {"key": hop.key, "from": hop.from, "to": hop.to, "trigger": hop.trigger},
        "response": response.unwrap_or(Value::Null),
        "responses": responses,
        "runtime": {"domain": instance.domain, "now": now.to_rfc3339()},
    })
}

/// `ctx.response` for a task result: `status_code`, `is_success`, `data`, `headers`, `error`.
pub fn response_value(r: &TaskResponse) -> Value {
    json!({
        "status_code": r.status_code,
        "is_success": r.is_success,
        "data": r.data,
        "headers": r.headers,
        "error": r.error.as_ref().map(|e| json!({"code": e.code, "message": e.message, "retryable": e.retryable})),
    })
}
