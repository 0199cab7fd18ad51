//! A private control database and database prefix (`t<8 hex>_`) per test, so
//! domains provisioned through the real registry never meet another test's.
//! Every database and role under the prefix is dropped when the guard goes.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use vnext_core::ident::DomainName;
use vnext_init::config::Config;
use vnext_init::db::Databases;
use vnext_init::provision;

pub struct TestEnv {
    pub config: Config,
    pub dbs: Databases,
    prefix: String,
    admin_url: String,
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        let base = Config::load(None).expect("configuration");
        let prefix = format!("t{:08x}_", rand::random::<u32>());
        let admin_url = base.database.url.clone();
        let mut admin = PgConnection::connect(&admin_url).await.expect("PostgreSQL must run for these tests");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{prefix}control\""))).execute(&mut admin).await.unwrap();
        let _ = admin.close().await;
        let mut config = base;
        config.database.url = with_database(&admin_url, &format!("{prefix}control"));
        config.database.database_prefix = prefix.clone();
        let dbs = Databases::connect(&config).await.expect("connect");
        TestEnv { config, dbs, prefix, admin_url }
    }

    /// Registers and provisions a domain through the real provisioning path.
    pub async fn provision(&self, name: &str) -> DomainName {
        let domain = DomainName::new(name).unwrap();
        provision::provision_domain(&self.dbs, &domain).await.expect("provision");
        domain
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let (url, prefix) = (self.admin_url.clone(), self.prefix.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let Ok(mut admin) = PgConnection::connect(&url).await else { return };
                let dbs: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
                    .bind(&prefix)
                    .fetch_all(&mut admin)
                    .await
                    .unwrap_or_default();
                for db in dbs {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))).execute(&mut admin).await;
                }
                let roles: Vec<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)")
                    .bind(&prefix)
                    .fetch_all(&mut admin)
                    .await
                    .unwrap_or_default();
                for role in roles {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{role}\""))).execute(&mut admin).await;
                }
                let _ = admin.close().await;
            });
        })
        .join();
    }
}
