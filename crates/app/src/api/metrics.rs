//! `GET /metrics`: the Prometheus text of this process (`vnext_telemetry::metrics`
//! owns the names; docs/api.md lists them). Each replica is scraped on its own.
//!
//! The pool gauges are read from the domain pools right before rendering, so
//! they show the pools as they are at the scrape. Requests are counted by
//! `vnext_telemetry::http::track_requests`, added in `crate::server`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vnext_telemetry::metrics;

use super::AppState;

/// The Prometheus text of this process.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)))]
async fn render(State(state): State<AppState>) -> impl IntoResponse {
    for pool in state.engine.databases().pool_stats() {
        metrics::pool(&pool.domain, pool.in_use, pool.idle, pool.max);
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], metrics::render())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render))
}
