//! Internal endpoints, called by the execution service when it runs as its own
//! process. They require `Authorization: Bearer <execution.shared_secret>`.
//!
//! `POST /api/v1/internal/trigger`: body is a [`TriggerRequest`] (camelCase JSON);
//! the app runs the transition through the same trigger as in-process.
//! - 200 `{"outcome": "applied" | "stale" | "busy"}`;
//! - 422 problem `trigger.failed` with `retryable: bool` and the message in `detail`;
//! - 401 `auth.unauthorized` without the right secret; 400 for a malformed body.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use vnext_core::traits::{TriggerError, TriggerRequest};

use super::AppState;
use super::body::JsonBody;
use crate::error::{ApiError, ErrorCode};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/internal/trigger", post(trigger))
}

/// Compares the bearer token without an early exit on the first differing byte.
fn authorized(headers: &HeaderMap, secret: &str) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    token.len() == secret.len() && token.bytes().zip(secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn trigger(State(state): State<AppState>, headers: HeaderMap, body: JsonBody) -> Result<Json<Value>, ApiError> {
    if !authorized(&headers, &state.settings.shared_secret) {
        return Err(ApiError::new(ErrorCode::Unauthorized, "internal endpoints need `Authorization: Bearer <execution.shared_secret>`"));
    }
    let request: TriggerRequest = serde_json::from_value(body.value)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("not a trigger request: {e}")))?;
    // On a task of its own: a scheduler that dies or gives up waiting must not
    // cancel a transition half-way (see `command::detached`).
    let trigger = state.engine.trigger();
    let fired = tokio::spawn(async move { trigger.trigger(request).await })
        .await
        .unwrap_or_else(|e| Err(TriggerError { message: format!("the trigger's work stopped: {e}"), retryable: true }));
    match fired {
        Ok(outcome) => Ok(Json(json!({ "outcome": outcome }))),
        Err(e) => Err(ApiError::new(ErrorCode::TriggerFailed, e.message).with_extra("retryable", Value::Bool(e.retryable))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_token_must_match_exactly() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "secret-123"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret-123"));
        assert!(authorized(&h, "secret-123"));
        assert!(!authorized(&h, "secret-124"));
        assert!(!authorized(&h, "secret-1234"));
    }
}
