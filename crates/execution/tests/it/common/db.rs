//! A throwaway domain database per test, with the job queue and the flow
//! schema registry migrated in. Dropped when the guard goes out of scope, even
//! when the test fails.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use vnext_core::ident::DomainName;
use vnext_init::config::Config;
use vnext_init::migrate::{self, History, MigrationSet, Migrations};

pub struct TestDomain {
    pub name: DomainName,
    pub pool: PgPool,
    database: String,
    admin: PgConnectOptions,
}

impl TestDomain {
    /// Creates database `t<8 hex>_<label>` and migrates `sys_queues` and `sys_schemas`.
    pub async fn create(label: &str) -> TestDomain {
        let config = Config::load(None).expect("config");
        let admin: PgConnectOptions = config.database.url.parse().expect("database.url");
        let database = format!("t{:08x}_{label}", rand::random::<u32>());
        let mut conn = admin.connect().await.expect("PostgreSQL reachable");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{database}\""))).execute(&mut conn).await.expect("create database");
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect_with(admin.clone().database(&database))
            .await
            .expect("connect test database");
        sqlx::query("CREATE SCHEMA sys_queues").execute(&pool).await.unwrap();
        sqlx::query("CREATE SCHEMA sys_schemas").execute(&pool).await.unwrap();
        let migrations = Migrations::embedded();
        migrate::apply(&pool, History::Domain, "sys_queues", migrations, &[MigrationSet::Queues]).await.expect("queues");
        migrate::apply(&pool, History::Domain, "sys_schemas", migrations, &[MigrationSet::Registry]).await.expect("registry");
        TestDomain { name: DomainName::new(&database).expect("domain name"), pool, database, admin }
    }
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        let (admin, database) = (self.admin.clone(), self.database.clone());
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = admin.connect().await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
