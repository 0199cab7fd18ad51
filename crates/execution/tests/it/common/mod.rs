//! Helpers shared by the integration tests: local HTTP servers on port 0 and
//! throwaway domain databases.
#![allow(dead_code)]

pub mod db;
pub mod env;
pub mod trigger;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on an ephemeral port and returns its address. The server runs
/// until the test's runtime ends.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("test server");
    });
    addr
}

/// A port nothing listens on: bind one, then let it go.
pub async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    port
}
