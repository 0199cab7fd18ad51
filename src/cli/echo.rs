//! The callback echo of `vnext up`: a tiny HTTP endpoint on loopback that
//! answers every request with 200 and a JSON object, so the samples' HTTP
//! tasks (the payment sample's merchant notification) have somewhere to call
//! without another program. Development only: `vnext app` never serves it.
//!
//! Answer: `{"acknowledgement": "echo-<n>", "received": {"method", "path",
//! "body"}}`: the `acknowledgement` is what the payment sample stores, and
//! `received` shows what the task sent (the body as JSON when it parses,
//! otherwise its size). It keeps nothing and logs nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Where `vnext up` serves the echo unless `--echo-listen` says otherwise
/// (docs/samples.md uses it).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4209";

/// Binds `listen` and serves the echo until `shutdown` fires.
///
/// # Errors
/// A message when the address cannot be bound (e.g. in use).
pub async fn start(listen: &str, shutdown: CancellationToken) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if !addr.ip().is_loopback() {
        return Err(format!("the callback echo listens on loopback only, not {addr}"));
    }
    let router = Router::new().fallback(echo).with_state(Arc::new(AtomicU64::new(0)));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    });
    Ok(addr)
}

async fn echo(State(count): State<Arc<AtomicU64>>, method: Method, uri: Uri, body: Bytes) -> Json<Value> {
    let n = count.fetch_add(1, Ordering::Relaxed) + 1;
    let body = serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| json!({ "bytes": body.len() }));
    Json(json!({
        "acknowledgement": format!("echo-{n}"),
        "received": { "method": method.as_str(), "path": uri.path(), "body": body },
    }))
}
