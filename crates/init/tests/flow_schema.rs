//! Flow schemas created on first start, under concurrency.

mod common;

use std::time::Instant;

use common::TestEnv;
use vnext_core::ident::FlowKey;
use vnext_init::InitError;
use vnext_init::migrate::{MigrationSet, Migrations};
use vnext_init::flow_schema::ensure_flow_schema;
use vnext_init::provision::provision_domain;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_first_starts_create_one_schema_without_error() {
    let env = TestEnv::new().await;
    let domain = env.domain("orders");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let flow = FlowKey::new("customer-onboarding").unwrap();

    let started = Instant::now();
    let calls = (0..50).map(|_| {
        let pool = pool.clone();
        let flow = flow.clone();
        tokio::spawn(async move { ensure_flow_schema(&pool, &flow).await })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().expect("every concurrent caller succeeds");
    }
    println!("50 concurrent ensure_flow_schema: {} ms", started.elapsed().as_millis());

    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'customer%'").fetch_all(&pool).await.unwrap();
    assert_eq!(schemas, ["customer_onboarding"]);
    let registered: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT flow_key, schema_name, version FROM sys_schemas.flow_schemas").fetch_all(&pool).await.unwrap();
    let flow_latest = Migrations::embedded().latest(MigrationSet::Flow);
    assert_eq!(registered, [("customer-onboarding".to_string(), "customer_onboarding".to_string(), flow_latest)]);
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_schemas.migrations WHERE schema_name = 'customer_onboarding'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(history, Migrations::embedded().set(MigrationSet::Flow).count() as i64, "each flow migration ran exactly once");
    // The tables are in the flow schema, none leaked into public.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'customer_onboarding' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(tables, ["correlations", "incidents", "instances", "task_runs", "transitions"]);
    let public: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(public, 0);
}

#[tokio::test]
async fn first_call_creates_and_later_calls_take_the_fast_path() {
    let env = TestEnv::new().await;
    let domain = env.domain("orders");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let flow = FlowKey::new("payment").unwrap();

    let t = Instant::now();
    ensure_flow_schema(&pool, &flow).await.unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    for _ in 0..20 {
        ensure_flow_schema(&pool, &flow).await.unwrap();
    }
    let later = t.elapsed() / 20;
    println!("ensure_flow_schema: first call {} ms, later calls {} µs each", first.as_millis(), later.as_micros());
    let migrated_at: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT migrated_at FROM sys_schemas.flow_schemas").fetch_all(&pool).await.unwrap();
    assert_eq!(migrated_at.len(), 1);
}

#[tokio::test]
async fn two_workflow_keys_mapping_to_one_schema_are_refused() {
    let env = TestEnv::new().await;
    let domain = env.domain("orders");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    ensure_flow_schema(&pool, &FlowKey::new("a-b").unwrap()).await.unwrap();
    let err = ensure_flow_schema(&pool, &FlowKey::new("a_b").unwrap()).await.unwrap_err();
    assert!(matches!(&err, InitError::SchemaTaken { owner, .. } if owner == "a-b"), "{err}");
}
