//! Flow schemas: one PostgreSQL schema per workflow, created the first time an
//! instance of it starts, and migrated again whenever the runtime is upgraded.
//!
//! Creation and migration of a schema happen in one transaction under the
//! schema's advisory lock (the lock the migration runner takes), because
//! `CREATE SCHEMA IF NOT EXISTS` alone races under concurrency. The registry
//! `sys_schemas.flow_schemas` records each schema, the highest flow migration it
//! has, and the last migration failure.

use futures::StreamExt;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use vnext_core::ident::{DomainName, FlowKey, quote};

use crate::error::InitError;
use crate::migrate::{self, AppliedMigration, History, MigrationSet, Migrations};

/// What [`migrate_flow_schemas`] did to each flow schema of a domain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowMigrationReport {
    pub domain: String,
    pub schemas: Vec<FlowSchemaOutcome>,
}

impl FlowMigrationReport {
    /// The schemas whose migration failed.
    pub fn failures(&self) -> impl Iterator<Item = &FlowSchemaOutcome> {
        self.schemas.iter().filter(|s| s.error.is_some())
    }
}

/// One flow schema's result: the migrations applied, or why it failed (then
/// nothing was applied to it).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSchemaOutcome {
    pub flow_key: String,
    pub schema: String,
    pub applied: Vec<AppliedMigration>,
    pub error: Option<FlowMigrationError>,
}

/// Why a flow schema could not be migrated.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowMigrationError {
    /// The migration that failed, when one did: `(version, name)`.
    pub migration: Option<(i64, String)>,
    pub message: String,
}

/// Makes sure the schema of workflow `flow` exists and carries every flow
/// migration of this build. Cheap when it does (one registry lookup).
///
/// # Errors
/// [`InitError::SchemaTaken`] when another workflow key maps to the same schema;
/// migration errors as [`migrate::apply`].
pub async fn ensure_flow_schema(pool: &PgPool, flow: &FlowKey) -> Result<(), InitError> {
    ensure_flow_schema_with(pool, flow, Migrations::embedded()).await
}

/// [`ensure_flow_schema`] with an explicit migration list.
///
/// # Errors
/// As [`ensure_flow_schema`].
pub async fn ensure_flow_schema_with(pool: &PgPool, flow: &FlowKey, migrations: &Migrations) -> Result<(), InitError> {
    let latest = migrations.latest(MigrationSet::Flow);
    let schema = flow.ident();
    let context = || format!("creating flow schema {schema}");
    let registered: Option<(String, i64)> =
        sqlx::query_as("SELECT flow_key, version FROM sys_schemas.flow_schemas WHERE schema_name = $1")
            .bind(schema)
            .fetch_optional(pool)
            .await
            .map_err(InitError::sql(context()))?;
    match registered {
        Some((owner, _)) if owner != flow.as_str() => {
            return Err(InitError::SchemaTaken { flow: flow.to_string(), schema: schema.to_string(), owner });
        }
        Some((_, version)) if version >= latest => return Ok(()),
        _ => {}
    }

    let mut tx = pool.begin().await.map_err(InitError::sql(context()))?;
    migrate::lock_schema(&mut tx, schema).await.map_err(InitError::sql(context()))?;
    // Another caller may have finished while this one waited for the lock.
    let (owner, exists, spares): (Option<String>, bool, bool) = sqlx::query_as(
        "SELECT (SELECT flow_key FROM sys_schemas.flow_schemas WHERE schema_name = $1),
                EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
                to_regclass('sys_schemas.spare_schemas') IS NOT NULL",
    )
    .bind(schema)
    .fetch_one(&mut *tx)
    .await
    .map_err(InitError::sql(context()))?;
    if let Some(owner) = owner.filter(|o| o != flow.as_str()) {
        return Err(InitError::SchemaTaken { flow: flow.to_string(), schema: schema.to_string(), owner });
    }
    let claimed = if !exists && spares { claim_spare(&mut tx, schema).await.map_err(InitError::sql(context()))? } else { None };
    if claimed.is_none() {
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {}", flow.quoted())))
            .execute(&mut *tx)
            .await
            .map_err(InitError::sql(context()))?;
    }
    let applied = migrate::apply_in(&mut tx, History::Domain, schema, migrations, &[MigrationSet::Flow]).await?;
    sqlx::query(
        "INSERT INTO sys_schemas.flow_schemas (flow_key, schema_name, version)
         VALUES ($1, $2, $3)
         ON CONFLICT (flow_key) DO UPDATE
            SET version = EXCLUDED.version, migrated_at = now(), last_error = NULL
          WHERE flow_schemas.version <> EXCLUDED.version OR flow_schemas.last_error IS NOT NULL",
    )
    .bind(flow.as_str())
    .bind(schema)
    .bind(latest)
    .execute(&mut *tx)
    .await
    .map_err(InitError::sql(context()))?;
    tx.commit().await.map_err(InitError::sql(context()))?;
    if let Some(spare) = claimed {
        tracing::info!(flow = %flow, schema, spare, migrations = applied.len(), "flow schema taken from the spares");
    } else if !applied.is_empty() {
        tracing::info!(flow = %flow, schema, migrations = applied.len(), "flow schema migrated");
    }
    Ok(())
}

/// How many spare flow schemas [`replenish_spares`] keeps per domain by default.
pub const SPARE_FLOW_SCHEMAS: usize = 1;

/// Takes the oldest spare schema nobody else is taking, renames it to `schema`
/// and moves its migration history along. `None` when no spare is left.
async fn claim_spare(tx: &mut PgConnection, schema: &str) -> Result<Option<String>, sqlx::Error> {
    let spare: Option<String> = sqlx::query_scalar(
        "DELETE FROM sys_schemas.spare_schemas
          WHERE schema_name = (SELECT schema_name FROM sys_schemas.spare_schemas
                                ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING schema_name",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(spare) = spare else { return Ok(None) };
    sqlx::query(AssertSqlSafe(format!("ALTER SCHEMA {} RENAME TO {}", quote(&spare), quote(schema)))).execute(&mut *tx).await?;
    sqlx::query("UPDATE sys_schemas.migrations SET schema_name = $2 WHERE schema_name = $1")
        .bind(&spare)
        .bind(schema)
        .execute(&mut *tx)
        .await?;
    Ok(Some(spare))
}

/// Tops the domain's spare flow schemas up to `target` with every flow
/// migration of this build, and brings existing spares up to date. Returns how
/// many it created. Concurrent callers serialise; each spare is created in a
/// transaction of its own, so a first start never waits for more than one.
///
/// # Errors
/// Database and migration errors; spares created before the error stay.
pub async fn replenish_spares(pool: &PgPool, target: usize) -> Result<usize, InitError> {
    replenish_spares_with(pool, target, Migrations::embedded()).await
}

/// [`replenish_spares`] with an explicit migration list.
///
/// # Errors
/// As [`replenish_spares`].
pub async fn replenish_spares_with(pool: &PgPool, target: usize, migrations: &Migrations) -> Result<usize, InitError> {
    let context = || "preparing spare flow schemas".to_string();
    let latest = migrations.latest(MigrationSet::Flow);
    let mut created = 0;
    loop {
        let mut tx = pool.begin().await.map_err(InitError::sql(context()))?;
        migrate::lock_schema(&mut tx, "vnext$spares").await.map_err(InitError::sql(context()))?;
        let spares: Vec<(String, i64)> = match sqlx::query_as(
            "SELECT s.schema_name, coalesce((SELECT max(version) FROM sys_schemas.migrations m
                                               WHERE m.schema_name = s.schema_name AND m.set_name = 'flow'), 0)
               FROM sys_schemas.spare_schemas s",
        )
        .fetch_all(&mut *tx)
        .await
        {
            Ok(rows) => rows,
            // Not provisioned by this build yet: no spares until it is.
            Err(e) if matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42P01" | "3F000")) => return Ok(created),
            Err(e) => return Err(InitError::sql(context())(e)),
        };
        if let Some((outdated, _)) = spares.iter().find(|(_, v)| *v < latest) {
            migrate::apply_in(&mut tx, History::Domain, outdated, migrations, &[MigrationSet::Flow]).await?;
            tx.commit().await.map_err(InitError::sql(context()))?;
            continue;
        }
        if spares.len() >= target {
            return Ok(created);
        }
        let name = format!("vnext$spare_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {}", quote(&name)))).execute(&mut *tx).await.map_err(InitError::sql(context()))?;
        migrate::apply_in(&mut tx, History::Domain, &name, migrations, &[MigrationSet::Flow]).await?;
        sqlx::query("INSERT INTO sys_schemas.spare_schemas (schema_name) VALUES ($1)")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(InitError::sql(context()))?;
        tx.commit().await.map_err(InitError::sql(context()))?;
        created += 1;
    }
}

/// Applies pending flow migrations to every registered flow schema of the
/// domain whose pool this is. Each schema is migrated on its own: one that fails
/// is rolled back, its error recorded in `sys_schemas.flow_schemas.last_error`,
/// and the others proceed.
///
/// # Errors
/// Only when the registry itself cannot be read or written; failures of single
/// schemas are in the report.
pub async fn migrate_flow_schemas(pool: &PgPool, domain: &DomainName) -> Result<FlowMigrationReport, InitError> {
    migrate_flow_schemas_with(pool, domain, Migrations::embedded()).await
}

/// [`migrate_flow_schemas`] with an explicit migration list.
///
/// # Errors
/// As [`migrate_flow_schemas`].
pub async fn migrate_flow_schemas_with(
    pool: &PgPool,
    domain: &DomainName,
    migrations: &Migrations,
) -> Result<FlowMigrationReport, InitError> {
    let context = format!("listing flow schemas of domain {domain}");
    let (versions, checksums): (Vec<i64>, Vec<String>) =
        migrations.set(MigrationSet::Flow).map(|m| (m.version, m.checksum.clone())).unzip();
    // One query tells which schemas need the runner: behind this build, failed
    // last time, or with a history that is not exactly this build's flow
    // migrations (a file edited after it was applied, one this build does not
    // know, one missing). The runner then names the problem. The others are up
    // to date and are not touched, so a start-up with nothing pending costs
    // one query however many workflows the domain has.
    let schemas: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT f.flow_key, f.schema_name,
                f.version <> $1 OR f.last_error IS NOT NULL OR coalesce((
                    SELECT count(*) <> cardinality($2::bigint[]) OR count(e.version) <> cardinality($2::bigint[])
                      FROM sys_schemas.migrations m
                      LEFT JOIN unnest($2::bigint[], $3::text[]) AS e(version, checksum)
                             ON e.version = m.version AND e.checksum = m.checksum
                     WHERE m.schema_name = f.schema_name AND m.set_name = 'flow'), true)
           FROM sys_schemas.flow_schemas f
          ORDER BY f.schema_name",
    )
    .bind(migrations.latest(MigrationSet::Flow))
    .bind(&versions)
    .bind(&checksums)
    .fetch_all(pool)
    .await
    .map_err(InitError::sql(context))?;
    // Schemas migrate independently, a few at a time.
    let outcomes: Vec<FlowSchemaOutcome> = futures::stream::iter(schemas)
        .map(|(flow_key, schema, pending)| async move {
            if !pending {
                return Ok(FlowSchemaOutcome { flow_key, schema, applied: Vec::new(), error: None });
            }
            let outcome = match migrate_one(pool, &flow_key, &schema, migrations).await {
                Ok(applied) => FlowSchemaOutcome { flow_key, schema, applied, error: None },
                Err(e) => {
                    let message = e.to_string();
                    tracing::error!(domain = %domain, schema, error = %message, "flow schema migration failed");
                    sqlx::query("UPDATE sys_schemas.flow_schemas SET last_error = $2 WHERE flow_key = $1")
                        .bind(&flow_key)
                        .bind(&message)
                        .execute(pool)
                        .await
                        .map_err(InitError::sql(format!("recording the failure of flow schema {schema}")))?;
                    let migration = migrate::failed_migration(&e, migrations);
                    FlowSchemaOutcome { flow_key, schema, applied: Vec::new(), error: Some(FlowMigrationError { migration, message }) }
                }
            };
            Ok::<_, InitError>(outcome)
        })
        .buffered(MIGRATION_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(FlowMigrationReport { domain: domain.to_string(), schemas: outcomes })
}

/// Flow schemas of one domain migrated at the same time.
const MIGRATION_CONCURRENCY: usize = 4;

async fn migrate_one(
    pool: &PgPool,
    flow_key: &str,
    schema: &str,
    migrations: &Migrations,
) -> Result<Vec<AppliedMigration>, InitError> {
    let context = || format!("migrating flow schema {schema}");
    let mut tx = pool.begin().await.map_err(InitError::sql(context()))?;
    migrate::lock_schema(&mut tx, schema).await.map_err(InitError::sql(context()))?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(&mut *tx)
        .await
        .map_err(InitError::sql(context()))?;
    if !exists {
        return Err(InitError::MissingSchema { schema: schema.to_string() });
    }
    let applied = migrate::apply_in(&mut tx, History::Domain, schema, migrations, &[MigrationSet::Flow]).await?;
    sqlx::query(
        "UPDATE sys_schemas.flow_schemas
            SET version = $2, migrated_at = CASE WHEN $3 THEN now() ELSE migrated_at END, last_error = NULL
          WHERE flow_key = $1 AND (version <> $2 OR last_error IS NOT NULL OR $3)",
    )
    .bind(flow_key)
    .bind(migrations.latest(MigrationSet::Flow))
    .bind(!applied.is_empty())
    .execute(&mut *tx)
    .await
    .map_err(InitError::sql(context()))?;
    tx.commit().await.map_err(InitError::sql(context()))?;
    Ok(applied)
}
