//! A real API server on port 0 against real PostgreSQL, one per test.
//!
//! Each [`TestApp`] gets its own database prefix (`t<8 hex>_`), its own control
//! database (`<prefix>control`) and therefore its own domain databases, so tests
//! of every crate can run in parallel. Dropping it stops the server and drops
//! every database and role with the prefix (best effort).

#![allow(dead_code)]

pub mod fixtures;
pub mod metrics;
pub mod seed;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vnext_app::engine::{Databases, Engine, EngineDeps, EngineSettings, SystemClock};
use vnext_app::server::{Server, ServerConfig};
use vnext_core::traits::{TaskError, TaskExecutor, TaskInvocation, TaskResponse};
use vnext_init::config::Config;
use vnext_testkit::db;

/// The server every test talks to.
pub use vnext_testkit::db::{ADMIN_URL, unique_prefix};

/// Fails every I/O task: these tests exercise the API, not task execution.
pub struct NoExecutor;

impl TaskExecutor for NoExecutor {
    fn execute(&self, invocation: TaskInvocation) -> BoxFuture<'_, TaskResponse> {
        Box::pin(async move {
            let error = TaskError::new("Task:unavailable", format!("no executor in this test (task {})", invocation.task_key), false);
            TaskResponse { is_success: false, error: Some(error), ..TaskResponse::default() }
        })
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    /// The internal listener (trigger endpoint), on a port of its own.
    pub internal_base: String,
    pub client: reqwest::Client,
    pub prefix: String,
    pub config: Config,
    pub engine: Engine,
    /// The engine's databases, for provisioning and seeding.
    pub init: vnext_init::db::Databases,
    shutdown: CancellationToken,
}

impl TestApp {
    /// Starts a server with default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after `adjust` has changed the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let prefix = unique_prefix();
        let control = format!("{prefix}control");
        db::create_database(ADMIN_URL, &control).await;

        let mut config = Config::default();
        config.database.url = format!("postgres://postgres@127.0.0.1:5432/{control}");
        config.database.database_prefix = prefix.clone();
        config.database.max_connections_per_domain = 4;
        config.app.listen = "127.0.0.1:0".into();
        adjust(&mut config);

        let databases = Databases::connect(&config).await.expect("connect");
        let engine = Engine::new(EngineDeps {
            databases,
            executor: Arc::new(NoExecutor),
            clock: Arc::new(SystemClock),
            settings: EngineSettings::from_config(&config),
        });
        let shutdown = CancellationToken::new();
        let (addr, serve) = Server::bind(ServerConfig {
            engine: engine.clone(),
            listen: config.app.listen.clone(),
            shutdown: shutdown.clone(),
            drain: Duration::from_secs(2),
        })
        .await
        .expect("bind");
        tokio::spawn(serve);
        let (internal, serve_internal) = Server::bind_internal(ServerConfig {
            engine: engine.clone(),
            listen: "127.0.0.1:0".into(),
            shutdown: shutdown.clone(),
            drain: Duration::from_secs(2),
        })
        .await
        .expect("bind the internal listener");
        tokio::spawn(serve_internal);
        TestApp {
            addr,
            base: format!("http://{addr}"),
            internal_base: format!("http://{internal}"),
            client: reqwest::Client::new(),
            prefix,
            config,
            init: engine.databases().clone(),
            engine,
            shutdown,
        }
    }

    /// Provisions the fixtures' domain (control schema, database, system schemas).
    pub async fn provision(&self, domain: &str) {
        vnext_init::provision::prepare_control(&self.init, vnext_init::migrate::Migrations::embedded())
            .await
            .expect("control schema");
        let domain = vnext_core::ident::DomainName::new(domain).unwrap();
        vnext_init::provision::provision_domain(&self.init, &domain).await.expect("provision");
    }

    /// Publishes one component through the API.
    pub async fn publish(&self, component: &Value) -> reqwest::Response {
        self.post_json("/api/v1/definitions/publish", component).await
    }

    /// Provisions the fixtures' domain and publishes the fixture package.
    pub async fn publish_fixtures(&self) {
        self.provision(fixtures::DOMAIN).await;
        for component in fixtures::package() {
            let r = self.publish(&component).await;
            let status = r.status().as_u16();
            assert!(status == 201 || status == 200, "publish {}: {status} {}", component["key"], r.text().await.unwrap());
        }
    }

    /// The fixtures' domain pool with the workflow's schema created, for seeding.
    pub async fn flow_pool(&self) -> sqlx::PgPool {
        let domain = vnext_core::ident::DomainName::new(fixtures::DOMAIN).unwrap();
        let pool = self.init.domain(&domain).await.expect("domain pool");
        let flow = vnext_core::ident::FlowKey::new(fixtures::FLOW).unwrap();
        vnext_init::flow_schema::ensure_flow_schema(&pool, &flow).await.expect("flow schema");
        pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.patch(self.url(path)).json(body).send().await.expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let prefix = self.prefix.clone();
        db::block_in_drop(move || async move { drop_prefix(&prefix).await });
    }
}

/// Drops every database and role named with `prefix`.
pub async fn drop_prefix(prefix: &str) {
    db::drop_prefixed(ADMIN_URL, prefix).await;
}

/// Reads a problem+json answer, checking status, media type, `code` and
/// `errorCode` (`{prefix}.{code}`).
pub async fn expect_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "status; body: {text}");
    assert_eq!(media, "application/problem+json", "media type; body: {text}");
    let body: Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert_eq!(body["code"], code, "code; body: {text}");
    let prefix = body["prefix"].as_str().unwrap_or_default();
    assert!(!prefix.is_empty(), "prefix; body: {text}");
    assert_eq!(body["errorCode"], format!("{prefix}.{code}"), "errorCode = prefix.code; body: {text}");
    assert_eq!(body["status"], status, "status member; body: {text}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{text}");
    assert!(body["instance"].as_str().is_some_and(|i| i.starts_with('/')), "instance path; body: {text}");
    assert!(body["traceId"].as_str().is_some_and(|t| !t.is_empty()), "traceId; body: {text}");
    body
}
