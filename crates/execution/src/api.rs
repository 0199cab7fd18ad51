//! The execution service's HTTP surface.
//!
//! - `POST /api/v1/execution/invoke/{type}/{key}`: runs one task. The caller
//!   presents the shared secret as `Authorization: Bearer <secret>` (401
//!   otherwise); the body is a [`TaskInvocation`] whose type and key match the
//!   path (400 otherwise). Every accepted call answers 200 with a
//!   [`TaskResponse`](vnext_core::traits::TaskResponse), task failures included: the caller's error boundary
//!   decides what a failure means.
//! - `GET /health`: the process is up. `GET /ready`: its dependencies answer.
//! - `GET /metrics`: Prometheus text (jobs, HTTP task attempts, requests,
//!   process); needs the shared secret as a bearer token.
//!
//! Errors are `application/problem+json` with a stable `errorCode`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde_json::json;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskExecutor, TaskInvocation};

/// Largest invocation body accepted.
pub const BODY_LIMIT_BYTES: usize = 8 * 1024 * 1024;

/// Checks that the service can do its work (e.g. the databases answer).
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What the routes need.
#[derive(Clone)]
pub struct ApiState {
    executor: Arc<dyn TaskExecutor>,
    secret: Arc<str>,
    readiness: Option<ReadinessCheck>,
}

impl ApiState {
    /// Tasks run on `executor`; callers must present `shared_secret`.
    pub fn new(executor: Arc<dyn TaskExecutor>, shared_secret: &str) -> Self {
        Self { executor, secret: shared_secret.into(), readiness: None }
    }

    /// `GET /ready` answers 503 while `check` fails.
    #[must_use]
    pub fn with_readiness(mut self, check: ReadinessCheck) -> Self {
        self.readiness = Some(check);
        self
    }
}

/// The invoke endpoint plus `/health` and `/ready`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/execution/invoke/{task_type}/{key}", post(invoke))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(vnext_telemetry::http::track_requests))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

async fn invoke(
    State(state): State<ApiState>,
    Path((task_type, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !authorized(&headers, &state.secret) {
        let mut response = problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the invoke endpoint needs `Authorization: Bearer <execution.shared_secret>`",
        );
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body-too-large" } else { "bad-body" };
            return problem(status, code, &format!("cannot read the request body: {rejection}"));
        }
    };
    let Some(path_type) = TaskType::from_name(&task_type).or_else(|| TaskType::from_code(&task_type)) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "unknown-task-type",
            &format!("`{task_type}` in the path is not a task type (use a name such as `http` or a code \"1\" to \"20\")"),
        );
    };
    let invocation: TaskInvocation = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return problem(StatusCode::BAD_REQUEST, "invalid-invocation", &format!("the body is not a task invocation: {e}"));
        }
    };
    if invocation.task_type != path_type {
        return problem(
            StatusCode::BAD_REQUEST,
            "task-type-mismatch",
            &format!(
                "the path names task type `{}` but the body's taskType is \"{}\" ({})",
                path_type.name(),
                invocation.task_type.code(),
                invocation.task_type.name()
            ),
        );
    }
    if invocation.task_key != key {
        return problem(
            StatusCode::BAD_REQUEST,
            "task-key-mismatch",
            &format!("the path names task `{key}` but the body's taskKey is `{}`", invocation.task_key),
        );
    }
    let response = state.executor.execute(invocation).await;
    (StatusCode::OK, Json(response)).into_response()
}

/// This process's metrics as Prometheus text; the caller presents the shared
/// secret like the invoke endpoint (a scraper sends it as a bearer token).
async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.secret) {
        return problem(StatusCode::UNAUTHORIZED, "unauthorized", "/metrics needs `Authorization: Bearer <execution.shared_secret>`");
    }
    let content_type = HeaderValue::from_static(vnext_telemetry::metrics::CONTENT_TYPE);
    ([(header::CONTENT_TYPE, content_type)], vnext_telemetry::metrics::render()).into_response()
}

async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn ready(State(state): State<ApiState>) -> Response {
    match &state.readiness {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(check) => match check().await {
            Ok(()) => Json(json!({"status": "ready"})).into_response(),
            Err(reason) => problem(StatusCode::SERVICE_UNAVAILABLE, "not-ready", &reason),
        },
    }
}

/// Compares the bearer token in constant time (no early exit on the first
/// differing byte).
fn authorized(headers: &HeaderMap, secret: &str) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
    else {
        return false;
    };
    let (a, b) = (token.trim().as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An `application/problem+json` response.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("urn:vnext:error:{code}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "errorCode": code,
        "detail": detail,
    });
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_must_match_exactly() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "secret-123"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret-123"));
        assert!(authorized(&h, "secret-123"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret-124"));
        assert!(!authorized(&h, "secret-123"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic secret-123"));
        assert!(!authorized(&h, "secret-123"));
    }
}
