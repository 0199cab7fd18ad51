//! The crate's error type. Each variant says what failed and where; SQL text never
//! appears in a message, only the object it concerned.

use vnext_core::ident::IdentError;
use vnext_core::model::ComponentKind;

use crate::db::DbError;
use crate::package::PublishReport;

/// Why provisioning, migrating, creating a flow schema or publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A domain or workflow name that cannot be a database identifier. Raised
    /// before any SQL runs.
    #[error("invalid {what} name: {source}")]
    InvalidName { what: &'static str, source: IdentError },

    /// The domain is not in the registry (never provisioned).
    #[error("unknown domain `{0}`: it is not registered; run `vnext init` or publish a component of it")]
    UnknownDomain(String),

    /// PostgreSQL could not be reached, or a pool could not be built.
    #[error(transparent)]
    Database(Box<DbError>),

    /// The same component version is already stored with other content.
    #[error("{kind} `{key}` version {version} is already published with different content; publish it under a new version")]
    Conflict { kind: ComponentKind, key: String, version: String },

    /// A component document that cannot be stored (not JSON, no key, bad version).
    #[error("invalid component: {0}")]
    InvalidComponent(String),

    /// A migration failed; the schema's migrations were rolled back together.
    #[error("migration {file} failed on schema {schema}: {source}")]
    Migration { schema: String, file: String, source: sqlx::Error },

    /// A migration recorded as applied no longer matches its file.
    #[error(
        "migration {file} was changed after it was applied to schema {schema} (recorded checksum {recorded}, file checksum {current}); never edit an applied migration, add a new numbered file instead"
    )]
    TamperedMigration { schema: String, file: String, recorded: String, current: String },

    /// The schema's history names a migration this build does not have: the
    /// database was migrated by a newer build.
    #[error("schema {schema} has migration {set}/{version:04}_{name} applied, which this build does not know; run the newer build (downgrades are not supported)")]
    UnknownAppliedMigration { schema: String, set: String, version: i64, name: String },

    /// Two workflow keys that map to the same schema (`a-b` and `a_b`).
    #[error("workflow `{flow}` maps to schema {schema}, which already belongs to workflow `{owner}`")]
    SchemaTaken { flow: String, schema: String, owner: String },

    /// Two domain names that map to the same database (`a-b` and `a_b`).
    #[error("domain `{domain}` maps to database {database}, which already belongs to domain `{owner}`")]
    DatabaseTaken { domain: String, database: String, owner: String },

    /// A domain whose database name is the control database's, or a database
    /// the registry does not own: provisioning would adopt it. Nothing is created.
    #[error("domain `{domain}` maps to database {database}, which {reason}; choose another domain name")]
    ForeignDatabase { domain: String, database: String, reason: &'static str },

    /// A domain name that collides with a route of the API.
    #[error("domain `{0}` is reserved: `/api/v1/{0}/` is a path of the API itself; choose another domain name")]
    ReservedDomain(String),

    /// The caller provisioned as many domains as `app.max_domains_per_key` allows.
    #[error("{by} already provisioned {count} domain(s), the most one caller may (app.max_domains_per_key = {cap}); domain `{domain}` was not created")]
    DomainCap { by: String, domain: String, count: i64, cap: u32 },

    /// An API key request that cannot be honoured (bad name, grants or roles).
    #[error("invalid API key request: {0}")]
    InvalidKey(String),

    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),

    /// The registry lists a flow schema that is not in the database.
    #[error("flow schema {schema} is registered but does not exist in the database")]
    MissingSchema { schema: String },

    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },

    /// Some files of a folder could not be published; the report lists every one.
    #[error("{} file(s) could not be published:\n{}", .0.failures.len(), .0.failure_lines())]
    Package(Box<PublishReport>),

    /// Any other database error, with the operation it interrupted.
    #[error("{context}: {source}")]
    Sql { context: String, source: sqlx::Error },
}

impl InitError {
    /// Wraps a database error with what was being done.
    pub(crate) fn sql(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> InitError {
        let context = context.into();
        move |source| InitError::Sql { context, source }
    }

    /// The database was unreachable or could not serve (see
    /// [`crate::unavailable`]): the same operation may succeed later.
    pub fn is_unavailable(&self) -> bool {
        use crate::unavailable::is_unavailable;
        match self {
            InitError::Sql { source, .. } | InitError::Migration { source, .. } => is_unavailable(source),
            InitError::Database(db) => match &**db {
                DbError::Unreachable { .. } => true,
                DbError::Connect { source, .. } | DbError::Control(source) => is_unavailable(source),
                _ => false,
            },
            _ => false,
        }
    }

    pub(crate) fn domain_name(source: IdentError) -> InitError {
        InitError::InvalidName { what: "domain", source }
    }

    pub(crate) fn flow_name(source: IdentError) -> InitError {
        InitError::InvalidName { what: "workflow", source }
    }
}

impl From<DbError> for InitError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::UnknownDomain(d) => InitError::UnknownDomain(d),
            other => InitError::Database(Box::new(other)),
        }
    }
}
