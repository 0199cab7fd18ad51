//! Connections: one pool for the control database, and one small pool per domain
//! database, created on first use and dropped again when the domain goes idle.
//!
//! A domain pool connects as the domain's own role (named like its database), so
//! a bug that built the wrong database name still could not read another domain:
//! that role has no `CONNECT` on any other domain database. Pool connections are
//! recycled after `connection_lifetime_seconds` because each one caches catalog
//! entries of every flow schema it touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Connection, PgPool, Postgres, Transaction};
use vnext_telemetry::metrics::PoolWait;
use vnext_core::ident::DomainName;

use crate::config::Config;

/// Why a database could not be reached or a pool not built.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Nothing answers at the configured address.
    #[error(
        "cannot reach PostgreSQL at {host}:{port} ({source}). Start it (for example `docker compose up -d postgres`, or `pg_ctlcluster 15 main start` on Debian) or point database.url / VNEXT_DATABASE__URL at a running server"
    )]
    Unreachable { host: String, port: u16, source: sqlx::Error },
    /// The server answered but refused the connection (authentication, missing database).
    #[error("cannot connect to database {database} on {host}:{port} as {user}: {source}")]
    Connect { host: String, port: u16, database: String, user: String, source: sqlx::Error },
    /// `database.url` (or a domain's server URL) is not a usable PostgreSQL URL.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The domain is not registered, or its provisioning has not finished.
    #[error("unknown domain `{0}`")]
    UnknownDomain(String),
    /// A query against the control database failed.
    #[error("control database: {0}")]
    Control(sqlx::Error),
}

/// One domain pool's connections right now. How many callers wait is counted
/// by [`acquire`] and [`begin`] (sqlx does not expose it); waits past
/// `database.acquire_timeout_seconds` fail with 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// The domain's identifier (its name with `-` as `_`).
    pub domain: String,
    pub in_use: usize,
    pub idle: usize,
    pub max: u32,
}

/// The control pool and the per-domain pools. Cheap to clone.
#[derive(Clone)]
pub struct Databases {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    control: PgPool,
    control_options: PgConnectOptions,
    domains: Mutex<HashMap<String, DomainPool>>,
}

struct DomainPool {
    pool: PgPool,
    last_used: Instant,
}

/// `application_name` of domain pool connections, before the domain's identifier.
const DOMAIN_APPLICATION_PREFIX: &str = "vnext/";

/// Takes a connection from `pool`, counting the caller in
/// `vnext_pool_waiting{domain}` while it waits and its wait in
/// `vnext_pool_acquire_seconds`. The run pipeline and the scheduler take their
/// connections through here; single statements run on `&pool` are not counted.
///
/// # Errors
/// What [`PgPool::acquire`] returns (a timeout when the pool stays exhausted).
pub async fn acquire(pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    let _waiting = PoolWait::start(&pool_label(pool));
    pool.acquire().await
}

/// Begins a transaction on `pool`, counted like [`acquire`].
///
/// # Errors
/// What [`PgPool::begin`] returns.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let _waiting = PoolWait::start(&pool_label(pool));
    pool.begin().await
}

/// The `domain` label of a pool: the domain's identifier for a domain pool,
/// `control` for any other.
fn pool_label(pool: &PgPool) -> String {
    let options = pool.connect_options();
    options.get_application_name().and_then(|name| name.strip_prefix(DOMAIN_APPLICATION_PREFIX)).unwrap_or("control").to_string()
}

/// Where and as whom a domain's database is reached.
#[derive(Debug, Clone)]
pub(crate) struct DomainTarget {
    pub database: String,
    /// Connection options of the server (admin credentials, no database chosen).
    pub server: PgConnectOptions,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases").field("control", &self.inner.control_options.get_database()).finish_non_exhaustive()
    }
}

impl Databases {
    /// Opens the control pool and checks that PostgreSQL answers.
    ///
    /// # Errors
    /// [`DbError::Unreachable`] naming host and port when nothing answers,
    /// [`DbError::Connect`] when the server refuses, [`DbError::InvalidUrl`].
    pub async fn connect(config: &Config) -> Result<Databases, DbError> {
        let control_options: PgConnectOptions =
            config.database.url.parse().map_err(|e: sqlx::Error| DbError::InvalidUrl(e.to_string()))?;
        let control_options = control_options.application_name("vnext");
        // One direct attempt first: a pool would retry until its acquire timeout
        // and then report only that it timed out.
        let probe = control_options.connect().await.map_err(|e| connect_error(&control_options, e))?;
        let _ = probe.close().await;
        let control = PgPoolOptions::new()
            .max_connections(config.database.max_control_connections)
            .acquire_timeout(Duration::from_secs(config.database.acquire_timeout_seconds))
            .max_lifetime(Duration::from_secs(config.database.connection_lifetime_seconds))
            .idle_timeout(Duration::from_secs(config.database.connection_idle_seconds))
            .connect_lazy_with(control_options.clone());
        let inner = Arc::new(Inner { config: config.clone(), control, control_options, domains: Mutex::new(HashMap::new()) });
        spawn_sweeper(Arc::downgrade(&inner), Duration::from_secs(config.database.pool_idle_seconds));
        Ok(Databases { inner })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The control database (schema `vnext_control`).
    pub fn control(&self) -> &PgPool {
        &self.inner.control
    }

    /// The database name of a domain: prefix + identifier (`vnext_payments`).
    pub fn database_name(&self, domain: &DomainName) -> String {
        format!("{}{}", self.inner.config.database.database_prefix, domain.ident())
    }

    /// The pool of a registered, provisioned domain, connected as the domain's role.
    /// Created on first use; reused until idle for `pool_idle_seconds`.
    ///
    /// # Errors
    /// [`DbError::UnknownDomain`] when the registry has no active entry for it;
    /// [`DbError::Control`] when the registry cannot be read.
    pub async fn domain(&self, domain: &DomainName) -> Result<PgPool, DbError> {
        if let Some(pool) = self.cached(domain.ident()) {
            return Ok(pool);
        }
        let target = self.registered_target(domain, true).await?;
        Ok(self.pool_for(domain, &target))
    }

    /// Number of domain pools currently held (idle ones are swept).
    pub fn open_domain_pools(&self) -> usize {
        self.inner.domains.lock().expect("domain pools lock").len()
    }

    /// The state of every open domain pool (for the pool gauges of `/metrics`).
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let map = self.inner.domains.lock().expect("domain pools lock");
        map.iter()
            .map(|(domain, p)| {
                let (size, idle) = (p.pool.size() as usize, p.pool.num_idle());
                PoolStats { domain: domain.clone(), in_use: size.saturating_sub(idle), idle, max: p.pool.options().get_max_connections() }
            })
            .collect()
    }

    /// Drops domain pools unused for longer than `idle`. Their connections close
    /// once no caller still holds a clone of the pool.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        evict(&self.inner, idle)
    }

    fn cached(&self, ident: &str) -> Option<PgPool> {
        let mut map = self.inner.domains.lock().expect("domain pools lock");
        let entry = map.get_mut(ident)?;
        if entry.pool.is_closed() {
            map.remove(ident);
            return None;
        }
        entry.last_used = Instant::now();
        Some(entry.pool.clone())
    }

    /// Looks the domain up in the registry. `active_only` refuses domains whose
    /// provisioning has not finished.
    pub(crate) async fn registered_target(&self, domain: &DomainName, active_only: bool) -> Result<DomainTarget, DbError> {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("SELECT database, server_url, status FROM vnext_control.domains WHERE domain = $1")
                .bind(domain.as_str())
                .fetch_optional(self.control())
                .await
                .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
                    // No registry yet: nothing was ever provisioned.
                    Some(code) if code == "42P01" || code == "3F000" => DbError::UnknownDomain(domain.to_string()),
                    _ => DbError::Control(e),
                })?;
        let Some((database, server_url, status)) = row else {
            return Err(DbError::UnknownDomain(domain.to_string()));
        };
        if active_only && status != "active" {
            return Err(DbError::UnknownDomain(domain.to_string()));
        }
        Ok(DomainTarget { database, server: self.server_options(server_url.as_deref())? })
    }

    /// Admin connection options of the server a domain lives on.
    pub(crate) fn server_options(&self, server_url: Option<&str>) -> Result<PgConnectOptions, DbError> {
        match server_url {
            None => Ok(self.inner.control_options.clone()),
            Some(url) => url.parse().map_err(|e: sqlx::Error| DbError::InvalidUrl(e.to_string())),
        }
    }

    /// The pool of a domain connected as its role (cached).
    pub(crate) fn pool_for(&self, domain: &DomainName, target: &DomainTarget) -> PgPool {
        let mut map = self.inner.domains.lock().expect("domain pools lock");
        if let Some(entry) = map.get_mut(domain.ident()).filter(|e| !e.pool.is_closed()) {
            entry.last_used = Instant::now();
            return entry.pool.clone();
        }
        let db = &self.inner.config.database;
        let options = target
            .server
            .clone()
            .database(&target.database)
            .username(&target.database)
            .password(&self.role_password(domain))
            // Names the domain in `pg_stat_activity`, and lets `acquire` label
            // its waiting callers without a lookup.
            .application_name(&format!("{DOMAIN_APPLICATION_PREFIX}{}", domain.ident()));
        let pool = PgPoolOptions::new()
            .max_connections(db.max_connections_per_domain)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(db.acquire_timeout_seconds))
            .idle_timeout(Duration::from_secs(db.connection_idle_seconds))
            // No ping before each use: it costs a round trip per request. A
            // connection the server dropped fails its first statement instead
            // (503, retryable) and is discarded.
            .test_before_acquire(false)
            .max_lifetime(Duration::from_secs(db.connection_lifetime_seconds))
            .connect_lazy_with(options);
        map.insert(domain.ident().to_string(), DomainPool { pool: pool.clone(), last_used: Instant::now() });
        pool
    }

    /// The password of a domain's role: SHA-256 (hex) of the configured
    /// `role_secret`, a NUL byte and the domain identifier.
    pub fn role_password(&self, domain: &DomainName) -> String {
        let mut h = Sha256::new();
        h.update(self.inner.config.database.role_secret.as_bytes());
        h.update([0]);
        h.update(domain.ident().as_bytes());
        hex::encode(h.finalize())
    }

    /// Connection options of the control database (its server's admin credentials).
    pub(crate) fn control_options(&self) -> PgConnectOptions {
        self.inner.control_options.clone()
    }

    /// Forgets the cached pool of a domain (its clones keep working).
    pub(crate) fn forget_pool(&self, domain: &DomainName) {
        self.inner.domains.lock().expect("domain pools lock").remove(domain.ident());
    }

    /// Opens one connection outside any pool with `server`'s credentials, to
    /// `database` or to the database the options name.
    pub(crate) async fn admin_connection(
        &self,
        server: &PgConnectOptions,
        database: Option<&str>,
    ) -> Result<sqlx::PgConnection, DbError> {
        let options = match database {
            Some(db) => server.clone().database(db),
            None => server.clone(),
        };
        options.connect().await.map_err(|e| connect_error(&options, e))
    }
}

/// Sweeps idle domain pools in the background until the `Databases` is dropped.
fn spawn_sweeper(inner: Weak<Inner>, idle: Duration) {
    let period = (idle / 2).max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            evict(&inner, idle);
        }
    });
}

fn evict(inner: &Inner, idle: Duration) -> usize {
    let mut map = inner.domains.lock().expect("domain pools lock");
    let before = map.len();
    map.retain(|_, e| e.last_used.elapsed() < idle && !e.pool.is_closed());
    before - map.len()
}

fn connect_error(options: &PgConnectOptions, e: sqlx::Error) -> DbError {
    let host = options.get_host().to_string();
    let port = options.get_port();
    match e {
        e if crate::unavailable::is_unavailable(&e) => DbError::Unreachable { host, port, source: e },
        other => DbError::Connect {
            host,
            port,
            database: options.get_database().unwrap_or("(default)").to_string(),
            user: options.get_username().to_string(),
            source: other,
        },
    }
}
