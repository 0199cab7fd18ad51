//! [`HttpTrigger`]: fires job transitions in an app service over HTTP.
//!
//! Wire contract of `POST {app.internal_url}/api/v1/internal/trigger`
//! (`Authorization: Bearer <execution.shared_secret>`):
//! - request body: a [`TriggerRequest`] as JSON (camelCase);
//! - `200` with `{"outcome": "applied" | "stale" | "busy"}` when the trigger
//!   ran (a bare `"applied"` string is accepted too);
//! - any other status is a [`TriggerError`]; the body may carry
//!   `{"message"|"detail": ..., "retryable": bool}` (a problem document with a
//!   `retryable` member qualifies). Without `retryable`, server errors,
//!   throttling and timeouts are retryable, and so are 401/403/404: those mean
//!   a misconfigured deployment (secret, URL), and jobs must survive until it
//!   is fixed rather than fail for good. A `409` whose `errorCode` mentions
//!   `busy` counts as a busy instance.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use vnext_core::traits::{TransitionTrigger, TriggerError, TriggerOutcome, TriggerRequest};

use crate::tasks::{HttpClients, chain, display_url};

/// The app's internal trigger endpoint, relative to `app.internal_url`.
pub const TRIGGER_PATH: [&str; 4] = ["api", "v1", "internal", "trigger"];

/// Calls the app's internal trigger endpoint.
#[derive(Clone)]
pub struct HttpTrigger {
    client: reqwest::Client,
    url: Url,
    secret: String,
    timeout: Duration,
}

impl HttpTrigger {
    /// `app_url` is where the app's internal listener is (`app.internal_url`);
    /// `timeout` bounds each call.
    ///
    /// # Errors
    /// A message when `app_url` is not an http(s) base URL.
    pub fn new(clients: &HttpClients, app_url: &str, shared_secret: &str, timeout: Duration) -> Result<Self, String> {
        let mut url = Url::parse(app_url).map_err(|e| format!("app.internal_url `{app_url}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(format!("app.internal_url `{app_url}` must be an http or https base URL"));
        }
        url.path_segments_mut().map_err(|()| format!("app.internal_url `{app_url}` cannot be a base URL"))?.pop_if_empty().extend(TRIGGER_PATH);
        Ok(Self { client: clients.get(true).clone(), url, secret: shared_secret.to_string(), timeout })
    }

    async fn call(&self, request: TriggerRequest) -> Result<TriggerOutcome, TriggerError> {
        let what = format!("trigger call {}", display_url(&self.url));
        let sent = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", self.secret))
            .json(&request)
            .timeout(self.timeout)
            .send()
            .await;
        let response = sent.map_err(|e| TriggerError {
            message: if e.is_timeout() {
                format!("{what} timed out after {} s", self.timeout.as_secs())
            } else {
                format!("{what} failed: {}", chain(&e))
            },
            retryable: true,
        })?;
        let status = response.status().as_u16();
        let body: Value = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok().or_else(|| (!b.is_empty()).then(|| Value::String(String::from_utf8_lossy(&b).into_owned()))))
            .unwrap_or(Value::Null);
        interpret(&what, status, &body)
    }
}

impl TransitionTrigger for HttpTrigger {
    fn trigger(&self, request: TriggerRequest) -> BoxFuture<'_, Result<TriggerOutcome, TriggerError>> {
        Box::pin(self.call(request))
    }
}

/// Maps the app's answer to an outcome or error.
fn interpret(what: &str, status: u16, body: &Value) -> Result<TriggerOutcome, TriggerError> {
    if (200..300).contains(&status) {
        let outcome = body.get("outcome").unwrap_or(body);
        return serde_json::from_value::<TriggerOutcome>(outcome.clone()).map_err(|_| TriggerError {
            message: format!("{what} answered {status} without a known outcome: {}", short(body)),
            retryable: true,
        });
    }
    let code = body.get("errorCode").and_then(Value::as_str).unwrap_or_default();
    if status == 409 && code.to_ascii_lowercase().contains("busy") {
        return Ok(TriggerOutcome::Busy);
    }
    let detail = body
        .get("message")
        .or_else(|| body.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| short(body));
    let retryable = body
        .get("retryable")
        .and_then(Value::as_bool)
        .unwrap_or(status >= 500 || matches!(status, 401 | 403 | 404 | 408 | 429));
    if matches!(status, 401 | 403) {
        tracing::error!("{what} was refused ({status}): app and execution must share execution.shared_secret");
    }
    let code = if code.is_empty() { String::new() } else { format!(" [{code}]") };
    Err(TriggerError { message: format!("{what} answered {status}{code}: {detail}"), retryable })
}

fn short(body: &Value) -> String {
    let text = match body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_and_errors() {
        assert_eq!(interpret("t", 200, &json!({"outcome": "applied"})), Ok(TriggerOutcome::Applied));
        assert_eq!(interpret("t", 200, &json!("stale")), Ok(TriggerOutcome::Stale));
        assert_eq!(interpret("t", 200, &json!({"outcome": "busy"})), Ok(TriggerOutcome::Busy));
        assert_eq!(interpret("t", 409, &json!({"errorCode": "instance-busy"})), Ok(TriggerOutcome::Busy));
        assert!(interpret("t", 200, &json!({"outcome": "maybe"})).unwrap_err().retryable);
        let e = interpret("t", 422, &json!({"errorCode": "invalid-payload", "detail": "amount missing"})).unwrap_err();
        assert!(!e.retryable && e.message.contains("amount missing") && e.message.contains("invalid-payload"), "{e}");
        assert!(interpret("t", 503, &Value::Null).unwrap_err().retryable);
        assert!(interpret("t", 401, &Value::Null).unwrap_err().retryable);
        assert!(!interpret("t", 500, &json!({"message": "bug", "retryable": false})).unwrap_err().retryable);
    }
}
