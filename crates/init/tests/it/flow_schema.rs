//! Flow schemas created on first start, under concurrency.

use crate::common;

use std::time::Instant;

use common::TestEnv;
use vnext_core::ident::FlowKey;
use vnext_init::InitError;
use vnext_init::migrate::{Migration, MigrationSet, Migrations};
use vnext_init::flow_schema::{
    ensure_flow_schema, ensure_flow_schema_with, migrate_flow_schemas, replenish_spares, replenish_spares_with,
};
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

async fn spare_names(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT schema_name FROM sys_schemas.spare_schemas ORDER BY created_at").fetch_all(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_starts_take_migrated_spares_and_fall_back_to_creating_when_none_is_left() {
    let env = TestEnv::new().await;
    let domain = env.domain("orders");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let flow_count = Migrations::embedded().set(MigrationSet::Flow).count() as i64;

    assert_eq!(replenish_spares(&pool, 2).await.unwrap(), 2);
    assert_eq!(replenish_spares(&pool, 2).await.unwrap(), 0, "topping up a full pool creates nothing");
    let spares = spare_names(&pool).await;
    assert_eq!(spares.len(), 2);
    assert!(spares.iter().all(|s| s.contains('$')), "{spares:?}");

    // Three first starts at once: two take the spares, one creates its schema.
    let flows = ["invoice", "refund", "dunning-run"];
    let calls = flows.map(|f| {
        let pool = pool.clone();
        tokio::spawn(async move { ensure_flow_schema(&pool, &FlowKey::new(f).unwrap()).await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert!(spare_names(&pool).await.is_empty());
    for schema in ["invoice", "refund", "dunning_run"] {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(tables, ["correlations", "incidents", "instances", "task_runs", "transitions"], "{schema}");
        let history: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_schemas.migrations WHERE schema_name = $1")
            .bind(schema)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(history, flow_count, "{schema}: its history moved along with the spare");
    }
    // Nothing is left under a spare's name, and the schemas work.
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM sys_schemas.migrations WHERE schema_name LIKE '%$%')
              + (SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%$%')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0);
    sqlx::query("INSERT INTO invoice.instances (id, flow_version, current_state, data_version, data_version_no, etag) VALUES (gen_random_uuid(), '1.0.0', 's', '1.0.0', 0, 'e')")
        .execute(&pool)
        .await
        .unwrap();
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_schemas.flow_schemas").fetch_one(&pool).await.unwrap();
    assert_eq!(registered, 3);
    // Startup finds everything up to date.
    let report = migrate_flow_schemas(&pool, &domain).await.unwrap();
    assert_eq!(report.schemas.len(), 3);
    assert!(report.schemas.iter().all(|s| s.applied.is_empty() && s.error.is_none()), "{report:?}");
}

#[tokio::test]
async fn spares_are_brought_up_to_date_with_a_new_flow_migration() {
    let env = TestEnv::new().await;
    let domain = env.domain("orders");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    replenish_spares(&pool, 1).await.unwrap();
    let next = Migrations::embedded().latest(MigrationSet::Flow) + 1;
    let upgraded = Migrations::embedded().with(Migration::new(
        MigrationSet::Flow,
        next,
        "instance_priority",
        "ALTER TABLE instances ADD COLUMN priority integer NOT NULL DEFAULT 0;",
    ));
    assert_eq!(replenish_spares_with(&pool, 1, &upgraded).await.unwrap(), 0);
    let spare = spare_names(&pool).await.remove(0);
    let top: i64 = sqlx::query_scalar("SELECT max(version) FROM sys_schemas.migrations WHERE schema_name = $1")
        .bind(&spare)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(top, next);
    ensure_flow_schema_with(&pool, &FlowKey::new("invoice").unwrap(), &upgraded).await.unwrap();
    let has: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'invoice' AND table_name = 'instances' AND column_name = 'priority')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(has);
}
