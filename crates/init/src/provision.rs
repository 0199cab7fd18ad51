//! Provisioning: the control schema, and for each domain its database, its role,
//! its system schemas and their migrations.
//!
//! A domain `payments` gets database `<prefix>payments`, owned by a role of the
//! same name (`LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`, password derived from
//! `database.role_secret`). `CONNECT` on every domain database is revoked from
//! `PUBLIC`, so a domain's role can connect to its own database only. Inside it,
//! the role creates `sys_flows`, `sys_tasks`, `sys_schemas`, `sys_views`,
//! `sys_functions`, `sys_extensions`, `sys_queues` and `sys_audit` and their
//! migrations run.
//!
//! Provisioning is idempotent: every step looks before it acts, so a second run
//! changes nothing. Two processes provisioning the same domain serialise on a
//! session-level advisory lock in the control database (`CREATE DATABASE` cannot
//! run inside a transaction, so a transaction-scoped lock cannot cover it), and a
//! creation that loses a race anyway is treated as "already exists".

use std::time::Instant;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use vnext_core::ident::{DomainName, quote};

use crate::db::{Databases, DomainTarget};
use crate::error::InitError;
use crate::migrate::{self, AppliedMigration, History, MigrationSet, Migrations, sha256_hex};

/// The schemas every domain database has, with the migration sets each receives.
pub const SYSTEM_SCHEMAS: [(&str, &[MigrationSet]); 8] = [
    ("sys_schemas", &[MigrationSet::Components, MigrationSet::Registry]),
    ("sys_flows", &[MigrationSet::Components]),
    ("sys_tasks", &[MigrationSet::Components]),
    ("sys_views", &[MigrationSet::Components]),
    ("sys_functions", &[MigrationSet::Components]),
    ("sys_extensions", &[MigrationSet::Components]),
    ("sys_queues", &[MigrationSet::Queues]),
    ("sys_audit", &[MigrationSet::Audit]),
];

/// What provisioning one domain did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProvisionReport {
    pub domain: String,
    pub database: String,
    pub created_role: bool,
    pub created_database: bool,
    /// Migrations applied, by schema.
    pub applied: Vec<(String, AppliedMigration)>,
}

impl ProvisionReport {
    /// True when the run found everything in place.
    pub fn changed_nothing(&self) -> bool {
        !self.created_role && !self.created_database && self.applied.is_empty()
    }
}

/// Creates the control schema `vnext_control` and applies its migrations.
///
/// # Errors
/// Migration errors as [`migrate::apply`].
pub async fn prepare_control(dbs: &Databases, migrations: &Migrations) -> Result<Vec<AppliedMigration>, InitError> {
    let context = || "preparing the control schema vnext_control".to_string();
    let mut tx = dbs.control().begin().await.map_err(InitError::sql(context()))?;
    migrate::lock_schema(&mut tx, "vnext_control").await.map_err(InitError::sql(context()))?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'vnext_control')")
        .fetch_one(&mut *tx)
        .await
        .map_err(InitError::sql(context()))?;
    if !exists {
        sqlx::query("CREATE SCHEMA vnext_control").execute(&mut *tx).await.map_err(InitError::sql(context()))?;
    }
    let applied = migrate::apply_in(&mut tx, History::Control, "vnext_control", migrations, &[MigrationSet::Control]).await?;
    tx.commit().await.map_err(InitError::sql(context()))?;
    Ok(applied)
}

/// Every domain in the registry, by name. Empty when nothing was provisioned yet.
///
/// # Errors
/// [`InitError::Sql`] when the registry cannot be read.
pub async fn registered_domains(dbs: &Databases) -> Result<Vec<DomainName>, InitError> {
    domains_where(dbs, "true").await
}

/// The domains whose provisioning finished (`active`): the ones with every
/// system schema in place. A domain still being provisioned is left out.
///
/// # Errors
/// [`InitError::Sql`] when the registry cannot be read.
pub async fn active_domains(dbs: &Databases) -> Result<Vec<DomainName>, InitError> {
    domains_where(dbs, "status = 'active'").await
}

async fn domains_where(dbs: &Databases, filter: &'static str) -> Result<Vec<DomainName>, InitError> {
    let sql = format!("SELECT domain FROM vnext_control.domains WHERE {filter} ORDER BY domain");
    let names: Vec<String> = match sqlx::query_scalar(AssertSqlSafe(sql)).fetch_all(dbs.control()).await {
        Ok(names) => names,
        Err(e) if matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42P01" | "3F000")) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(InitError::sql("reading the domain registry")(e)),
    };
    names.iter().map(|n| DomainName::new(n).map_err(InitError::domain_name)).collect()
}

/// Provisions a domain given by name, refusing a name that cannot be a database
/// identifier before any SQL runs.
///
/// # Errors
/// [`InitError::InvalidName`]; otherwise as [`provision_domain`].
pub async fn provision_domain_named(dbs: &Databases, name: &str) -> Result<ProvisionReport, InitError> {
    let domain = DomainName::new(name).map_err(InitError::domain_name)?;
    provision_domain_with(dbs, &domain, Migrations::embedded()).await
}

/// Provisions `domain` (idempotent): registry entry, role, database, system
/// schemas and their migrations.
///
/// # Errors
/// [`InitError::Database`] when a server cannot be reached, [`InitError::DatabaseTaken`]
/// when another domain owns the database name, [`InitError::ForeignDatabase`] when
/// it is the control database or one the registry does not own, migration
/// errors, [`InitError::Sql`].
pub async fn provision_domain(dbs: &Databases, domain: &DomainName) -> Result<(), InitError> {
    provision_domain_with(dbs, domain, Migrations::embedded()).await.map(|_| ())
}

/// Who provisions a domain through the API, and how many domains they may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioner {
    /// `key:<id>`, `jwt:<subject>`, `header:<subject>`.
    pub label: String,
    /// Domains this provisioner may have registered at most.
    pub cap: u32,
}

/// [`provision_domain`] on behalf of `by`, counted against its cap. A
/// domain that is already registered is provisioned again (idempotent)
/// whoever asks, and counts nothing new.
///
/// # Errors
/// [`InitError::DomainCap`] when `by` already registered `by.cap` domains;
/// otherwise as [`provision_domain`].
pub async fn provision_domain_by(dbs: &Databases, domain: &DomainName, by: &Provisioner) -> Result<(), InitError> {
    provision_inner(dbs, domain, Migrations::embedded(), Some(by)).await.map(|_| ())
}

/// [`provision_domain`] with an explicit migration list, returning what it did.
///
/// # Errors
/// As [`provision_domain`].
pub async fn provision_domain_with(
    dbs: &Databases,
    domain: &DomainName,
    migrations: &Migrations,
) -> Result<ProvisionReport, InitError> {
    provision_inner(dbs, domain, migrations, None).await
}

async fn provision_inner(
    dbs: &Databases,
    domain: &DomainName,
    migrations: &Migrations,
    by: Option<&Provisioner>,
) -> Result<ProvisionReport, InitError> {
    if domain.is_reserved() {
        return Err(InitError::ReservedDomain(domain.to_string()));
    }
    let started = Instant::now();
    prepare_control(dbs, migrations).await?;
    // A connection of its own, not from the pool: the session lock lives as long
    // as the connection, and dropping it (even on cancellation) releases the lock.
    let mut lock_conn = dbs.admin_connection(&dbs.control_options(), None).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('vnext:provision:' || $1, 0))")
        .bind(domain.ident())
        .execute(&mut lock_conn)
        .await
        .map_err(InitError::sql(format!("locking domain {domain} for provisioning")))?;
    // Refused before anything is written: no registry row, no rollout record.
    if let Err(e) = refuse_foreign_database(dbs, domain).await {
        let _ = lock_conn.close().await;
        return Err(e);
    }
    if let Some(by) = by
        && let Err(e) = register_within_cap(dbs, domain, by).await
    {
        let _ = lock_conn.close().await;
        return Err(e);
    }
    let result = provision_locked(dbs, domain, migrations).await;
    let _ = lock_conn.close().await;
    if let Err(e) = &result {
        record_failure(dbs, domain, "", None, &e.to_string()).await;
        mark_failed(dbs, domain).await;
    }
    let report = result?;
    tracing::info!(domain = %domain, database = %report.database, ms = started.elapsed().as_millis() as u64,
        changed = !report.changed_nothing(), "domain provisioned");
    Ok(report)
}

/// A new domain must not adopt a database it did not create: not the control
/// database, and no database the registry does not list (provisioning would
/// hand it to the domain's role and create schemas in it).
async fn refuse_foreign_database(dbs: &Databases, domain: &DomainName) -> Result<(), InitError> {
    let database = dbs.database_name(domain);
    let refuse = |reason| Err(InitError::ForeignDatabase { domain: domain.to_string(), database: database.clone(), reason });
    let control = dbs.control_options();
    if control.get_database().unwrap_or(control.get_username()) == database {
        return refuse("is the control database");
    }
    let context = || format!("checking the database name of domain {domain}");
    let registered: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM vnext_control.domains WHERE database = $1)")
        .bind(&database)
        .fetch_one(dbs.control())
        .await
        .map_err(InitError::sql(context()))?;
    if registered {
        return Ok(());
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&database)
        .fetch_one(dbs.control())
        .await
        .map_err(InitError::sql(context()))?;
    if exists {
        return refuse("already exists and is not a domain database of this registry");
    }
    Ok(())
}

/// Registers `domain` for `by` unless it is registered already, refusing
/// past `by.cap`. Two domains provisioned at once by one caller serialise on
/// a lock of the caller, so both cannot slip under the cap.
async fn register_within_cap(dbs: &Databases, domain: &DomainName, by: &Provisioner) -> Result<(), InitError> {
    let context = || format!("registering domain {domain} for {}", by.label);
    let mut tx = dbs.control().begin().await.map_err(InitError::sql(context()))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('vnext:provisioner:' || $1, 0))")
        .bind(&by.label)
        .execute(&mut *tx)
        .await
        .map_err(InitError::sql(context()))?;
    let (exists, count): (bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM vnext_control.domains WHERE domain = $1),
                (SELECT count(*) FROM vnext_control.domains WHERE provisioned_by = $2)",
    )
    .bind(domain.as_str())
    .bind(&by.label)
    .fetch_one(&mut *tx)
    .await
    .map_err(InitError::sql(context()))?;
    if exists {
        return Ok(());
    }
    if count >= i64::from(by.cap) {
        return Err(InitError::DomainCap { by: by.label.clone(), domain: domain.to_string(), count, cap: by.cap });
    }
    sqlx::query(
        "INSERT INTO vnext_control.domains (domain, database, status, provisioned_by) VALUES ($1, $2, 'provisioning', $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(domain.as_str())
    .bind(dbs.database_name(domain))
    .bind(&by.label)
    .execute(&mut *tx)
    .await
    .map_err(InitError::sql(context()))?;
    tx.commit().await.map_err(InitError::sql(context()))
}

async fn provision_locked(dbs: &Databases, domain: &DomainName, migrations: &Migrations) -> Result<ProvisionReport, InitError> {
    let database = dbs.database_name(domain);
    let registry = |what: &str| InitError::sql(format!("{what} domain {domain} in the registry"));
    let inserted = sqlx::query(
        "INSERT INTO vnext_control.domains (domain, database, status) VALUES ($1, $2, 'provisioning')
         ON CONFLICT DO NOTHING",
    )
    .bind(domain.as_str())
    .bind(&database)
    .execute(dbs.control())
    .await
    .map_err(registry("registering"))?
    .rows_affected();
    if inserted == 0 {
        let owner: Option<String> = sqlx::query_scalar("SELECT domain FROM vnext_control.domains WHERE database = $1")
            .bind(&database)
            .fetch_optional(dbs.control())
            .await
            .map_err(registry("reading"))?;
        if let Some(owner) = owner.filter(|o| o != domain.as_str()) {
            return Err(InitError::DatabaseTaken { domain: domain.to_string(), database, owner });
        }
    }
    let target = dbs.registered_target(domain, false).await?;
    let fingerprint: Option<String> =
        sqlx::query_scalar("SELECT role_password_sha256 FROM vnext_control.domains WHERE domain = $1")
            .bind(domain.as_str())
            .fetch_one(dbs.control())
            .await
            .map_err(registry("reading"))?;

    let mut report = ProvisionReport { domain: domain.to_string(), database: target.database.clone(), ..Default::default() };
    let mut admin = dbs.admin_connection(&target.server, None).await?;
    let password = dbs.role_password(domain);
    let password_sha = sha256_hex(password.as_bytes());
    report.created_role = ensure_role(&mut admin, &target.database, &password, fingerprint.as_deref() != Some(&password_sha)).await?;
    report.created_database = ensure_database(&mut admin, &target.database).await?;
    let _ = admin.close().await;

    report.applied = create_system_schemas(dbs, domain, &target, migrations).await?;
    for (schema, applied) in &report.applied {
        record_applied(dbs, domain, schema, std::slice::from_ref(applied)).await;
    }
    sqlx::query(
        "UPDATE vnext_control.domains
            SET status = 'active', role_password_sha256 = $2, updated_at = now()
          WHERE domain = $1 AND (status <> 'active' OR role_password_sha256 IS DISTINCT FROM $2)",
    )
    .bind(domain.as_str())
    .bind(&password_sha)
    .execute(dbs.control())
    .await
    .map_err(registry("activating"))?;
    Ok(report)
}

/// Creates the domain role, or brings its attributes (and, when the secret
/// changed, its password) in line. Returns whether it was created.
async fn ensure_role(admin: &mut PgConnection, role: &str, password: &str, set_password: bool) -> Result<bool, InitError> {
    let context = || format!("provisioning role {role}");
    let attrs: Option<(bool, bool, bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut *admin)
            .await
            .map_err(InitError::sql(context()))?;
    // The password is lower-case hex, so it is a safe literal.
    debug_assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));
    let options = format!("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'");
    match attrs {
        None => {
            match sqlx::query(AssertSqlSafe(format!("CREATE ROLE {} {options}", quote(role)))).execute(&mut *admin).await {
                Ok(_) => return Ok(true),
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(InitError::sql(context())(e)),
            }
        }
        Some((false, false, false, true)) if !set_password => return Ok(false),
        Some(_) => {}
    }
    sqlx::query(AssertSqlSafe(format!("ALTER ROLE {} {options}", quote(role))))
        .execute(&mut *admin)
        .await
        .map_err(InitError::sql(context()))?;
    Ok(false)
}

/// Creates the domain database owned by its role, fixes the owner if it drifted,
/// and revokes `CONNECT` from `PUBLIC`. Returns whether it was created.
async fn ensure_database(admin: &mut PgConnection, database: &str) -> Result<bool, InitError> {
    let context = || format!("provisioning database {database}");
    let owner: Option<String> = sqlx::query_scalar("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(&mut *admin)
        .await
        .map_err(InitError::sql(context()))?;
    let mut created = false;
    match owner.as_deref() {
        None => {
            let create = format!("CREATE DATABASE {db} OWNER {db}", db = quote(database));
            match sqlx::query(AssertSqlSafe(create)).execute(&mut *admin).await {
                Ok(_) => created = true,
                // Another process created it between the look and the create.
                Err(e) if is_duplicate(&e) => {}
                Err(e) => return Err(InitError::sql(context())(e)),
            }
        }
        Some(o) if o == database => {}
        Some(_) => {
            sqlx::query(AssertSqlSafe(format!("ALTER DATABASE {db} OWNER TO {db}", db = quote(database))))
                .execute(&mut *admin)
                .await
                .map_err(InitError::sql(context()))?;
        }
    }
    let public_connect: bool = sqlx::query_scalar("SELECT has_database_privilege('public', $1, 'CONNECT')")
        .bind(database)
        .fetch_one(&mut *admin)
        .await
        .map_err(InitError::sql(context()))?;
    if public_connect {
        sqlx::query(AssertSqlSafe(format!("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC", quote(database))))
            .execute(&mut *admin)
            .await
            .map_err(InitError::sql(context()))?;
    }
    Ok(created)
}

/// Creates the system schemas (as the domain role, so it owns them) and migrates
/// each in its own transaction.
async fn create_system_schemas(
    dbs: &Databases,
    domain: &DomainName,
    target: &DomainTarget,
    migrations: &Migrations,
) -> Result<Vec<(String, AppliedMigration)>, InitError> {
    let pool = dbs.pool_for(domain, target);
    let context = || format!("creating the system schemas of domain {domain}");
    let mut tx = pool.begin().await.map_err(|e| match e {
        e if crate::unavailable::is_unavailable(&e) => InitError::Database(Box::new(crate::db::DbError::Unreachable {
            host: target.server.get_host().to_string(),
            port: target.server.get_port(),
            source: e,
        })),
        other => InitError::sql(context())(other),
    })?;
    migrate::lock_schema(&mut tx, "vnext:system").await.map_err(InitError::sql(context()))?;
    let existing: Vec<String> = sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
        .bind(SYSTEM_SCHEMAS.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await
        .map_err(InitError::sql(context()))?;
    for (schema, _) in SYSTEM_SCHEMAS.iter().filter(|(s, _)| !existing.iter().any(|e| e == s)) {
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {}", quote(schema))))
            .execute(&mut *tx)
            .await
            .map_err(InitError::sql(context()))?;
    }
    tx.commit().await.map_err(InitError::sql(context()))?;

    let mut applied = Vec::new();
    for (schema, sets) in SYSTEM_SCHEMAS {
        match migrate::apply(&pool, History::Domain, schema, migrations, sets).await {
            Ok(done) => applied.extend(done.into_iter().map(|m| (schema.to_string(), m))),
            Err(e) => {
                let migration = migrate::failed_migration(&e, migrations);
                record_failure(dbs, domain, schema, migration, &e.to_string()).await;
                return Err(e);
            }
        }
    }
    Ok(applied)
}

/// Records applied migrations in `vnext_control.rollouts`. Best effort: the
/// migrations are committed already, a lost record must not undo them.
pub(crate) async fn record_applied(dbs: &Databases, domain: &DomainName, schema: &str, applied: &[AppliedMigration]) {
    for m in applied {
        let r = sqlx::query(
            "INSERT INTO vnext_control.rollouts (domain, schema_name, version, name, status, duration_ms)
             VALUES ($1, $2, $3, $4, 'applied', $5)",
        )
        .bind(domain.as_str())
        .bind(schema)
        .bind(m.version)
        .bind(&m.name)
        .bind(m.duration_ms)
        .execute(dbs.control())
        .await;
        if let Err(e) = r {
            tracing::warn!(domain = %domain, schema, error = %e, "could not record a rollout");
        }
    }
}

/// Records a failed migration (or provisioning step) in `vnext_control.rollouts`.
pub(crate) async fn record_failure(
    dbs: &Databases,
    domain: &DomainName,
    schema: &str,
    migration: Option<(i64, String)>,
    message: &str,
) {
    let (version, name) = migration.unwrap_or((0, String::new()));
    let r = sqlx::query(
        "INSERT INTO vnext_control.rollouts (domain, schema_name, version, name, status, error)
         VALUES ($1, $2, $3, $4, 'failed', $5)",
    )
    .bind(domain.as_str())
    .bind(schema)
    .bind(version)
    .bind(&name)
    .bind(message)
    .execute(dbs.control())
    .await;
    if let Err(e) = r {
        tracing::warn!(domain = %domain, schema, error = %e, "could not record a failed rollout");
    }
}

/// A domain whose first provisioning failed is marked `failed`; an active one
/// stays active (a failed upgrade migration rolled back and left it working).
async fn mark_failed(dbs: &Databases, domain: &DomainName) {
    let _ = sqlx::query(
        "UPDATE vnext_control.domains SET status = 'failed', updated_at = now() WHERE domain = $1 AND status = 'provisioning'",
    )
    .bind(domain.as_str())
    .execute(dbs.control())
    .await;
}

fn is_duplicate(e: &sqlx::Error) -> bool {
    // 42P04 duplicate_database, 42710 duplicate_object, 23505 unique_violation
    // (a concurrent CREATE loses on the catalog's unique index).
    matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42P04" | "42710" | "23505"))
}

/// Drops a domain's database and role and forgets it. For tests and tooling;
/// the caller must make sure nothing uses the domain any more.
///
/// # Errors
/// [`InitError::Sql`] naming the step that failed.
pub async fn drop_domain(dbs: &Databases, domain: &DomainName) -> Result<(), InitError> {
    let database = dbs.database_name(domain);
    dbs.forget_pool(domain);
    let mut admin = dbs.admin_connection(&dbs.control_options(), None).await?;
    let context = || format!("dropping domain {domain}");
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&database))))
        .execute(&mut admin)
        .await
        .map_err(InitError::sql(context()))?;
    sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS {}", quote(&database))))
        .execute(&mut admin)
        .await
        .map_err(InitError::sql(context()))?;
    let _ = sqlx::query("DELETE FROM vnext_control.domains WHERE domain = $1").bind(domain.as_str()).execute(dbs.control()).await;
    Ok(())
}
