//! Names that cannot be database identifiers are refused before any SQL runs.

use crate::common;

use common::{TestEnv, component, workflow, write, SCRIPT_TASK};
use vnext_core::ident::{DomainName, FlowKey};
use vnext_init::InitError;
use vnext_init::bootstrap::{self, InitOptions};
use vnext_init::package::publish_folder;
use vnext_init::provision::{provision_domain, provision_domain_named};

fn bad_names() -> Vec<String> {
    vec![
        "quo\"te".into(),
        "semi;colon".into(),
        "x'; DROP DATABASE postgres; --".into(),
        "sys_x".into(),
        "sys-x".into(),
        "a".repeat(64),
        "Upper".into(),
        "pg_catalog".into(),
        "public".into(),
        String::new(),
    ]
}

async fn schemas(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT nspname::text FROM pg_namespace ORDER BY 1").fetch_all(pool).await.unwrap()
}

#[tokio::test]
async fn invalid_domain_names_are_refused_before_any_sql() {
    let env = TestEnv::new().await;
    let before = env.created_objects().await;

    for name in bad_names() {
        assert!(DomainName::new(&name).is_err(), "{name:?}");
        let err = provision_domain_named(&env.dbs, &name).await.unwrap_err();
        assert!(matches!(err, InitError::InvalidName { what: "domain", .. }), "{name:?}: {err}");
    }
    // `vnext init --domain <bad>`: refused, reported, nothing created.
    let options = InitOptions { domains: bad_names(), dir: None, ..InitOptions::default() };
    let report = bootstrap::run(&env.dbs, &options, |_| {}).await.unwrap();
    assert_eq!(report.invalid_domains.len(), bad_names().len());
    assert!(report.domains.is_empty());

    // A folder whose components name bad domains: every file fails, nothing is created.
    let dir = env.folder("bad-domains");
    for (i, name) in bad_names().iter().enumerate() {
        let domain = name.replace('"', "\\\"");
        write(&dir, &format!("Tasks/t{i}.json"), &component("sys-tasks", &domain, "task", "1.0.0", SCRIPT_TASK));
    }
    let err = publish_folder(&env.dbs, &dir, |_| {}).await.unwrap_err();
    let InitError::Package(report) = err else { panic!("expected a package report") };
    assert_eq!(report.failures.len(), bad_names().len(), "{:?}", report.failures);
    // The validator's envelope rule, or the identifier rule it does not cover
    // (reserved names, 64+ bytes): either way the domain is named as the problem.
    assert!(
        report.failures.iter().all(|f| f.reason.contains("[envelope.domain.invalid]") || f.reason.contains("invalid domain name")),
        "{:?}",
        report.failures
    );
    assert!(report.failures.iter().any(|f| f.reason.contains("`sys-x` is reserved")), "{:?}", report.failures);

    assert_eq!(env.created_objects().await, before, "no database or role was created");
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM vnext_control.domains")
        .fetch_one(env.dbs.control())
        .await
        .unwrap();
    assert_eq!(registered, 0);
}

#[tokio::test]
async fn invalid_workflow_names_are_refused_before_any_sql() {
    let env = TestEnv::new().await;
    let domain = env.domain("shop");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    let before = schemas(&pool).await;

    for name in bad_names() {
        assert!(FlowKey::new(&name).is_err(), "{name:?}");
    }
    // Workflow components whose key cannot become a schema are refused at publish.
    let dir = env.folder("bad-workflows");
    for (i, name) in bad_names().iter().enumerate() {
        write(&dir, &format!("Workflows/w{i}.json"), &workflow("shop", &name.replace('"', "\\\""), "1.0.0"));
    }
    let err = publish_folder(&env.dbs, &dir, |_| {}).await.unwrap_err();
    let InitError::Package(report) = err else { panic!("expected a package report") };
    assert_eq!(report.failures.len(), bad_names().len(), "{:?}", report.failures);
    for f in &report.failures {
        assert!(f.reason.contains("[envelope.key.invalid]") || f.reason.contains("invalid workflow name"), "{f:?}");
    }

    assert!(report.failures.iter().any(|f| f.reason.contains("`sys-x` is reserved")), "{:?}", report.failures);
    assert_eq!(schemas(&pool).await, before, "no schema was created");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_flows.components").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 0);
}
