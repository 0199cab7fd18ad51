//! Liveness and readiness.
//!
//! - `GET /health`: the process answers (200 `{"status":"ok"}`), no I/O.
//! - `GET /ready`: the control database answers a query within two seconds
//!   (200), otherwise 503 `service.unavailable`. Load balancers should route on this.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde_json::{Value, json};

use super::AppState;
use crate::error::{ApiError, ErrorCode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "service",
    responses((status = 200, description = "The process answers", body = super::openapi::shapes::HealthAnswer)))]
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Readiness: the control database answers within two seconds.
#[utoipa::path(get, path = "/ready", operation_id = "ready", tag = "service",
    responses((status = 200, description = "Ready", body = super::openapi::shapes::ReadyAnswer)))]
async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(state.engine.databases().control());
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready", "database": "ok" }))),
        Ok(Err(e)) => Err(ApiError {
            source: Some(Box::new(e)),
            ..ApiError::new(ErrorCode::Unavailable, "the control database does not answer")
        }),
        Err(_) => Err(ApiError::new(ErrorCode::Unavailable, "the control database did not answer within 2 seconds")),
    }
}
