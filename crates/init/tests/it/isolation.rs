//! Domains are databases: a domain's role reaches its own database only.

use crate::common;

use common::{TestEnv, component, SCRIPT_TASK};
use sqlx::{Connection, PgConnection};
use vnext_core::ident::FlowKey;
use vnext_init::components::{self, PublishOutcome};
use vnext_init::flow_schema::ensure_flow_schema;
use vnext_init::provision::provision_domain;

#[tokio::test]
async fn two_domains_are_two_databases_and_a_role_cannot_reach_the_other() {
    let env = TestEnv::new().await;
    let (a, b) = (env.domain("payments"), env.domain("lending"));
    provision_domain(&env.dbs, &a).await.unwrap();
    provision_domain(&env.dbs, &b).await.unwrap();
    let (db_a, db_b) = (env.dbs.database_name(&a), env.dbs.database_name(&b));
    assert_eq!(db_a, format!("{}payments", env.prefix));
    assert_ne!(db_a, db_b);

    // The runtime reaches each domain as its own role.
    let pool_a = env.dbs.domain(&a).await.unwrap();
    let pool_b = env.dbs.domain(&b).await.unwrap();
    let (user, database): (String, String) =
        sqlx::query_as("SELECT current_user::text, current_database()::text").fetch_one(&pool_a).await.unwrap();
    assert_eq!((user.as_str(), database.as_str()), (db_a.as_str(), db_a.as_str()));

    // Role A connects to database A, but not to database B.
    let password_a = env.dbs.role_password(&a);
    let own = PgConnection::connect(&env.url_as(&db_a, &password_a, &db_a)).await;
    assert!(own.is_ok(), "{:?}", own.err());
    let err = PgConnection::connect(&env.url_as(&db_a, &password_a, &db_b)).await.unwrap_err();
    let db_err = err.as_database_error().unwrap_or_else(|| panic!("expected a database error, got {err}"));
    assert_eq!(db_err.code().as_deref(), Some("42501"), "{err}");
    assert!(err.to_string().contains("permission denied for database"), "{err}");

    // Nor can any other role without a grant: CONNECT is revoked from PUBLIC.
    let public_connect: bool = sqlx::query_scalar("SELECT has_database_privilege('public', $1, 'CONNECT')")
        .bind(&db_b)
        .fetch_one(env.dbs.control())
        .await
        .unwrap();
    assert!(!public_connect);

    // The role is an ordinary login: no superuser, no createdb, no createrole.
    let attrs: (bool, bool, bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(&db_a)
            .fetch_one(env.dbs.control())
            .await
            .unwrap();
    assert_eq!(attrs, (false, false, false, true));

    // What one domain stores is not visible from the other.
    let task = component("sys-tasks", "payments", "charge-card", "1.0.0", SCRIPT_TASK);
    assert_eq!(components::publish(&pool_a, &task).await.unwrap(), PublishOutcome::Created);
    ensure_flow_schema(&pool_a, &FlowKey::new("card-payment").unwrap()).await.unwrap();
    let in_b: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_tasks.components").fetch_one(&pool_b).await.unwrap();
    assert_eq!(in_b, 0);
    let schema_in_b: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'card_payment')")
        .fetch_one(&pool_b)
        .await
        .unwrap();
    assert!(!schema_in_b);
    let in_a: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_tasks.components").fetch_one(&pool_a).await.unwrap();
    assert_eq!(in_a, 1);

    // Every system schema is owned by the domain role.
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT nspname::text, pg_get_userbyid(nspowner)::text FROM pg_namespace
          WHERE nspname LIKE 'sys\\_%' ORDER BY 1",
    )
    .fetch_all(&pool_a)
    .await
    .unwrap();
    let names: Vec<&str> = owners.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sys_audit", "sys_extensions", "sys_flows", "sys_functions", "sys_queues", "sys_schemas", "sys_tasks", "sys_views"]);
    assert!(owners.iter().all(|(_, o)| *o == db_a), "{owners:?}");
}

#[tokio::test]
async fn an_unregistered_domain_is_unknown() {
    let env = TestEnv::new().await;
    let err = env.dbs.domain(&env.domain("nowhere")).await.unwrap_err();
    assert!(matches!(err, vnext_init::db::DbError::UnknownDomain(ref d) if d == "nowhere"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_with_host_and_port() {
    let mut config = vnext_init::config::Config::default();
    // Port 1 on loopback: nothing listens there.
    config.database.url = "postgres://postgres@127.0.0.1:1/postgres".into();
    let err = vnext_init::db::Databases::connect(&config).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, vnext_init::db::DbError::Unreachable { .. }), "{message}");
    assert!(message.contains("127.0.0.1:1") && message.contains("Start it"), "{message}");
}

#[tokio::test]
async fn idle_domain_pools_are_evicted_and_recreated_on_demand() {
    let env = TestEnv::new().await;
    let domain = env.domain("payments");
    provision_domain(&env.dbs, &domain).await.unwrap();
    let pool = env.dbs.domain(&domain).await.unwrap();
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    assert_eq!(env.dbs.open_domain_pools(), 1);
    assert_eq!(env.dbs.evict_idle(std::time::Duration::ZERO), 1);
    assert_eq!(env.dbs.open_domain_pools(), 0);
    let again = env.dbs.domain(&domain).await.unwrap();
    sqlx::query("SELECT 1").execute(&again).await.unwrap();
    assert_eq!(env.dbs.open_domain_pools(), 1);
}
