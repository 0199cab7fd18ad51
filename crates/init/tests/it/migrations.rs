//! The migration runner across restarts and upgrades.

use crate::common;

use common::TestEnv;
use vnext_core::ident::FlowKey;
use vnext_init::InitError;
use vnext_init::bootstrap::{self, InitOptions};
use vnext_init::flow_schema::{ensure_flow_schema, migrate_flow_schemas, migrate_flow_schemas_with};
use vnext_init::migrate::{Migration, MigrationSet, Migrations};
use vnext_init::provision::{provision_domain, provision_domain_with};

/// The version a test's own added flow migration takes: one past what ships.
fn next_flow_version() -> i64 {
    Migrations::embedded().latest(MigrationSet::Flow) + 1
}

async fn history_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sys_schemas.migrations").fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn a_restart_applies_nothing_twice() {
    let env = TestEnv::new().await;
    let domain = env.domain("billing");
    let first = provision_domain_with(&env.dbs, &domain, Migrations::embedded()).await.unwrap();
    assert!(!first.applied.is_empty());
    let pool = env.dbs.domain(&domain).await.unwrap();
    ensure_flow_schema(&pool, &FlowKey::new("invoice").unwrap()).await.unwrap();
    let before = history_count(&pool).await;

    // What every startup does: provision, then migrate the flow schemas.
    for _ in 0..2 {
        let again = provision_domain_with(&env.dbs, &domain, Migrations::embedded()).await.unwrap();
        assert!(again.applied.is_empty(), "nothing applied twice: {:?}", again.applied);
        let report = migrate_flow_schemas(&pool, &domain).await.unwrap();
        assert_eq!(report.schemas.len(), 1);
        assert!(report.schemas[0].applied.is_empty() && report.schemas[0].error.is_none());
    }
    assert_eq!(history_count(&pool).await, before);
    let control: i64 = sqlx::query_scalar("SELECT count(*) FROM vnext_control.migrations")
        .fetch_one(env.dbs.control())
        .await
        .unwrap();
    assert_eq!(control, Migrations::embedded().set(MigrationSet::Control).count() as i64);
}

#[tokio::test]
async fn a_new_flow_migration_reaches_every_existing_flow_schema() {
    let env = TestEnv::new().await;
    let domain = env.domain("billing");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let flows = ["invoice", "refund", "dunning-run"];
    for f in flows {
        ensure_flow_schema(&pool, &FlowKey::new(f).unwrap()).await.unwrap();
    }

    let upgraded = Migrations::embedded().with(Migration::new(
        MigrationSet::Flow,
        next_flow_version(),
        "instance_priority",
        "ALTER TABLE instances ADD COLUMN priority integer NOT NULL DEFAULT 0;",
    ));
    let report = migrate_flow_schemas_with(&pool, &domain, &upgraded).await.unwrap();
    assert_eq!(report.schemas.len(), 3);
    for s in &report.schemas {
        assert!(s.error.is_none(), "{s:?}");
        assert_eq!(s.applied.iter().map(|m| m.version).collect::<Vec<_>>(), [next_flow_version()], "{}", s.schema);
    }
    for schema in ["invoice", "refund", "dunning_run"] {
        let has: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'instances' AND column_name = 'priority')",
        )
        .bind(schema)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(has, "{schema} got the new column");
    }
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM sys_schemas.flow_schemas").fetch_all(&pool).await.unwrap();
    assert_eq!(versions, [next_flow_version(); 3]);

    // A second run finds nothing to do; a new workflow gets both migrations at once.
    let again = migrate_flow_schemas_with(&pool, &domain, &upgraded).await.unwrap();
    assert!(again.schemas.iter().all(|s| s.applied.is_empty()));
    vnext_init::flow_schema::ensure_flow_schema_with(&pool, &FlowKey::new("late").unwrap(), &upgraded).await.unwrap();
    let late: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_schemas.migrations WHERE schema_name = 'late'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(late, Migrations::embedded().set(MigrationSet::Flow).count() as i64 + 1);
}

#[tokio::test]
async fn a_tampered_migration_is_detected_and_named() {
    let env = TestEnv::new().await;
    let domain = env.domain("billing");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    ensure_flow_schema(&pool, &FlowKey::new("invoice").unwrap()).await.unwrap();

    let original = Migrations::embedded().set(MigrationSet::Flow).next().unwrap().clone();
    // The same file, edited after it was applied.
    let edited = format!("{}\n-- edited after release\n", original.sql);
    let tampered = Migrations::embedded().with(Migration::new(MigrationSet::Flow, original.version, &original.name, edited));
    // Every startup checks the history of every flow schema and system schema.
    let report = migrate_flow_schemas_with(&pool, &domain, &tampered).await.unwrap();
    let failure = report.schemas[0].error.as_ref().expect("tampering is an error");
    assert!(failure.message.contains("flow/0001_instances.sql"), "{}", failure.message);
    assert!(failure.message.contains("changed after it was applied"), "{}", failure.message);

    let components = Migrations::embedded().set(MigrationSet::Components).next().unwrap().clone();
    let tampered_system = Migrations::embedded().with(Migration::new(
        MigrationSet::Components,
        components.version,
        &components.name,
        format!("{}\nCREATE INDEX components_by_domain ON components (domain);\n", components.sql),
    ));
    let err = provision_domain_with(&env.dbs, &domain, &tampered_system).await.unwrap_err();
    match &err {
        InitError::TamperedMigration { file, schema, .. } => {
            assert_eq!(file, "system/components/0001_components.sql");
            assert_eq!(schema, "sys_schemas");
        }
        other => panic!("expected TamperedMigration, got {other}"),
    }
    assert!(err.to_string().contains("system/components/0001_components.sql"));
}

#[tokio::test]
async fn an_applied_migration_missing_from_the_build_is_refused() {
    let env = TestEnv::new().await;
    let domain = env.domain("billing");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let newer = Migrations::embedded().with(Migration::new(MigrationSet::Flow, 7, "from_the_future", "SELECT 1;"));
    vnext_init::flow_schema::ensure_flow_schema_with(&pool, &FlowKey::new("invoice").unwrap(), &newer).await.unwrap();
    let report = migrate_flow_schemas(&pool, &domain).await.unwrap();
    let failure = report.schemas[0].error.as_ref().unwrap();
    assert!(failure.message.contains("0007_from_the_future"), "{}", failure.message);
}

#[tokio::test]
async fn one_broken_flow_schema_does_not_stop_the_others_and_its_failure_is_recorded() {
    let env = TestEnv::new().await;
    let domain = env.domain("billing");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    for f in ["alpha", "broken", "gamma"] {
        ensure_flow_schema(&pool, &FlowKey::new(f).unwrap()).await.unwrap();
    }
    // Someone removed a table by hand: the next migration cannot alter it.
    sqlx::query("DROP TABLE broken.instances").execute(&pool).await.unwrap();

    let upgraded = Migrations::embedded().with(Migration::new(
        MigrationSet::Flow,
        next_flow_version(),
        "instance_priority",
        "ALTER TABLE instances ADD COLUMN priority integer NOT NULL DEFAULT 0;\nCREATE INDEX instances_by_priority ON instances (priority);",
    ));
    // The startup path: provision every domain, migrate flow schemas, record rollouts.
    let options = InitOptions { dir: None, domains: vec![], migrations: upgraded };
    let report = bootstrap::run(&env.dbs, &options, |_| {}).await.unwrap();
    assert!(!report.is_success());
    let problems = report.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("broken") && problems[0].contains(&format!("flow/{:04}_instance_priority.sql", next_flow_version())), "{problems:?}");

    let flows = report.domains[0].flows.as_ref().unwrap().as_ref().unwrap();
    let by_schema = |name: &str| flows.schemas.iter().find(|s| s.schema == name).unwrap();
    assert_eq!(by_schema("alpha").applied.len(), 1);
    assert_eq!(by_schema("gamma").applied.len(), 1);
    assert!(by_schema("broken").error.is_some());

    let registry: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT schema_name, version, last_error FROM sys_schemas.flow_schemas ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    let shipped = Migrations::embedded().latest(MigrationSet::Flow);
    assert_eq!(registry[0], ("alpha".to_string(), next_flow_version(), None));
    assert_eq!((registry[1].0.as_str(), registry[1].1), ("broken", shipped));
    assert!(registry[1].2.as_deref().unwrap().contains("instances"), "{:?}", registry[1].2);
    assert_eq!(registry[2], ("gamma".to_string(), next_flow_version(), None));
    // The broken schema's migration rolled back as a whole: no half-applied index.
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_schemas.migrations WHERE schema_name = 'broken'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(history, Migrations::embedded().set(MigrationSet::Flow).count() as i64);

    let rollouts: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT schema_name, version, status, error FROM vnext_control.rollouts
          WHERE domain = 'billing' AND version = $1 ORDER BY schema_name",
    )
    .bind(next_flow_version())
    .fetch_all(env.dbs.control())
    .await
    .unwrap();
    assert_eq!(rollouts.len(), 3, "{rollouts:?}");
    assert_eq!((rollouts[0].0.as_str(), rollouts[0].2.as_str()), ("alpha", "applied"));
    assert_eq!((rollouts[1].0.as_str(), rollouts[1].2.as_str()), ("broken", "failed"));
    assert!(rollouts[1].3.as_deref().unwrap().contains(&format!("flow/{:04}_instance_priority.sql", next_flow_version())));
    assert_eq!((rollouts[2].0.as_str(), rollouts[2].2.as_str()), ("gamma", "applied"));

    // Once repaired, the next startup clears the recorded failure.
    sqlx::query("CREATE TABLE broken.instances (id uuid PRIMARY KEY)").execute(&pool).await.unwrap();
    let options = InitOptions { dir: None, domains: vec![], migrations: options.migrations.clone() };
    let report = bootstrap::run(&env.dbs, &options, |_| {}).await.unwrap();
    assert!(report.is_success(), "{:?}", report.problems());
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM sys_schemas.flow_schemas WHERE schema_name = 'broken'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(last_error, None);
}
