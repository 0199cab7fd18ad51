//! Flow schemas: one PostgreSQL schema per workflow, created the first time an
//! instance of it starts, and migrated again whenever the runtime is upgraded.
//!
//! Creation and migration of a schema happen in one transaction under the
//! schema's advisory lock (the lock the migration runner takes), because
//! `CREATE SCHEMA IF NOT EXISTS` alone races under concurrency. The registry
//! `sys_schemas.flow_schemas` records each schema, the highest flow migration it
//! has, and the last migration failure.

use sqlx::{AssertSqlSafe, PgPool};
use vnext_core::ident::{DomainName, FlowKey};

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
    let owner: Option<String> = sqlx::query_scalar("SELECT flow_key FROM sys_schemas.flow_schemas WHERE schema_name = $1")
        .bind(schema)
        .fetch_optional(&mut *tx)
        .await
        .map_err(InitError::sql(context()))?;
    if let Some(owner) = owner.filter(|o| o != flow.as_str()) {
        return Err(InitError::SchemaTaken { flow: flow.to_string(), schema: schema.to_string(), owner });
    }
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {}", flow.quoted())))
        .execute(&mut *tx)
        .await
        .map_err(InitError::sql(context()))?;
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
    if !applied.is_empty() {
        tracing::info!(flow = %flow, schema, migrations = applied.len(), "flow schema migrated");
    }
    Ok(())
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
    let schemas: Vec<(String, String)> =
        sqlx::query_as("SELECT flow_key, schema_name FROM sys_schemas.flow_schemas ORDER BY schema_name")
            .fetch_all(pool)
            .await
            .map_err(InitError::sql(context))?;
    let mut report = FlowMigrationReport { domain: domain.to_string(), schemas: Vec::with_capacity(schemas.len()) };
    for (flow_key, schema) in schemas {
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
        report.schemas.push(outcome);
    }
    Ok(report)
}

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
