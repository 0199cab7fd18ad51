//! Stand-in for `vnext_init::db::Databases` until the init crate provides it.
//! Same names and signatures; replaced by a re-export when it lands, so code
//! written against `vnext_app::engine::Databases` keeps compiling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use vnext_core::ident::DomainName;
use vnext_init::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach PostgreSQL: {0}")]
    Connect(sqlx::Error),
    #[error("unknown domain `{0}`")]
    UnknownDomain(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Databases {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    control: PgPool,
    domains: Mutex<HashMap<String, PgPool>>,
}

impl Databases {
    /// # Errors
    /// [`DbError::Connect`] when the control database is unreachable.
    pub async fn connect(config: &Config) -> Result<Databases, DbError> {
        let control = PgPoolOptions::new()
            .max_connections(config.database.max_control_connections)
            .connect(&config.database.url)
            .await
            .map_err(DbError::Connect)?;
        Ok(Databases { inner: Arc::new(Inner { config: config.clone(), control, domains: Mutex::default() }) })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn control(&self) -> &PgPool {
        &self.inner.control
    }

    pub fn database_name(&self, domain: &DomainName) -> String {
        format!("{}{}", self.inner.config.database.database_prefix, domain.ident())
    }

    /// # Errors
    /// [`DbError::UnknownDomain`] when the domain database does not exist.
    pub async fn domain(&self, domain: &DomainName) -> Result<PgPool, DbError> {
        if let Some(p) = self.inner.domains.lock().expect("pool map").get(domain.ident()) {
            return Ok(p.clone());
        }
        let name = self.database_name(domain);
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&self.inner.control)
            .await?;
        if !exists {
            return Err(DbError::UnknownDomain(domain.to_string()));
        }
        let opts: PgConnectOptions = self.inner.config.database.url.parse::<PgConnectOptions>()?.database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(self.inner.config.database.max_connections_per_domain)
            .connect_lazy_with(opts);
        let mut map = self.inner.domains.lock().expect("pool map");
        Ok(map.entry(domain.ident().to_string()).or_insert(pool).clone())
    }
}
