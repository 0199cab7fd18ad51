//! The execution service as `vnext execution` runs it: bound on port 0,
//! answering health, readiness and invocations, stopping on cancellation.

use crate::common;

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vnext_core::model::TaskType;
use vnext_core::traits::{TaskExecutor, TaskInvocation};
use vnext_execution::service::{ExecutionService, ServiceOptions};
use vnext_execution::{HttpClients, RemoteExecutor};
use vnext_init::config::Config;
use vnext_init::db::Databases;

use common::db::TestDomain;

#[tokio::test]
async fn serves_and_stops_on_cancellation() {
    // A throwaway database stands in for the control database: no domains are
    // registered in it, so the scheduler idles.
    let control = TestDomain::create("svc").await;
    let mut config = Config::load(None).unwrap();
    let options = control.pool.connect_options();
    config.database.url = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap()
    );
    config.execution.listen = "127.0.0.1:0".into();
    config.execution.shared_secret = "service-test-secret".into();
    let databases = Databases::connect(&config).await.unwrap();
    let service = ExecutionService::bind(databases, ServiceOptions::default()).await.unwrap();
    let addr = service.local_addr();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run(shutdown.clone()));

    assert_eq!(reqwest::get(format!("http://{addr}/health")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("http://{addr}/ready")).await.unwrap().status(), 200);
    let remote = RemoteExecutor::new(&HttpClients::new(), &format!("http://{addr}"), "service-test-secret").unwrap();
    let answer = remote
        .execute(TaskInvocation {
            domain: "sales".into(),
            flow: "order".into(),
            instance_id: Uuid::new_v4(),
            instance_key: None,
            task_key: "bad".into(),
            task_version: "1.0.0".into(),
            task_type: TaskType::Http,
            config: json!({"method": "GET"}),
            idempotency_key: None,
        })
        .await;
    assert_eq!(answer.error.unwrap().code, "Task:config");

    // An attempt the egress guard refuses (loopback, outside a development run).
    let refused = remote
        .execute(TaskInvocation {
            domain: "sales".into(),
            flow: "order".into(),
            instance_id: Uuid::new_v4(),
            instance_key: None,
            task_key: "local".into(),
            task_version: "1.0.0".into(),
            task_type: TaskType::Http,
            config: json!({"method": "GET", "url": "http://127.0.0.1:9/x"}),
            idempotency_key: None,
        })
        .await;
    assert!(!refused.is_success);

    // /metrics needs the shared secret, and counts the attempt by its class.
    let client = reqwest::Client::new();
    let metrics_url = format!("http://{addr}/metrics");
    assert_eq!(client.get(&metrics_url).send().await.unwrap().status(), 401);
    let r = client.get(&metrics_url).bearer_auth("service-test-secret").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let attempts: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "vnext_http_task_attempts_total" && s.labels.get("status_class") == Some("refused"))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(attempts >= 1.0, "{text}");
    // Requests by route template (a template's braces are more than this
    // parser's label pattern takes, so the line is matched as text).
    assert!(text.contains(r#"route="/api/v1/execution/invoke/{task_type}/{key}",status="200"}"#), "{text}");

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), running).await.expect("stops within the drain deadline");
    stopped.unwrap().unwrap();
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err(), "still serving after shutdown");
}
