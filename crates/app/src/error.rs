//! The one error type of the HTTP API and its `application/problem+json` form.
//!
//! Every failure a handler can produce is an [`ApiError`] carrying a stable
//! [`ErrorCode`]. The code fixes the HTTP status and the title, so clients can
//! branch on `code` and the table in `docs/api.md` stays true by construction
//! (a unit test below checks the codes are unique and well formed). The body is
//! the engine's ProblemDetails: `errorCode` is `{prefix}.{code}`, the prefix the
//! engine's category of the status ([`ErrorCode::prefix`]).
//!
//! A problem body is rendered twice: once by [`IntoResponse`] (so a handler's
//! response is complete on its own), and again by [`problem_middleware`], which
//! knows the request path and the trace id and fills in `instance` and `traceId`.
//! The middleware is also where internal errors are logged with their whole cause
//! chain; the client only ever sees an opaque 500 with the trace id to quote.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde::Serialize;
use serde_json::{Map, Value};

use vnext_init::InitError;
use vnext_init::db::DbError;

use crate::engine::EngineError;

/// Boxed cause of an internal error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! error_codes {
    ($( $(#[$m:meta])* $variant:ident => ($code:literal, $status:ident, $title:literal) ),+ $(,)?) => {
        /// Stable machine-readable error codes. Never rename one: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $(#[$m])* $variant ),+ }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant ),+ ];

            /// The stable code (the problem's `code`), e.g. `instance.not-found`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code ),+ }
            }

            /// The HTTP status this code is always answered with.
            pub fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => StatusCode::$status ),+ }
            }

            /// The engine's error category of this code, fixed by its status:
            /// `validation` (400, 405, 413, 422), `unauthorized`, `forbidden`,
            /// `notfound`, `conflict`, `transient` (429, 503), `unsupported` (501), `internal`.
            pub fn prefix(self) -> &'static str {
                match self.status().as_u16() {
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "notfound",
                    409 => "conflict",
                    429 | 503 => "transient",
                    502 => "dependency",
                    501 => "unsupported",
                    400..=499 => "validation",
                    _ => "internal",
                }
            }

            /// The problem's `errorCode`: `{prefix}.{code}`, e.g. `notfound.instance.not-found`.
            pub fn error_code(self) -> String {
                format!("{}.{}", self.prefix(), self.as_str())
            }

            /// A short, fixed, human-readable summary (the problem `title`).
            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title ),+ }
            }
        }
    };
}

error_codes! {
    /// The body is not well-formed JSON (syntax, encoding, nesting depth).
    InvalidJson => ("request.invalid-json", BAD_REQUEST, "Malformed JSON body"),
    /// A string or key contains `\u0000`, which PostgreSQL `jsonb` cannot store.
    NulCharacter => ("request.nul-character", BAD_REQUEST, "JSON string contains a NUL character"),
    /// Well-formed JSON of the wrong shape (e.g. `tags` is not an array of strings).
    InvalidBody => ("request.invalid-body", BAD_REQUEST, "Request body has the wrong shape"),
    /// A query or path parameter cannot be parsed or is out of range.
    InvalidParameter => ("request.invalid-parameter", BAD_REQUEST, "Invalid request parameter"),
    /// An instance list filter names an unknown field or operator, or a bad value.
    InvalidFilter => ("request.invalid-filter", BAD_REQUEST, "Invalid filter"),
    /// An instance list sort names an unknown field or direction.
    InvalidSort => ("request.invalid-sort", BAD_REQUEST, "Invalid sort"),
    /// The body is larger than `app.body_limit_bytes`.
    BodyTooLarge => ("request.body-too-large", PAYLOAD_TOO_LARGE, "Request body too large"),
    /// A start, transition or retry body is larger than the domain's payload
    /// cap (`limits.domain_payload_bytes`); `limit` gives it.
    PayloadTooLarge => ("payload.too-large", PAYLOAD_TOO_LARGE, "Payload larger than the domain allows"),
    /// The API key (or identity) made more requests than `limits.key_requests_per_second`
    /// allows; `Retry-After` says when the next one is admitted.
    RateLimited => ("rate.limited", TOO_MANY_REQUESTS, "Too many requests"),
    /// The API key (or identity) has `limits.key_concurrency` requests in flight already.
    ConcurrencyLimited => ("rate.concurrency-limited", TOO_MANY_REQUESTS, "Too many requests in flight"),
    /// The domain started `limits.domain_starts_per_second` instances in the last second.
    StartsLimited => ("rate.starts-limited", TOO_MANY_REQUESTS, "Domain start rate reached"),
    /// Internal endpoint called without the shared secret.
    Unauthorized => ("auth.unauthorized", UNAUTHORIZED, "Missing or wrong credentials"),
    /// A public endpoint called without an API key (keys are enforced).
    AuthMissingKey => ("auth.missing-key", UNAUTHORIZED, "Missing API key"),
    /// The API key is unknown or revoked.
    AuthInvalidKey => ("auth.invalid-key", UNAUTHORIZED, "Invalid API key"),
    /// The API key is valid but lacks the grant; `missingGrant` names it.
    AuthForbidden => ("auth.forbidden", FORBIDDEN, "API key lacks the needed grant"),
    /// The caller's roles do not allow the transition (`roles`) or the read
    /// (`queryRoles`) of the workflow model.
    AuthRoleDenied => ("auth.role-denied", FORBIDDEN, "Caller's roles do not allow this"),
    /// A bearer token that is not an API key failed JWT validation (signature,
    /// issuer, audience, expiry), or no JWT issuer is configured.
    AuthInvalidToken => ("auth.invalid-token", UNAUTHORIZED, "Invalid bearer token"),
    /// Identity headers came from a peer that is not a trusted proxy, or
    /// without the proxy's shared secret.
    AuthUntrustedIdentity => ("auth.untrusted-identity", UNAUTHORIZED, "Identity headers from an untrusted peer"),
    /// No route matches the path.
    RouteNotFound => ("route.not-found", NOT_FOUND, "No such endpoint"),
    /// The path exists but not with this method.
    MethodNotAllowed => ("route.method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed"),
    DomainNotFound => ("domain.not-found", NOT_FOUND, "Unknown domain"),
    /// The domain's database name is the control database, another domain's,
    /// or a database this runtime did not create; nothing was created.
    DomainDatabaseTaken => ("domain.database-taken", CONFLICT, "Domain database name not available"),
    /// The domain name collides with a route of the API (`admin`,
    /// `internal`, `definitions`, `execution`); `errors` points at `/domain`.
    DomainReserved => ("domain.reserved", UNPROCESSABLE_ENTITY, "Domain name is reserved"),
    /// The caller already provisioned `app.max_domains_per_key` domains.
    DomainCapReached => ("domain.cap-reached", FORBIDDEN, "Domain cap of this caller reached"),
    /// No API key has this id.
    KeyNotFound => ("key.not-found", NOT_FOUND, "Unknown API key"),
    WorkflowNotFound => ("workflow.not-found", NOT_FOUND, "Unknown workflow"),
    /// The workflow exists but not in the requested version.
    WorkflowVersionNotFound => ("workflow.version-not-found", NOT_FOUND, "Unknown workflow version"),
    InstanceNotFound => ("instance.not-found", NOT_FOUND, "Unknown instance"),
    /// The workflow defines no transition with this key anywhere.
    TransitionNotFound => ("transition.not-found", NOT_FOUND, "Unknown transition"),
    /// The transition exists but is not offered in the instance's current state.
    TransitionNotAvailable => ("transition.not-available", CONFLICT, "Transition not available in the current state"),
    /// The payload fails the transition's JSON Schema; `errors` lists every failure.
    PayloadInvalid => ("payload.invalid", UNPROCESSABLE_ENTITY, "Payload fails the transition schema"),
    /// Another transition holds the instance.
    InstanceBusy => ("instance.busy", CONFLICT, "Instance is busy"),
    /// The instance is completed (or otherwise no longer accepts transitions).
    InstanceFinished => ("instance.finished", CONFLICT, "Instance no longer accepts transitions"),
    /// Retry was asked for an instance that is not faulted.
    InstanceNotFaulted => ("instance.not-faulted", BAD_REQUEST, "Instance is not faulted"),
    /// A transition's `key` is already another instance's key.
    InstanceKeyTaken => ("instance.key-taken", CONFLICT, "Instance key already in use"),
    /// Automatic transitions chained past `runtime.max_auto_chain_depth`.
    ChainTooDeep => ("transition.chain-too-deep", UNPROCESSABLE_ENTITY, "Automatic transition chain too deep"),
    /// A mapping, rule or timer script failed or ran past its limits.
    ScriptFailed => ("script.failed", UNPROCESSABLE_ENTITY, "Script failed"),
    /// No script thread was free for the domain's script in time; retry later.
    ScriptsBusy => ("script.busy", SERVICE_UNAVAILABLE, "Scripts busy"),
    /// The stored definition cannot be run (e.g. a reference that does not resolve).
    DefinitionUnusable => ("definition.unusable", CONFLICT, "Stored definition cannot be run"),
    /// The definition asks for something the runtime does not do yet (e.g. a cross-domain subflow).
    DefinitionUnsupported => ("definition.unsupported", UNPROCESSABLE_ENTITY, "Definition uses an unsupported feature"),
    /// A published component fails validation; `errors` lists every diagnostic.
    DefinitionInvalid => ("definition.invalid", UNPROCESSABLE_ENTITY, "Component fails validation"),
    /// The same key and version is already published with other content.
    DefinitionConflict => ("definition.conflict", CONFLICT, "Component version already published with other content"),
    DefinitionNotFound => ("definition.not-found", NOT_FOUND, "Unknown component"),
    /// `functions/data?version=` names a data version the instance never had.
    DataVersionNotFound => ("data-version.not-found", NOT_FOUND, "Unknown data version"),
    /// The workflow references no function with this name.
    FunctionNotFound => ("function.not-found", NOT_FOUND, "Unknown function"),
    /// The function does not take this HTTP verb (its `verbs`).
    FunctionVerbNotAllowed => ("function.verb-not-allowed", METHOD_NOT_ALLOWED, "Function does not take this verb"),
    /// A task of the function failed; the task's error code is in `taskError`.
    FunctionTaskFailed => ("function.task-failed", BAD_GATEWAY, "A task of the function failed"),
    /// The function's answer fails its own `outputSchema`.
    FunctionOutputInvalid => ("function.output-invalid", BAD_GATEWAY, "Function answer fails its output schema"),
    /// The current state (or transition) has no view.
    ViewNotFound => ("view.not-found", NOT_FOUND, "No view"),
    /// The transition (or workflow) has no schema.
    SchemaNotFound => ("schema.not-found", NOT_FOUND, "No schema"),
    /// The internal trigger endpoint ran the transition and it failed; the
    /// problem carries `retryable`.
    TriggerFailed => ("trigger.failed", UNPROCESSABLE_ENTITY, "Triggered transition failed"),
    /// A database is unreachable or out of connections; retry later.
    Unavailable => ("service.unavailable", SERVICE_UNAVAILABLE, "Service temporarily unavailable"),
    /// A bug. The detail is never shown; quote the trace id.
    Internal => ("internal", INTERNAL_SERVER_ERROR, "Internal error"),
}

/// One entry of a problem's `errors` array: where (a JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
    /// A stable code of the finding, when it has one (component validation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), message: message.into(), code: None }
    }

    pub fn coded(pointer: impl Into<String>, message: impl Into<String>, code: impl Into<String>) -> Self {
        Self { code: Some(code.into()), ..Self::new(pointer, message) }
    }
}

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    /// What was wrong and where, for humans. Not shown for [`ErrorCode::Internal`].
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Additional members of the problem object (e.g. `available` transitions).
    pub extra: Option<Box<Map<String, Value>>>,
    /// Cause chain, logged (never sent) when the error is answered.
    pub source: Option<BoxError>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), errors: Vec::new(), extra: None, source: None }
    }

    /// An internal error: logged with its cause chain, answered as an opaque 500.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        let source = source.into();
        Self { source: Some(source), ..Self::new(ErrorCode::Internal, "internal error") }
    }

    /// A database error: unavailability (the server unreachable, restarting,
    /// out of connections; [`vnext_init::unavailable`]) is a 503 the client may
    /// retry, anything else is a bug (every query binds its parameters, so bad
    /// input never gets here).
    pub fn database(error: sqlx::Error) -> Self {
        if vnext_init::unavailable::is_unavailable(&error) {
            Self::unavailable(error)
        } else {
            Self::internal(error)
        }
    }

    /// 503 `service.unavailable`, logging `source`.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(ErrorCode::Unavailable, "the database is unreachable or busy; retry shortly")
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.get_or_insert_with(Box::default).insert(key.to_string(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The problem object, with `instance` and `traceId` when known.
    fn body(&self, instance: Option<&str>, trace_id: Option<&str>) -> Value {
        let mut obj = Map::new();
        let status = self.status();
        let prefix = self.code.prefix();
        let code = self.code.as_str();
        obj.insert("type".into(), format!("https://httpstatuses.com/{}/{prefix}/{}", status.as_u16(), code.replace(['.', ':'], "/")).into());
        obj.insert("title".into(), self.code.title().into());
        obj.insert("status".into(), status.as_u16().into());
        obj.insert("errorCode".into(), self.code.error_code().into());
        obj.insert("prefix".into(), prefix.into());
        obj.insert("code".into(), code.into());
        let detail = if self.code == ErrorCode::Internal {
            "an internal error occurred; quote the traceId when reporting it".to_string()
        } else {
            self.detail.clone()
        };
        obj.insert("detail".into(), detail.into());
        if let Some(i) = instance {
            obj.insert("instance".into(), i.into());
        }
        if let Some(t) = trace_id {
            obj.insert("traceId".into(), t.into());
        }
        if !self.errors.is_empty() {
            // The engine's `errors` is a map of member to messages; our
            // findings with their pointers and codes are `violations`.
            let mut by_member = Map::new();
            for e in &self.errors {
                let messages = by_member.entry(e.pointer.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = messages {
                    list.push(Value::String(e.message.clone()));
                }
            }
            obj.insert("errors".into(), Value::Object(by_member));
            obj.insert("violations".into(), serde_json::to_value(&self.errors).unwrap_or_default());
        }
        for (k, v) in self.extra.iter().flat_map(|m| m.iter()) {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(obj)
    }

    fn render(&self, instance: Option<&str>, trace_id: Option<&str>) -> Response {
        let body = self.body(instance, trace_id).to_string();
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(after) = crate::api::limits::retry_after_of(self.code) {
            response.headers_mut().insert(header::RETRY_AFTER, after);
        }
        response
    }
}

impl From<EngineError> for ApiError {
    /// Every engine error but `Internal` is the client's to fix or retry.
    fn from(error: EngineError) -> Self {
        let detail = error.to_string();
        match error {
            EngineError::UnknownDomain(_) => ApiError::new(ErrorCode::DomainNotFound, detail),
            EngineError::UnknownFlow { version: Some(_), .. } => ApiError::new(ErrorCode::WorkflowVersionNotFound, detail),
            EngineError::UnknownFlow { version: None, .. } => ApiError::new(ErrorCode::WorkflowNotFound, detail),
            EngineError::UnknownInstance { .. } => ApiError::new(ErrorCode::InstanceNotFound, detail),
            EngineError::UnknownTransition { .. } => ApiError::new(ErrorCode::TransitionNotFound, detail),
            EngineError::NotAvailable { state, available, .. } => ApiError::new(ErrorCode::TransitionNotAvailable, detail)
                .with_extra("state", Value::String(state))
                .with_extra("available", Value::from(available)),
            EngineError::InvalidPayload { errors, .. } => ApiError::new(ErrorCode::PayloadInvalid, detail)
                .with_errors(errors.into_iter().map(|e| FieldError::new(e.pointer, e.message)).collect()),
            EngineError::Busy { .. } => ApiError::new(ErrorCode::InstanceBusy, detail),
            EngineError::RoleDenied { transition, .. } => {
                ApiError::new(ErrorCode::AuthRoleDenied, detail).with_extra("transition", Value::String(transition))
            }
            EngineError::Finished { status, .. } => {
                ApiError::new(ErrorCode::InstanceFinished, detail).with_extra("instanceStatus", Value::String(status))
            }
            EngineError::NotFaulted { .. } => ApiError::new(ErrorCode::InstanceNotFaulted, detail),
            EngineError::KeyTaken { .. } => ApiError::new(ErrorCode::InstanceKeyTaken, detail),
            EngineError::Unsupported { .. } => ApiError::new(ErrorCode::DefinitionUnsupported, detail),
            EngineError::ChainTooDeep { .. } => ApiError::new(ErrorCode::ChainTooDeep, detail),
            EngineError::Script { .. } => ApiError::new(ErrorCode::ScriptFailed, detail),
            EngineError::ScriptsBusy { .. } => ApiError::new(ErrorCode::ScriptsBusy, detail),
            EngineError::Definition { .. } => ApiError::new(ErrorCode::DefinitionUnusable, detail),
            EngineError::Unavailable(message) => ApiError::unavailable(message),
            EngineError::Internal(message) => ApiError::internal(message),
        }
    }
}

impl From<InitError> for ApiError {
    fn from(error: InitError) -> Self {
        let detail = error.to_string();
        match error {
            InitError::UnknownDomain(_) => ApiError::new(ErrorCode::DomainNotFound, detail),
            InitError::Conflict { .. } => ApiError::new(ErrorCode::DefinitionConflict, detail),
            InitError::InvalidComponent(_) | InitError::InvalidName { .. } | InitError::SchemaTaken { .. } => {
                ApiError::new(ErrorCode::DefinitionInvalid, detail)
            }
            InitError::DatabaseTaken { .. } | InitError::ForeignDatabase { .. } => {
                ApiError::new(ErrorCode::DomainDatabaseTaken, detail)
            }
            InitError::InvalidKey(_) => ApiError::new(ErrorCode::InvalidBody, detail),
            InitError::ReservedDomain(_) => {
                ApiError::new(ErrorCode::DomainReserved, detail.clone()).with_errors(vec![FieldError::new("/domain", detail)])
            }
            InitError::DomainCap { count, cap, .. } => ApiError::new(ErrorCode::DomainCapReached, detail)
                .with_extra("provisioned", Value::from(count))
                .with_extra("limit", Value::from(cap)),
            e if e.is_unavailable() => ApiError::unavailable(e),
            InitError::Sql { source, .. } => ApiError::database(source),
            InitError::Database(db) => ApiError::from(*db),
            other => ApiError::internal(other),
        }
    }
}

impl From<DbError> for ApiError {
    /// An unreachable server is a 503 the client may retry; an unknown domain a 404.
    fn from(error: DbError) -> Self {
        match error {
            DbError::UnknownDomain(name) => ApiError::new(ErrorCode::DomainNotFound, format!("unknown domain `{name}`")),
            DbError::Unreachable { .. } | DbError::Connect { .. } => ApiError {
                source: Some(Box::new(error)),
                ..ApiError::new(ErrorCode::Unavailable, "a database is unreachable; retry shortly")
            },
            DbError::Control(e) => ApiError::database(e),
            other => ApiError::internal(other),
        }
    }
}

/// Handed from [`ApiError::into_response`] to [`problem_middleware`].
#[derive(Clone)]
struct PendingProblem(Arc<ApiError>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(None, None);
        response.extensions_mut().insert(PendingProblem(Arc::new(self)));
        response
    }
}

/// The error code of a problem answer not yet rendered by [`problem_middleware`]
/// (the audit log records it as the call's outcome).
pub fn problem_code(response: &Response) -> Option<ErrorCode> {
    response.extensions().get::<PendingProblem>().map(|p| p.0.code)
}

/// Text safe to echo back in a message (control characters escaped).
pub fn printable(raw: &str) -> String {
    raw.chars().flat_map(char::escape_debug).collect()
}

/// Formats an error and all its sources: `a: b: c`.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        out.push_str(": ");
        out.push_str(&e.to_string());
        current = e.source();
    }
    out
}

/// The request id header set by the server's request-id layer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Completes problem bodies with the request path and trace id, and logs errors:
/// 5xx with the full cause chain at `error`, 4xx at `debug`.
pub async fn problem_middleware(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let trace_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A panicking handler must still answer: an opaque 500 with the trace id.
    let mut response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            ApiError::internal(format!("handler panicked: {message}")).into_response()
        }
    };
    let Some(PendingProblem(problem)) = response.extensions_mut().remove::<PendingProblem>() else {
        return response;
    };
    let trace = trace_id.as_deref().unwrap_or("-");
    if problem.status().is_server_error() {
        let cause = problem
            .source
            .as_deref()
            .map(|e| cause_chain(e))
            .unwrap_or_else(|| problem.detail.clone());
        tracing::error!(trace_id = trace, %method, path, code = problem.code.as_str(), cause, "request failed");
    } else {
        tracing::debug!(trace_id = trace, %method, path, code = problem.code.as_str(), detail = problem.detail, "request rejected");
    }
    let mut rendered = problem.render(Some(&path), trace_id.as_deref());
    // Keep headers a handler set (e.g. `Allow`), but the body is ours.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_without_a_free_connection_is_a_503_not_a_500() {
        let engine = EngineError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(engine, EngineError::Unavailable(_)), "{engine:?}");
        assert!(engine.is_transient());
        let api = ApiError::from(engine);
        assert_eq!(api.code, ErrorCode::Unavailable);
        assert_eq!(api.code.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_database_going_away_is_a_503_on_every_path() {
        use vnext_testkit::db::server_error;
        let outages = || {
            [
                server_error("57P01"), // terminating connection due to administrator command
                server_error("57P03"), // the database system is starting up
                server_error("08006"),
                server_error("53300"),
                sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
                sqlx::Error::PoolClosed,
            ]
        };
        for e in outages() {
            let text = e.to_string();
            assert_eq!(ApiError::database(e).code, ErrorCode::Unavailable, "{text}");
        }
        for e in outages() {
            let engine = EngineError::from(e);
            assert!(matches!(engine, EngineError::Unavailable(_)) && engine.is_transient(), "{engine:?}");
            assert_eq!(ApiError::from(engine).code, ErrorCode::Unavailable);
        }
        for e in outages() {
            let init = InitError::Sql { context: "publishing".into(), source: e };
            assert_eq!(ApiError::from(init).code, ErrorCode::Unavailable);
        }
        let migration = InitError::Migration { schema: "s".into(), file: "f".into(), source: server_error("57P01") };
        assert_eq!(ApiError::from(migration).code, ErrorCode::Unavailable);
        assert_eq!(ApiError::from(DbError::Control(server_error("57P02"))).code, ErrorCode::Unavailable);
        // Not an outage: still a bug, answered as an opaque 500.
        assert_eq!(ApiError::database(server_error("42601")).code, ErrorCode::Internal);
        assert!(matches!(EngineError::from(server_error("23505")), EngineError::Internal(_)));
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate error code {s}");
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'-'), "{s}");
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(std::io::Error::other("secret SQL text"));
        let body = e.body(Some("/x"), Some("t1")).to_string();
        assert!(!body.contains("secret"), "{body}");
        assert!(body.contains("\"traceId\":\"t1\""), "{body}");
        assert!(body.contains("\"status\":500"), "{body}");
    }

    #[test]
    fn validation_errors_carry_pointers() {
        let e = ApiError::new(ErrorCode::PayloadInvalid, "2 errors")
            .with_errors(vec![FieldError::new("/amount", "must be a number")]);
        let body = e.body(None, None);
        assert_eq!(body["violations"][0]["pointer"], "/amount");
        assert_eq!(body["errors"]["/amount"][0], "must be a number");
        assert_eq!(body["errorCode"], "validation.payload.invalid");
        assert_eq!(body["prefix"], "validation");
        assert_eq!(body["code"], "payload.invalid");
        assert_eq!(body["type"], "https://httpstatuses.com/422/validation/payload/invalid");
        assert_eq!(body["status"], 422);
    }
}
