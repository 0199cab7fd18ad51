//! The read-only `ctx` map scripts receive (ARCHITECTURE.md §5), built as the
//! script host's [`ScriptContext`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use vnext_core::model::TriggerType;
use vnext_core::script::{InstanceContext, ResponseContext, RuntimeContext, ScriptContext, TransitionContext};
use vnext_init::queue::{First, JobBody, Sealer};

/// What the request brought: the same for every hop of a chain.
#[derive(Debug, Clone, Default)]
pub struct RequestData {
    /// The request's `attributes` (`null` when absent).
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

    /// The request a job body carries (open a sealed body first:
    /// [`JobBody::opened`]).
    pub fn from_job(body: &JobBody) -> RequestData {
        RequestData::new(body.attributes(), body.headers(), body.query())
    }

    /// The body of a job that runs `first` for this request later, its
    /// headers and query sealed.
    pub fn job_body(&self, first: &First, sealer: &Sealer) -> JobBody {
        JobBody::request(first, self.body.clone(), self.headers.clone(), self.query.clone()).sealed(sealer)
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
    pub id: Uuid,
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
    /// `None` for the start transition.
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub trigger: TriggerType,
}

/// Builds `ctx` as JSON.
pub fn build(
    req: &RequestData,
    instance: &InstanceView<'_>,
    hop: &HopView<'_>,
    response: Option<ResponseContext>,
    responses: &BTreeMap<String, ResponseContext>,
    now: DateTime<Utc>,
) -> Value {
    ScriptContext {
        body: if req.body.is_null() { Value::Object(Map::new()) } else { req.body.clone() },
        headers: req.headers.clone(),
        query: req.query.clone(),
        instance: InstanceContext {
            id: instance.id,
            key: instance.key.map(str::to_string),
            flow: instance.flow.to_string(),
            domain: instance.domain.to_string(),
            state: instance.state.to_string(),
            status: instance.status.to_string(),
            data: instance.data.clone(),
        },
        transition: Some(TransitionContext {
            key: hop.key.to_string(),
            from: hop.from.map(str::to_string),
            to: Some(hop.to.to_string()),
            trigger: hop.trigger,
        }),
        response,
        responses: responses.clone(),
        runtime: RuntimeContext { domain: instance.domain.to_string(), now },
    }
    .to_value()
}
