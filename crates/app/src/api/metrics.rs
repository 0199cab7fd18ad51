//! `GET /metrics`: Prometheus text exposition, and the middleware that counts.
//!
//! Recorded per process (each replica is scraped on its own):
//! - `vnext_http_requests_total{method,route,status}`: answered requests; `route` is
//!   the route template (`/api/v1/{domain}/workflows/{workflow}/instances`), or
//!   `unmatched`, and `method` is a standard method or `OTHER`, so label
//!   cardinality stays bounded whatever clients send;
//! - `vnext_http_request_duration_seconds{method,route}`: latency histogram;
//! - `vnext_transitions_total{kind,result}`: start / transition / retry requests by
//!   result (`sync`, `accepted`, or the error code). Automatic transitions chained
//!   by the engine are part of the request that caused them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    transitions: BTreeMap<(&'static str, String), u64>,
}

/// The counters of one process.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still usable.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self.lock();
        *inner.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        let h = inner.latency.entry((method.to_string(), route.to_string())).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// Records the result of a start, transition or retry request.
    pub fn transition(&self, kind: &'static str, result: &str) {
        *self.lock().transitions.entry((kind, result.to_string())).or_default() += 1;
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str("# HELP vnext_http_requests_total HTTP requests answered, by route template and status.\n");
        out.push_str("# TYPE vnext_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "vnext_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP vnext_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE vnext_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &inner.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(out, "vnext_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "vnext_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "vnext_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "vnext_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP vnext_transitions_total Start, transition and retry requests, by result.\n");
        out.push_str("# TYPE vnext_transitions_total counter\n");
        for ((kind, result), n) in &inner.transitions {
            let _ = writeln!(out, "vnext_transitions_total{{kind=\"{kind}\",result=\"{}\"}} {n}", escape(result));
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Times every request and counts it by route template and status.
pub async fn metrics_middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only standard methods become label values; anything else is `OTHER`.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_string(),
        _ => "OTHER".to_string(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    state.metrics.request(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
        state.metrics.render(),
    )
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new();
        m.request("GET", "/health", 200, 0.003);
        m.request("GET", "/health", 200, 0.3);
        m.transition("start", "sync");
        let text = m.render();
        assert!(text.contains("vnext_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("route=\"/health\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("route=\"/health\",le=\"0.5\"} 2"), "{text}");
        assert!(text.contains("vnext_transitions_total{kind=\"start\",result=\"sync\"} 1"), "{text}");
    }
}
