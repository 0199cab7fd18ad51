//! Scratch databases: a `t<8 hex>_` prefix per test, so tests running in
//! parallel never see each other's databases, and a clean-up that drops every
//! database and role under it, also when the test panicked.

use std::future::Future;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The server every test talks to unless its configuration says otherwise.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh `t<8 hex>_` prefix.
pub fn unique_prefix() -> String {
    format!("t{}_", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// `postgres://.../<db>` with the database part replaced (query kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

/// Creates `database` on the server of `admin_url`; PostgreSQL must run.
pub async fn create_database(admin_url: &str, database: &str) {
    let mut admin = PgConnection::connect(admin_url).await.expect("PostgreSQL must run for these tests");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{database}\""))).execute(&mut admin).await.expect("create database");
    let _ = admin.close().await;
}

/// Drops every database and role whose name starts with `prefix` (best effort).
pub async fn drop_prefixed(admin_url: &str, prefix: &str) {
    let Ok(mut admin) = PgConnection::connect(admin_url).await else { return };
    let dbs: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
        .bind(prefix)
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    for db in dbs {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))).execute(&mut admin).await;
    }
    let roles: Vec<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)")
        .bind(prefix)
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    for role in roles {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{role}\""))).execute(&mut admin).await;
    }
    let _ = admin.close().await;
}

/// Drops one database (best effort).
pub async fn drop_database(admin_url: &str, database: &str) {
    let Ok(mut admin) = PgConnection::connect(admin_url).await else { return };
    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))).execute(&mut admin).await;
    let _ = admin.close().await;
}

/// Runs `work` to completion from a `Drop`: on a thread and runtime of its own,
/// because `Drop` cannot await inside the test's runtime.
pub fn block_in_drop<F, Fut>(work: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(work());
    })
    .join();
}

/// A test's database prefix with its control database `<prefix>control`;
/// everything under the prefix is dropped with it.
pub struct Scratch {
    pub prefix: String,
    /// The server's maintenance database.
    pub admin_url: String,
}

impl Scratch {
    /// A fresh prefix on the server of `admin_url`, its control database created.
    pub async fn new(admin_url: &str) -> Scratch {
        let prefix = unique_prefix();
        create_database(admin_url, &format!("{prefix}control")).await;
        Scratch { prefix, admin_url: admin_url.to_string() }
    }

    /// The URL of the control database.
    pub fn control_url(&self) -> String {
        with_database(&self.admin_url, &format!("{}control", self.prefix))
    }

    /// The URL of `database` on the same server, as the admin user.
    pub fn url_of(&self, database: &str) -> String {
        with_database(&self.admin_url, database)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (admin_url, prefix) = (self.admin_url.clone(), self.prefix.clone());
        block_in_drop(move || async move { drop_prefixed(&admin_url, &prefix).await });
    }
}

/// A database error carrying SQLSTATE `code`, as the server would send it
/// (for unit tests of error classification; sqlx's own type cannot be built).
pub fn server_error(code: &'static str) -> sqlx::Error {
    sqlx::Error::Database(Box::new(ServerError(code)))
}

#[derive(Debug)]
struct ServerError(&'static str);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server error {}", self.0)
    }
}

impl std::error::Error for ServerError {}

impl sqlx::error::DatabaseError for ServerError {
    fn message(&self) -> &str {
        "server error"
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed(self.0))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}
