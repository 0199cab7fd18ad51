//! Start, transition and retry: one path from the request to the answer
//! ([`run`]), their bodies and their answers.
//!
//! Order of checks, the same for all three: domain and workflow, what the
//! command reads from its own path and query (instance, transition, version),
//! `sync`, then the body.
//!
//! Body: `{key?, tags?, attributes?}` (vNext's standard payload). As in vNext, a
//! free-form object that is not in that shape is taken whole as `attributes`;
//! the header `x-vnext-payload-mode: standard|raw` forces either reading.
//!
//! Answer, by what actually ran (a transition's or the workflow's
//! `executionType` overrides `sync`): 200 with the engine's command answer
//! ([`CommandAnswer`]: `id, key?, status, effectiveStatus, attributes, eTag,
//! entityEtag, extensions`) and its `ETag`; or 202 `{id, key?, status}` with a
//! `Location` to poll. A 200 whose instance is still busy (the run goes on in
//! the background) also carries a `Location` to poll and `Retry-After`. Retry always answers 200 `{id, status, retriedTransitionId}`.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tracing::Instrument;
use vnext_core::ident::{DomainName, FlowKey};

use super::audit::AuditNote;
use super::body::JsonBody;
use super::envelope::{CommandAnswer, href};
use super::params::{Params, domain_name, flow_key, headers_map};
use super::{AppState, etag_header};
use crate::engine::{Engine, EngineError, InstanceStatus, Outcome, RetryRequest, StartRequest, TransitionRequest};
use crate::error::{ApiError, ErrorCode, FieldError};

/// A command, ready for the engine.
#[derive(Debug)]
pub enum Command {
    Start(StartRequest),
    Transition(TransitionRequest),
    Retry(RetryRequest),
}

impl Command {
    async fn run(self, engine: Engine) -> Result<Outcome, EngineError> {
        match self {
            Command::Start(r) => engine.start(r).await,
            Command::Transition(r) => engine.transition(r).await,
            Command::Retry(r) => engine.retry(r).await,
        }
    }
}

/// What every command reads from its request.
#[derive(Debug)]
pub struct CommandInput {
    pub domain: DomainName,
    pub flow: FlowKey,
    pub sync: bool,
    pub body: CommandBody,
    /// The request's headers and query string, as the engine passes them to scripts.
    pub headers: Map<String, Value>,
    pub query: Map<String, Value>,
}

/// The parts of an HTTP request a command reads.
#[derive(Clone, Copy)]
pub struct CommandRequest<'a> {
    /// The `{domain}` and `{workflow}` path segments.
    pub domain: &'a str,
    pub workflow: &'a str,
    pub params: &'a Params,
    pub headers: &'a HeaderMap,
    pub body: &'a JsonBody,
    /// Set for a retry: the key of the transition it re-runs, answered as
    /// `retriedTransitionId`.
    pub retried: Option<&'a str>,
}

/// Runs a command from its HTTP request to its answer, in a span named by
/// `kind` (the engine counts it in the metrics). `prepare` checks what only this command reads (its other path
/// segments and parameters) and returns how to build its request from the
/// [`CommandInput`].
///
/// # Errors
/// The first check that fails, or the engine's error.
pub async fn run<B>(
    state: &AppState,
    kind: &'static str,
    req: CommandRequest<'_>,
    prepare: impl FnOnce(&FlowKey) -> Result<B, ApiError>,
) -> Result<Response, ApiError>
where
    B: FnOnce(CommandInput) -> Command,
{
    // The command's span is the parent of the engine's run span.
    let span = tracing::info_span!("command", kind, domain = req.domain, workflow = req.workflow);
    async {
        let domain = domain_name(req.domain)?;
        let flow = flow_key(req.workflow)?;
        let build = prepare(&flow)?;
        let sync = req.params.flag("sync", false)?;
        let body = command_body(req.body, req.headers)?;
        let location = (domain.clone(), flow.clone());
        let command = build(CommandInput {
            domain,
            flow,
            sync,
            body,
            headers: headers_map(req.headers),
            query: req.params.to_map(),
        });
        let engine = state.engine.clone();
        let outcome = detached(async move { command.run(engine).await }).await?;
        let response = match req.retried {
            Some(retried) => retry_response(outcome, retried),
            None => outcome_response(outcome, |id| href(location.0.as_str(), location.1.as_str(), id)),
        };
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Runs engine work on a task of its own and waits for it. A request's future
/// is dropped when its client hangs up; the work must not be: a transition
/// waiting on an HTTP task holds its instance under a lease and would leave it
/// busy until lease recovery faults it, with the call's outcome lost. Detached,
/// it runs to its commit whether or not anyone waits for the answer.
pub async fn detached<T, F>(work: F) -> Result<T, EngineError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, EngineError>> + Send + 'static,
{
    // The spawned work stays in the request's span (its request id is the trace id).
    tokio::spawn(work.in_current_span())
        .await
        .unwrap_or_else(|e| Err(EngineError::Internal(format!("the request's work stopped: {e}"))))
}

/// Longest instance key accepted (vNext's limit).
pub const MAX_KEY_CHARS: usize = 100;
const STANDARD_MEMBERS: [&str; 4] = ["key", "tags", "attributes", "stage"];
const PAYLOAD_MODE: &str = "x-vnext-payload-mode";

/// A start, transition or retry body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandBody {
    pub key: Option<String>,
    pub tags: Vec<String>,
    /// Always an object.
    pub attributes: Value,
}

fn invalid(pointer: &str, message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, format!("{pointer}: {message}")).with_errors(vec![FieldError::new(pointer, message)])
}

/// Reads a command body; an empty body is `{}`.
///
/// # Errors
/// [`ErrorCode::InvalidBody`] with the pointer of the member of the wrong shape.
pub fn command_body(body: &JsonBody, headers: &HeaderMap) -> Result<CommandBody, ApiError> {
    let object = match &body.value {
        Value::Null => return Ok(CommandBody { attributes: Value::Object(Map::new()), ..CommandBody::default() }),
        Value::Object(map) => map,
        other => return Err(invalid("", format!("the body must be a JSON object, found {}", kind(other)))),
    };
    let mode = headers.get(PAYLOAD_MODE).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let standard = match mode.as_deref() {
        Some("raw") => false,
        Some("standard") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("header {PAYLOAD_MODE} must be `standard` or `raw`, found `{}`", other.escape_debug()),
            ));
        }
        None => object.keys().all(|k| STANDARD_MEMBERS.contains(&k.as_str())),
    };
    if !standard {
        return Ok(CommandBody { attributes: Value::Object(object.clone()), ..CommandBody::default() });
    }
    let key = match object.get("key") {
        None | Some(Value::Null) => None,
        // As the engine's start input allows: an empty key is no key.
        Some(Value::String(k)) if k.trim().is_empty() => None,
        Some(Value::String(k)) if k.chars().count() > MAX_KEY_CHARS => {
            return Err(invalid("/key", format!("must be at most {MAX_KEY_CHARS} characters")));
        }
        Some(Value::String(k)) => Some(k.clone()),
        Some(other) => return Err(invalid("/key", format!("must be a string, found {}", kind(other)))),
    };
    let tags = match object.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(&format!("/tags/{i}"), format!("must be a string, found {}", kind(other)))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(invalid("/tags", format!("must be an array of strings, found {}", kind(other)))),
    };
    let attributes = match object.get("attributes") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => return Err(invalid("/attributes", format!("must be an object, found {}", kind(other)))),
    };
    Ok(CommandBody { key, tags, attributes })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The HTTP answer to an engine outcome.
fn outcome_response(outcome: Outcome, instance_href: impl FnOnce(uuid::Uuid) -> String) -> Response {
    match outcome {
        Outcome::Done(snapshot) => {
            let etag = etag_header(&snapshot.etag);
            let note = AuditNote::default().with("instanceId", snapshot.id.to_string());
            let entity = etag_header(&super::envelope::entity_etag(&snapshot));
            // Busy after a sync run: the run goes on in the background (a retry
            // waiting for its time, a subflow child): say where to poll and when.
            let background = (snapshot.status == InstanceStatus::Busy).then(|| instance_href(snapshot.id));
            let mut response = Json(CommandAnswer::ran(snapshot)).into_response();
            note.attach(&mut response);
            response.headers_mut().insert(header::ETAG, etag);
            response.headers_mut().insert(super::ENTITY_ETAG, entity);
            if let Some(location) = background.and_then(|href| HeaderValue::from_str(&href).ok()) {
                response.headers_mut().insert(header::LOCATION, location);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
        Outcome::Accepted { id, status } => {
            let mut response =
                (StatusCode::ACCEPTED, Json(CommandAnswer::accepted(id, None, status.code()))).into_response();
            AuditNote::default().with("instanceId", id.to_string()).attach(&mut response);
            if let Ok(location) = HeaderValue::from_str(&instance_href(id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

/// The retry answer: always 200, whether the transition ran or was queued.
fn retry_response(outcome: Outcome, retried: &str) -> Response {
    let (id, status) = match outcome {
        Outcome::Done(s) => (s.id, s.status.code()),
        Outcome::Accepted { id, status } => (id, status.code()),
    };
    let body = json!({ "id": id, "status": status.to_string(), "retriedTransitionId": retried });
    let mut response = Json(body).into_response();
    AuditNote::default().with("instanceId", id.to_string()).attach(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    fn body(text: &str) -> JsonBody {
        JsonBody { raw: Bytes::from(text.to_string()), value: super::super::body::parse(text.as_bytes()).unwrap() }
    }

    #[test]
    fn standard_raw_and_empty_bodies() {
        let h = HeaderMap::new();
        let b = command_body(&body(r#"{"key":"k1","tags":["x"],"attributes":{"a":1}}"#), &h).unwrap();
        assert_eq!(b, CommandBody { key: Some("k1".into()), tags: vec!["x".into()], attributes: json!({"a":1}) });
        let b = command_body(&body(r#"{"amount":5}"#), &h).unwrap();
        assert_eq!(b.attributes, json!({"amount":5}));
        assert_eq!(command_body(&body(""), &h).unwrap().attributes, json!({}));
        assert_eq!(command_body(&body(r#"{"key":"","attributes":{}}"#), &h).unwrap().key, None);
        let mut raw = HeaderMap::new();
        raw.insert(PAYLOAD_MODE, HeaderValue::from_static("raw"));
        let b = command_body(&body(r#"{"key":"k"}"#), &raw).unwrap();
        assert_eq!(b.attributes, json!({"key":"k"}));
    }

    #[test]
    fn wrong_shapes_name_the_member() {
        let h = HeaderMap::new();
        for (text, pointer) in [
            (r#"{"tags":"x"}"#, "/tags"),
            (r#"{"tags":[1]}"#, "/tags/0"),
            (r#"{"key":5}"#, "/key"),
            (r#"{"attributes":[1]}"#, "/attributes"),
            ("[1]", ""),
        ] {
            let e = command_body(&body(text), &h).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidBody, "{text}");
            assert_eq!(e.errors[0].pointer, pointer, "{text}");
        }
        let long = format!(r#"{{"key":"{}"}}"#, "k".repeat(101));
        assert!(command_body(&body(&long), &h).is_err());
    }
}
