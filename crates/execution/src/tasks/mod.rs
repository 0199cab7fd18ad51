//! Task runners: the work that touches the outside world.
//!
//! - [`http`]: the HTTP task (type 6); [`egress`]: where it may connect.
//! - [`instance`]: Start, DirectTrigger, GetInstanceData and GetInstance
//!   (types 11, 12, 13, 19), always through the app's REST API.
//! - [`placeholder`], [`status`]: URL templates and `acceptedStatusCodes`.
//!
//! Every runner turns its failures into a [`TaskError`] whose code says what
//! happened (`Task:<status>`, `Task:timeout`, `Task:connection`, `Task:config`,
//! `Task:egress-denied`)
//! and whether trying again may help; none of them panics or returns early
//! without a [`TaskResponse`].

pub mod egress;
pub mod http;
pub mod instance;
pub mod placeholder;
pub mod status;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use vnext_core::traits::{TaskError, TaskResponse};

/// How long establishing a connection may take, whatever the task's timeout.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses larger than this are refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The process's HTTP clients. A `Client` holds the connection pool, so one is
/// built per process and shared (cloning is cheap); a second client that skips
/// certificate checks exists only once a task asks for `validateSsl: false`.
#[derive(Clone)]
pub struct HttpClients {
    inner: Arc<Clients>,
}

struct Clients {
    strict: reqwest::Client,
    insecure: OnceLock<reqwest::Client>,
}

impl HttpClients {
    /// Builds the pooled client.
    ///
    /// # Panics
    /// Only if the TLS backend cannot initialise, which is a broken build.
    pub fn new() -> Self {
        Self { inner: Arc::new(Clients { strict: build_client(false), insecure: OnceLock::new() }) }
    }

    /// The client to use; `validate_ssl = false` picks the one that accepts any certificate.
    pub fn get(&self, validate_ssl: bool) -> &reqwest::Client {
        if validate_ssl {
            &self.inner.strict
        } else {
            self.inner.insecure.get_or_init(|| build_client(true))
        }
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        Self::new()
    }
}

fn build_client(accept_invalid_certs: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tls_danger_accept_invalid_certs(accept_invalid_certs)
        .user_agent(concat!("vnext-execution/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

/// A response read to its end.
pub(crate) struct ReadResponse {
    pub status: u16,
    pub headers: serde_json::Map<String, Value>,
    pub body: Value,
}

/// Reads status, headers and body (JSON when it parses as such, text otherwise).
pub(crate) async fn read_response(mut response: reqwest::Response) -> Result<ReadResponse, reqwest::Error> {
    let status = response.status().as_u16();
    let headers = headers_to_json(response.headers());
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let mut bytes = Vec::with_capacity(response.content_length().unwrap_or(0).min(1 << 20) as usize);
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            truncated = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = if truncated {
        Value::String(format!("<response body larger than {MAX_RESPONSE_BYTES} bytes was dropped>"))
    } else {
        decode_body(&bytes, content_type.as_deref())
    };
    Ok(ReadResponse { status, headers, body })
}

/// JSON when declared or when it parses; text otherwise; `null` when empty.
fn decode_body(bytes: &[u8], content_type: Option<&str>) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    let looks_json = content_type.is_none_or(|ct| ct.contains("json"));
    if looks_json && let Ok(v) = serde_json::from_slice(bytes) {
        return v;
    }
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// Header names lower-cased; a repeated header becomes an array of its values.
fn headers_to_json(headers: &HeaderMap) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let value = if values.len() == 1 { values.into_iter().next().unwrap_or(Value::Null) } else { Value::Array(values) };
        out.insert(name.as_str().to_string(), value);
    }
    out
}

/// The URL as it may appear in messages: no credentials, no query string
/// (both often carry secrets, and messages end up in incidents).
pub(crate) fn display_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// Whether a failed status is worth retrying: server errors, throttling and
/// request timeouts.
pub(crate) fn status_is_retryable(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// A transport failure as a task error: timeout, connection, or other. The
/// message never carries the URL's query string or credentials.
pub(crate) fn transport_error(what: &str, error: &reqwest::Error, timeout: Duration) -> TaskError {
    if error.is_timeout() {
        TaskError::new("Task:timeout", format!("{what} timed out after {}", human(timeout)), true)
    } else if error.is_connect() {
        TaskError::new("Task:connection", format!("{what} could not connect: {}", chain(error)), true)
    } else if error.is_builder() {
        TaskError::new("Task:config", format!("{what} could not be built: {}", chain(error)), false)
    } else {
        TaskError::new("Task:connection", format!("{what} failed: {}", chain(error)), true)
    }
}

/// The error and all its causes, `: `-separated, without repeats; a URL
/// reqwest puts in its message is shown as [`display_url`] shows it.
pub(crate) fn chain(error: &reqwest::Error) -> String {
    let top = match error.url() {
        Some(url) => error.to_string().replace(url.as_str(), &display_url(url)),
        None => error.to_string(),
    };
    let error: &dyn std::error::Error = error;
    let mut parts: Vec<String> = vec![top];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}

/// A response for a task that failed before or without an answer.
pub(crate) fn failed(error: TaskError, started: Instant) -> TaskResponse {
    TaskResponse {
        status_code: None,
        is_success: false,
        data: Value::Null,
        headers: serde_json::Map::new(),
        duration_ms: elapsed_ms(started),
        error: Some(error),
    }
}

pub(crate) fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// A config error: never retryable, since the same config fails the same way.
pub(crate) fn config_error(message: impl Into<String>) -> TaskError {
    TaskError::new("Task:config", message, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_decode_by_content_type() {
        assert_eq!(decode_body(br#"{"a":1}"#, Some("application/json; charset=utf-8")), json!({"a": 1}));
        assert_eq!(decode_body(br#"{"a":1}"#, Some("application/problem+json")), json!({"a": 1}));
        assert_eq!(decode_body(br#"{"a":1}"#, None), json!({"a": 1}));
        assert_eq!(decode_body(br#"{"a":1}"#, Some("text/plain")), json!("{\"a\":1}"));
        assert_eq!(decode_body(b"not json", Some("application/json")), json!("not json"));
        assert_eq!(decode_body(b"  ", Some("application/json")), Value::Null);
    }

    #[test]
    fn urls_in_messages_hide_secrets() {
        let url = reqwest::Url::parse("https://user:pw@api.example:8443/v1/x?apiKey=s3cret").unwrap();
        assert_eq!(display_url(&url), "https://api.example:8443/v1/x");
    }
}
