//! A local HTTP endpoint for the HTTP-task scenario.

use std::net::SocketAddr;

use axum::{Json, Router, routing::post};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Serves `POST /hook` → `{"ok": true}` on a free loopback port until cancelled.
///
/// # Errors
/// When no port can be bound.
pub async fn start() -> Result<(SocketAddr, CancellationToken), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let app = Router::new().route("/hook", post(|_body: axum::body::Bytes| async { Json(json!({ "ok": true })) }));
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await;
    });
    Ok((addr, stop))
}
