//! Provisioning is idempotent.

use crate::common;

use common::TestEnv;
use sqlx::PgPool;
use vnext_init::provision::{provision_domain_with, registered_domains};
use vnext_init::migrate::Migrations;

/// Everything provisioning touches, as text, to compare two runs.
async fn snapshot(env: &TestEnv, pool: &PgPool, database: &str) -> Vec<String> {
    let control = env.dbs.control();
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT format('db %s owner=%s acl=%s', datname, pg_get_userbyid(datdba), datacl::text) FROM pg_database WHERE datname = $1
         UNION ALL
         SELECT format('role %s %s %s %s %s %s', rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword)
           FROM pg_authid WHERE rolname = $1",
    )
    .bind(database)
    .fetch_all(control)
    .await
    .unwrap();
    out.extend(
        sqlx::query_scalar::<_, String>("SELECT format('domain %s', d) FROM vnext_control.domains d")
            .fetch_all(control)
            .await
            .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>("SELECT format('rollouts %s', count(*)) FROM vnext_control.rollouts")
            .fetch_all(control)
            .await
            .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>("SELECT format('control-migration %s', m) FROM vnext_control.migrations m ORDER BY 1")
            .fetch_all(control)
            .await
            .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>(
            "SELECT format('schema %s owner=%s acl=%s', nspname, pg_get_userbyid(nspowner), nspacl::text) FROM pg_namespace ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>("SELECT format('migration %s', m) FROM sys_schemas.migrations m ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>(
            "SELECT format('table %s.%s', table_schema, table_name) FROM information_schema.tables
              WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    );
    out
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let env = TestEnv::new().await;
    let domain = env.domain("customer-care");
    let first = provision_domain_with(&env.dbs, &domain, Migrations::embedded()).await.unwrap();
    assert!(first.created_role && first.created_database);
    assert_eq!(first.database, format!("{}customer_care", env.prefix));
    let pool = env.dbs.domain(&domain).await.unwrap();
    let before = snapshot(&env, &pool, &first.database).await;

    let second = provision_domain_with(&env.dbs, &domain, Migrations::embedded()).await.unwrap();
    assert!(second.changed_nothing(), "{second:?}");
    assert_eq!(snapshot(&env, &pool, &first.database).await, before);

    let domains = registered_domains(&env.dbs).await.unwrap();
    assert_eq!(domains.iter().map(|d| d.as_str()).collect::<Vec<_>>(), ["customer-care"]);
}

#[tokio::test]
async fn concurrent_provisioning_of_one_domain_succeeds_once() {
    let env = TestEnv::new().await;
    let domain = env.domain("ledger");
    let runs = (0..4).map(|_| {
        let dbs = env.dbs.clone();
        let domain = domain.clone();
        tokio::spawn(async move { provision_domain_with(&dbs, &domain, Migrations::embedded()).await })
    });
    let reports: Vec<_> = futures::future::join_all(runs).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(reports.iter().filter(|r| r.created_database).count(), 1);
    assert_eq!(reports.iter().filter(|r| r.created_role).count(), 1);
    let (dbs, roles) = env.created_objects().await;
    assert_eq!(dbs, [format!("{}control", env.prefix), format!("{}ledger", env.prefix)]);
    assert_eq!(roles, [format!("{}ledger", env.prefix)]);
}

#[tokio::test]
async fn a_changed_role_secret_rotates_the_password_only() {
    let env = TestEnv::new().await;
    let domain = env.domain("ledger");
    provision_domain_with(&env.dbs, &domain, Migrations::embedded()).await.unwrap();
    let database = env.dbs.database_name(&domain);
    let password = |env: &TestEnv| {
        let database = database.clone();
        let control = env.dbs.control().clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
                .bind(database)
                .fetch_one(&control)
                .await
                .unwrap()
        }
    };
    let before = password(&env).await;

    let mut config = env.config.clone();
    config.database.role_secret = "another-secret".into();
    let rotated = vnext_init::db::Databases::connect(&config).await.unwrap();
    let report = provision_domain_with(&rotated, &domain, Migrations::embedded()).await.unwrap();
    assert!(!report.created_role && report.applied.is_empty());
    assert_ne!(password(&env).await, before);
    let fingerprint: Option<String> = sqlx::query_scalar("SELECT role_password_sha256 FROM vnext_control.domains")
        .fetch_one(env.dbs.control())
        .await
        .unwrap();
    assert_eq!(fingerprint.unwrap(), sha256_hex(&rotated.role_password(&domain)));
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}
