//! A throwaway domain database per test, with the job queue and the flow
//! schema registry migrated in. Dropped when the guard goes out of scope, even
//! when the test fails.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use vnext_core::ident::DomainName;
use vnext_init::config::Config;
use vnext_init::migrate::{self, History, MigrationSet, Migrations};
use vnext_testkit::db;

pub struct TestDomain {
    pub name: DomainName,
    pub pool: PgPool,
    database: String,
    admin_url: String,
}

impl TestDomain {
    /// Creates database `t<8 hex>_<label>` and migrates `sys_queues` and `sys_schemas`.
    pub async fn create(label: &str) -> TestDomain {
        let config = Config::load(None).expect("config");
        let admin: PgConnectOptions = config.database.url.parse().expect("database.url");
        let database = format!("{}{label}", db::unique_prefix());
        db::create_database(&config.database.url, &database).await;
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
        TestDomain { name: DomainName::new(&database).expect("domain name"), pool, database, admin_url: config.database.url }
    }
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        let (admin_url, database) = (self.admin_url.clone(), self.database.clone());
        db::block_in_drop(move || async move { db::drop_database(&admin_url, &database).await });
    }
}
