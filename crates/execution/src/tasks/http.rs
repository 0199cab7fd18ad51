//! The HTTP task (type 6).
//!
//! The config arrives with the input mapping already merged in, so `url`,
//! `headers` and `body` may have been set or completed by a script. The runner
//! fills `{placeholders}` in the URL, sends the request with the task's timeout
//! (30 s by default) and answers with status, headers, body (JSON when it parses
//! as such) and duration. A status outside 2xx that no `acceptedStatusCodes`
//! pattern covers is a failure coded `Task:<status>`, retryable for 5xx, 429 and
//! 408; `Task:timeout` and `Task:connection` are retryable, `Task:config` is not.
//! Every call carries an `Idempotency-Key` (from the invocation) that repeats
//! on a retry or a re-run of the same call.
//! A URL the egress guard refuses (up front, while resolving, or on a redirect)
//! is `Task:egress-denied`, not retryable.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;
use vnext_core::model::HttpTaskConfig;
use vnext_core::traits::{TaskError, TaskResponse};

use super::egress::{self, EgressGuard};
use super::status::{StatusPattern, parse_all};
use super::{config_error, display_url, elapsed_ms, failed, placeholder, read_response, status_is_retryable, transport_error};

/// The header a repeated call carries unchanged, so the callee can recognise it.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Timeout of a task that does not set `timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeoutSeconds` honoured; longer values are a config error.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// Request body bytes, with the content type to send unless a header sets one.
#[derive(Debug)]
struct Body {
    bytes: Vec<u8>,
    content_type: Option<HeaderValue>,
}

/// Runs HTTP tasks over pooled clients that enforce the egress guard.
#[derive(Clone, Default)]
pub struct HttpTaskRunner {
    egress: EgressGuard,
}

/// A request ready to send, with everything from the config checked.
#[derive(Debug)]
struct Prepared {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Body>,
    timeout: Duration,
    validate_ssl: bool,
    accepted: Vec<StatusPattern>,
}

impl HttpTaskRunner {
    pub fn new(egress: EgressGuard) -> Self {
        Self { egress }
    }

    /// Runs one HTTP task of `domain`. `config` is the task's config after the
    /// input mapping; `idempotency_key` is sent as `Idempotency-Key` unless the
    /// config sets that header itself.
    pub async fn run(&self, domain: &str, config: &Value, idempotency_key: Option<&str>) -> TaskResponse {
        let started = Instant::now();
        let response = self.attempt(domain, config, idempotency_key).await;
        vnext_telemetry::metrics::http_task_attempt(attempt_class(&response), started.elapsed().as_secs_f64());
        response
    }

    async fn attempt(&self, domain: &str, config: &Value, idempotency_key: Option<&str>) -> TaskResponse {
        let started = Instant::now();
        let prepared = match prepare(config) {
            Ok(p) => p,
            Err(e) => return failed(e, started),
        };
        let what = format!("{} {}", prepared.method, display_url(&prepared.url));
        let client = match self.egress.client_for(domain, &prepared.url, prepared.validate_ssl) {
            Ok(c) => c,
            Err(denied) => return failed(denied_error(&what, &denied), started),
        };
        let mut request = client
            .request(prepared.method.clone(), prepared.url.clone())
            .timeout(prepared.timeout);
        let mut headers = prepared.headers;
        if let Some(key) = idempotency_key
            && !headers.contains_key(IDEMPOTENCY_KEY)
            && let Ok(value) = HeaderValue::from_str(key)
        {
            headers.insert(IDEMPOTENCY_KEY, value);
        }
        request = request.headers(headers);
        if let Some(body) = prepared.body {
            if let Some(ct) = body.content_type {
                request = request.header(CONTENT_TYPE, ct);
            }
            request = request.body(body.bytes);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = match egress::denial(&e) {
                    Some(denied) => denied_error(&what, &denied),
                    None => transport_error(&what, &e, prepared.timeout),
                };
                return failed(error, started);
            }
        };
        let read = match read_response(response).await {
            Ok(r) => r,
            Err(e) => return failed(transport_error(&what, &e, prepared.timeout), started),
        };
        let ok = (200..300).contains(&read.status) || prepared.accepted.iter().any(|p| p.matches(read.status));
        let error = (!ok).then(|| {
            let reason = reqwest::StatusCode::from_u16(read.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            TaskError::new(
                format!("Task:{}", read.status),
                format!("{what} answered {}{reason}", read.status),
                status_is_retryable(read.status),
            )
        });
        TaskResponse {
            status_code: Some(read.status),
            is_success: ok,
            data: read.body,
            headers: read.headers,
            duration_ms: elapsed_ms(started),
            error,
        }
    }
}

/// The `status_class` label of an attempt: the answer's class, or what
/// stopped it (`timeout`, `refused` by the egress guard, `config`, `error`).
fn attempt_class(response: &TaskResponse) -> &'static str {
    if let Some(status) = response.status_code {
        return vnext_telemetry::metrics::status_class(Some(status));
    }
    match response.error.as_ref().map(|e| e.code.as_str()) {
        Some("Task:timeout") => "timeout",
        Some("Task:config") => "config",
        Some(code) if code == egress::DENIED_CODE => "refused",
        _ => "error",
    }
}

fn denied_error(what: &str, denied: &egress::EgressDenied) -> TaskError {
    TaskError::new(egress::DENIED_CODE, format!("{what} refused by the egress guard: {denied}"), false)
}

/// Checks the config and builds the request parts.
fn prepare(config: &Value) -> Result<Prepared, TaskError> {
    let typed: HttpTaskConfig = serde_json::from_value(config.clone())
        .map_err(|e| config_error(format!("HTTP task config is invalid: {e}")))?;
    let filled = placeholder::substitute(&typed.url, config)
        .map_err(|e| config_error(format!("HTTP task URL `{}`: {e}", typed.url)))?;
    let url = Url::parse(&filled).map_err(|e| config_error(format!("HTTP task URL `{filled}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(format!("HTTP task URL `{}` must use http or https", display_url(&url))));
    }
    let method = Method::from_bytes(typed.method.trim().to_ascii_uppercase().as_bytes())
        .ok()
        .filter(|m| {
            matches!(*m, Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::HEAD | Method::OPTIONS)
        })
        .ok_or_else(|| config_error(format!("HTTP task method `{}` is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS", typed.method)))?;
    let timeout = match typed.timeout_seconds {
        None => DEFAULT_TIMEOUT,
        Some(0) => return Err(config_error("HTTP task timeoutSeconds must be at least 1")),
        Some(s) if s > MAX_TIMEOUT_SECONDS => {
            return Err(config_error(format!("HTTP task timeoutSeconds {s} is above the limit of {MAX_TIMEOUT_SECONDS}")));
        }
        Some(s) => Duration::from_secs(s),
    };
    let accepted = parse_all(typed.accepted_status_codes.as_deref().unwrap_or_default())
        .map_err(|e| config_error(format!("HTTP task acceptedStatusCodes: {e}")))?;
    let headers = headers(typed.headers.as_ref())?;
    let body = body(typed.body.as_ref(), typed.content_type.as_deref(), &headers)?;
    Ok(Prepared { method, url, headers, body, timeout, validate_ssl: typed.validate_ssl.unwrap_or(true), accepted })
}

fn headers(config: Option<&serde_json::Map<String, Value>>) -> Result<HeaderMap, TaskError> {
    let mut out = HeaderMap::new();
    for (name, value) in config.into_iter().flatten() {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(config_error(format!("HTTP task header `{name}` must be a string, number or boolean")));
            }
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| config_error(format!("HTTP task header name `{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(&text)
            .map_err(|_| config_error(format!("HTTP task header `{name}` has a value that cannot be sent (control characters?)")))?;
        out.append(name, value);
    }
    Ok(out)
}

/// The body bytes and, unless the headers already name one, their content type:
/// a string is sent as text, anything else as JSON.
fn body(
    body: Option<&Value>,
    content_type: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<Body>, TaskError> {
    let Some(body) = body.filter(|b| !b.is_null()) else { return Ok(None) };
    let (bytes, default_type) = match body {
        Value::String(s) => (s.clone().into_bytes(), "text/plain; charset=utf-8"),
        other => (serde_json::to_vec(other).unwrap_or_default(), "application/json"),
    };
    let content_type = if headers.contains_key(CONTENT_TYPE) {
        None
    } else {
        let ct = content_type.unwrap_or(default_type);
        Some(HeaderValue::from_str(ct).map_err(|_| config_error(format!("HTTP task contentType `{ct}` is not a valid header value")))?)
    };
    Ok(Some(Body { bytes, content_type }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(config: Value) -> String {
        prepare(&config).unwrap_err().code
    }

    #[test]
    fn bad_configs_are_config_errors() {
        assert_eq!(code(json!({"method": "GET"})), "Task:config");
        assert_eq!(code(json!({"url": "http://h/", "method": "FETCH"})), "Task:config");
        assert_eq!(code(json!({"url": "ftp://h/", "method": "GET"})), "Task:config");
        assert_eq!(code(json!({"url": "http://h/{id}", "method": "GET"})), "Task:config");
        assert_eq!(code(json!({"url": "http://h/", "method": "GET", "timeoutSeconds": 0})), "Task:config");
        assert_eq!(code(json!({"url": "http://h/", "method": "GET", "acceptedStatusCodes": ["4x"]})), "Task:config");
        assert_eq!(code(json!({"url": "http://h/", "method": "GET", "headers": {"x": {"a": 1}}})), "Task:config");
        let e = prepare(&json!({"url": "http://h/", "method": "GET", "headers": {"bad name": "v"}})).unwrap_err();
        assert!(!e.retryable && e.message.contains("bad name"), "{e}");
    }

    #[test]
    fn body_kinds_and_content_types() {
        let p = prepare(&json!({"url": "http://h/", "method": "post", "body": {"a": 1}})).unwrap();
        let body = p.body.unwrap();
        assert_eq!(body.bytes, br#"{"a":1}"#);
        assert_eq!(body.content_type.unwrap(), "application/json");
        let p = prepare(&json!({"url": "http://h/", "method": "POST", "body": "<x/>", "contentType": "application/xml"})).unwrap();
        assert_eq!(p.body.unwrap().content_type.unwrap(), "application/xml");
        let p = prepare(&json!({"url": "http://h/", "method": "POST", "body": "hi", "headers": {"Content-Type": "text/csv"}})).unwrap();
        assert!(p.body.unwrap().content_type.is_none());
        assert_eq!(p.headers.get(CONTENT_TYPE).unwrap(), "text/csv");
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert!(p.validate_ssl);
    }
}
