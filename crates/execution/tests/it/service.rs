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

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), running).await.expect("stops within the drain deadline");
    stopped.unwrap().unwrap();
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err(), "still serving after shutdown");
}
