//! The migration runner: numbered SQL files applied per schema, once, with a
//! checksummed history.
//!
//! Every `*.sql` file under the workspace's `migrations/` folder is embedded in
//! the binary at build time (see `build.rs`); the folder decides the set:
//!
//! | folder | set | applied to |
//! |---|---|---|
//! | `control/` | [`MigrationSet::Control`] | `vnext_control` in the control database |
//! | `system/components/` | [`MigrationSet::Components`] | each of the six `sys_*` component schemas |
//! | `system/registry/` | [`MigrationSet::Registry`] | `sys_schemas` |
//! | `system/queues/` | [`MigrationSet::Queues`] | `sys_queues` |
//! | `system/audit/` | [`MigrationSet::Audit`] | `sys_audit` |
//! | `flow/` | [`MigrationSet::Flow`] | every flow schema |
//!
//! Files are schema-agnostic: the runner points `search_path` at the target schema
//! for the transaction only (`set_config(..., true)`, never including `public`).
//! All pending migrations of one schema run in one transaction under a
//! transaction-scoped advisory lock keyed on (database, schema), so concurrent
//! runners serialise and a failure leaves the schema as it was.
//!
//! History: `sys_schemas.migrations` in a domain database and
//! `vnext_control.migrations` in the control database, one row per
//! (schema, set, version) with the file's SHA-256. A recorded migration whose
//! file changed is a hard error ([`InitError::TamperedMigration`]); a recorded
//! migration this build does not know is one too
//! ([`InitError::UnknownAppliedMigration`]).

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use vnext_core::ident::quote;

use crate::error::InitError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// A group of migrations that is applied to the same kind of schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MigrationSet {
    Control,
    Components,
    Registry,
    Queues,
    Audit,
    Flow,
}

impl MigrationSet {
    pub const ALL: [MigrationSet; 6] = [
        MigrationSet::Control,
        MigrationSet::Components,
        MigrationSet::Registry,
        MigrationSet::Queues,
        MigrationSet::Audit,
        MigrationSet::Flow,
    ];

    /// The folder under `migrations/` that holds the set's files.
    pub fn dir(self) -> &'static str {
        match self {
            MigrationSet::Control => "control",
            MigrationSet::Components => "system/components",
            MigrationSet::Registry => "system/registry",
            MigrationSet::Queues => "system/queues",
            MigrationSet::Audit => "system/audit",
            MigrationSet::Flow => "flow",
        }
    }

    /// The set's name in the history table.
    pub fn name(self) -> &'static str {
        match self {
            MigrationSet::Control => "control",
            MigrationSet::Components => "components",
            MigrationSet::Registry => "registry",
            MigrationSet::Queues => "queues",
            MigrationSet::Audit => "audit",
            MigrationSet::Flow => "flow",
        }
    }

    fn from_dir(dir: &str) -> Option<MigrationSet> {
        MigrationSet::ALL.into_iter().find(|s| s.dir() == dir)
    }
}

/// One numbered SQL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub set: MigrationSet,
    pub version: i64,
    /// The file name without number and extension (`instances` for `0001_instances.sql`).
    pub name: String,
    /// The path under `migrations/`, e.g. `flow/0001_instances.sql`; errors name it.
    pub file: String,
    pub sql: Cow<'static, str>,
    /// SHA-256 of the SQL text, lower-case hex.
    pub checksum: String,
}

impl Migration {
    /// A migration built in code (tests add migrations to a list this way).
    pub fn new(set: MigrationSet, version: i64, name: &str, sql: impl Into<Cow<'static, str>>) -> Migration {
        let sql = sql.into();
        Migration {
            set,
            version,
            name: name.to_string(),
            file: format!("{}/{version:04}_{name}.sql", set.dir()),
            checksum: sha256_hex(sql.as_bytes()),
            sql,
        }
    }
}

/// An ordered list of migrations: by set, then version. Runner functions take one
/// as a parameter; [`Migrations::embedded`] is what the binary ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrations {
    list: Vec<Migration>,
}

impl Migrations {
    /// The migrations embedded from the `migrations/` folder at build time.
    pub fn embedded() -> &'static Migrations {
        static EMBEDDED: OnceLock<Migrations> = OnceLock::new();
        EMBEDDED.get_or_init(|| {
            let list = embedded::EMBEDDED
                .iter()
                .map(|(dir, file, sql)| {
                    // build.rs checked the folder and the `NNNN_name.sql` shape.
                    let set = MigrationSet::from_dir(dir).expect("build.rs accepts only known folders");
                    let stem = file.strip_suffix(".sql").unwrap_or(file);
                    let (digits, name) = stem.split_once('_').expect("build.rs checked the file name");
                    let mut m = Migration::new(set, digits.parse().expect("build.rs checked the version"), name, *sql);
                    m.file = format!("{dir}/{file}");
                    m
                })
                .collect();
            Migrations::from_list(list)
        })
    }

    /// A list from migrations in any order.
    pub fn from_list(mut list: Vec<Migration>) -> Migrations {
        list.sort_by_key(|m| (m.set, m.version));
        Migrations { list }
    }

    /// This list plus `migration`, replacing one with the same set and version.
    #[must_use]
    pub fn with(&self, migration: Migration) -> Migrations {
        let mut list: Vec<Migration> =
            self.list.iter().filter(|m| (m.set, m.version) != (migration.set, migration.version)).cloned().collect();
        list.push(migration);
        Migrations::from_list(list)
    }

    /// The migrations of one set, by version.
    pub fn set(&self, set: MigrationSet) -> impl Iterator<Item = &Migration> {
        self.list.iter().filter(move |m| m.set == set)
    }

    /// The highest version of a set (0 when the set is empty).
    pub fn latest(&self, set: MigrationSet) -> i64 {
        self.set(set).map(|m| m.version).max().unwrap_or(0)
    }
}

/// A migration the runner applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMigration {
    pub set: MigrationSet,
    pub version: i64,
    pub name: String,
    pub file: String,
    pub duration_ms: f64,
}

/// Which history table records a schema's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// `sys_schemas.migrations` of a domain database.
    Domain,
    /// `vnext_control.migrations` of the control database.
    Control,
}

impl History {
    fn schema(self) -> &'static str {
        match self {
            History::Domain => "sys_schemas",
            History::Control => "vnext_control",
        }
    }
}

/// Takes the transaction-scoped advisory lock of `schema` in the current database.
/// Flow schema creation and migration share it.
pub(crate) async fn lock_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('vnext:schema:' || current_database() || ':' || $1, 0))")
        .bind(schema)
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies the pending migrations of `sets` to `schema` in one transaction.
///
/// # Errors
/// [`InitError::TamperedMigration`], [`InitError::UnknownAppliedMigration`],
/// [`InitError::Migration`] naming the failing file; nothing is applied then.
pub async fn apply(
    pool: &PgPool,
    history: History,
    schema: &str,
    migrations: &Migrations,
    sets: &[MigrationSet],
) -> Result<Vec<AppliedMigration>, InitError> {
    let context = || format!("migrating schema {schema}");
    let mut tx = pool.begin().await.map_err(InitError::sql(context()))?;
    let applied = apply_in(&mut tx, history, schema, migrations, sets).await?;
    tx.commit().await.map_err(InitError::sql(context()))?;
    Ok(applied)
}

/// Applies the pending migrations of `sets` to `schema` inside the caller's
/// transaction: locks the schema, checks the history, runs what is missing.
/// The schema must exist.
///
/// # Errors
/// As [`apply`]; the caller must roll back on error.
pub async fn apply_in(
    conn: &mut PgConnection,
    history: History,
    schema: &str,
    migrations: &Migrations,
    sets: &[MigrationSet],
) -> Result<Vec<AppliedMigration>, InitError> {
    let context = || format!("migrating schema {schema}");
    lock_schema(conn, schema).await.map_err(InitError::sql(context()))?;
    ensure_history_table(conn, history).await.map_err(InitError::sql(context()))?;

    let select = format!(
        "SELECT set_name, version, name, checksum FROM {}.migrations WHERE schema_name = $1",
        history.schema()
    );
    let rows = sqlx::query(AssertSqlSafe(select)).bind(schema).fetch_all(&mut *conn).await.map_err(InitError::sql(context()))?;
    let mut recorded = std::collections::HashSet::new();
    for row in rows {
        let (set_name, version, name, checksum): (String, i64, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let Some(set) = sets.iter().copied().find(|s| s.name() == set_name) else { continue };
        match migrations.set(set).find(|m| m.version == version) {
            None => return Err(InitError::UnknownAppliedMigration { schema: schema.to_string(), set: set_name, version, name }),
            Some(m) if m.checksum != checksum => {
                return Err(InitError::TamperedMigration {
                    schema: schema.to_string(),
                    file: m.file.clone(),
                    recorded: checksum,
                    current: m.checksum.clone(),
                });
            }
            Some(_) => {
                recorded.insert((set, version));
            }
        }
    }

    let pending: Vec<&Migration> =
        sets.iter().flat_map(|s| migrations.set(*s)).filter(|m| !recorded.contains(&(m.set, m.version))).collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    // Only this transaction sees the search path; `public` is never on it.
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(quote(schema))
        .execute(&mut *conn)
        .await
        .map_err(InitError::sql(context()))?;
    let insert = format!(
        "INSERT INTO {}.migrations (schema_name, set_name, version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        history.schema()
    );
    let mut applied = Vec::with_capacity(pending.len());
    for m in pending {
        let started = Instant::now();
        sqlx::raw_sql(AssertSqlSafe(m.sql.clone())).execute(&mut *conn).await.map_err(|source| InitError::Migration {
            schema: schema.to_string(),
            file: m.file.clone(),
            source,
        })?;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        sqlx::query(AssertSqlSafe(insert.clone()))
            .bind(schema)
            .bind(m.set.name())
            .bind(m.version)
            .bind(&m.name)
            .bind(&m.checksum)
            .bind(duration_ms)
            .execute(&mut *conn)
            .await
            .map_err(InitError::sql(context()))?;
        tracing::info!(schema, file = %m.file, duration_ms, "migration applied");
        applied.push(AppliedMigration { set: m.set, version: m.version, name: m.name.clone(), file: m.file.clone(), duration_ms });
    }
    Ok(applied)
}

/// Creates the history table the first time (its schema must exist), under a
/// lock of its own so two schemas migrated at once do not race on `CREATE TABLE`.
async fn ensure_history_table(conn: &mut PgConnection, history: History) -> Result<(), sqlx::Error> {
    let table = format!("{}.migrations", history.schema());
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&table).fetch_one(&mut *conn).await?;
    if exists {
        return Ok(());
    }
    lock_schema(conn, "vnext:history").await?;
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             schema_name  text NOT NULL,
             set_name     text NOT NULL,
             version      bigint NOT NULL,
             name         text NOT NULL,
             checksum     text NOT NULL,
             applied_at   timestamptz NOT NULL DEFAULT now(),
             duration_ms  double precision NOT NULL,
             PRIMARY KEY (schema_name, set_name, version)
         );"
    );
    sqlx::raw_sql(AssertSqlSafe(ddl)).execute(conn).await?;
    Ok(())
}

/// The migration an error is about, when it names one: `(version, name)`.
pub(crate) fn failed_migration(e: &InitError, migrations: &Migrations) -> Option<(i64, String)> {
    match e {
        InitError::Migration { file, .. } | InitError::TamperedMigration { file, .. } => {
            migrations.list.iter().find(|m| &m.file == file).map(|m| (m.version, m.name.clone()))
        }
        InitError::UnknownAppliedMigration { version, name, .. } => Some((*version, name.clone())),
        _ => None,
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_every_set() {
        let m = Migrations::embedded();
        for set in MigrationSet::ALL {
            assert!(m.latest(set) >= 1, "{set:?} has no migration");
        }
        let flow = m.set(MigrationSet::Flow).next().unwrap();
        assert_eq!(flow.file, "flow/0001_instances.sql");
        assert_eq!(flow.name, "instances");
        assert_eq!(flow.checksum, sha256_hex(flow.sql.as_bytes()));
    }

    #[test]
    fn with_adds_or_replaces() {
        let base = Migrations::embedded();
        let added = base.with(Migration::new(MigrationSet::Flow, 99, "extra", "SELECT 1"));
        assert_eq!(added.latest(MigrationSet::Flow), 99);
        let replaced = added.with(Migration::new(MigrationSet::Flow, 99, "extra", "SELECT 2"));
        assert_eq!(replaced.set(MigrationSet::Flow).filter(|m| m.version == 99).count(), 1);
    }
}
