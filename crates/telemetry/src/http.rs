//! The HTTP request-tracking layer: every answered request is counted and
//! timed by method, route template and status ([`crate::metrics::http_request`]).
//!
//! `route` is the template the router matched (`/api/v1/{domain}/workflows/
//! {workflow}/instances`) or `unmatched`, and `method` a standard method or
//! `OTHER`, so whatever clients send, the label set stays bounded. Add it with
//! `router.layer(axum::middleware::from_fn(track_requests))` inside the
//! router's routes (so the matched template is known).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Times the request and records it once answered.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    crate::metrics::http_request(method, route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
