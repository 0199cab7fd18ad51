//! The component store: immutable versions of components in their `sys_*` schema.
//!
//! Content is stored as PostgreSQL `json` (not `jsonb`), so a component reads back
//! byte for byte as it was published, with its SHA-256. A version is immutable:
//! publishing it again with the same content is a no-op
//! ([`PublishOutcome::Unchanged`]); with other content it is
//! [`InitError::Conflict`]. "The same content" means the same JSON value: a file
//! that was only re-formatted (whitespace, key order) is unchanged, and the
//! stored text stays the one first published.
//!
//! Each publish that stores something raises the domain's publish revision
//! (`sys_schemas.publish_revision`) in its transaction, so every process sees
//! that its cached definitions are stale when (and only when) the publish
//! commits ([`publish_revision`]).
//!
//! Version selection (`latest`, major `1`, `1.2`, exact `1.2.3`) filters on the
//! numeric `major`/`minor`/`patch` columns and picks the highest match by semver
//! precedence, so a pre-release (`2.0.0-rc.1`) ranks below its release but above
//! every lower version, and `latest` may select it when it is the highest.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgConnection, PgExecutor, PgPool, Row};
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::model::ComponentKind;
use vnext_core::version::VersionSelector;

use crate::error::InitError;
use crate::migrate::sha256_hex;


/// A stored component version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredComponent {
    pub kind: ComponentKind,
    pub key: String,
    pub version: String,
    pub domain: String,
    pub content: Value,
    /// The JSON text exactly as published.
    pub raw: String,
    pub sha256: String,
    pub published_at: DateTime<Utc>,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The version was stored.
    Created,
    /// The version was already stored with the same content; nothing changed.
    Unchanged,
}

/// The identity of a component document, read from its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentIdentity {
    pub kind: ComponentKind,
    pub key: String,
    pub version: String,
    pub domain: DomainName,
    major: i64,
    minor: i64,
    patch: i64,
}

impl ComponentIdentity {
    /// Reads `flow`, `key`, `version` and `domain` of a component document.
    ///
    /// # Errors
    /// [`InitError::InvalidComponent`] naming the missing or malformed field;
    /// [`InitError::InvalidName`] for a domain that cannot be a database name.
    pub fn of(value: &Value) -> Result<ComponentIdentity, InitError> {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| InitError::InvalidComponent(format!("missing string field `{name}`")))
        };
        let flow = field("flow")?;
        let kind = ComponentKind::from_flow(flow)
            .ok_or_else(|| InitError::InvalidComponent(format!("unknown component flow `{flow}`")))?;
        let key = field("key")?.to_string();
        let version = field("version")?.to_string();
        let parsed = semver::Version::parse(&version)
            .map_err(|e| InitError::InvalidComponent(format!("version `{version}` is not a semantic version: {e}")))?;
        let part = |n: u64| {
            i64::try_from(n).map_err(|_| InitError::InvalidComponent(format!("version `{version}` has a part that is too large")))
        };
        let (major, minor, patch) = (part(parsed.major)?, part(parsed.minor)?, part(parsed.patch)?);
        let domain = DomainName::new(field("domain")?).map_err(InitError::domain_name)?;
        if kind == ComponentKind::Workflow {
            // A workflow's key becomes its schema: refuse it here, not at first start.
            FlowKey::new(&key).map_err(InitError::flow_name)?;
        } else if key.is_empty() {
            return Err(InitError::InvalidComponent("`key` is empty".into()));
        }
        Ok(ComponentIdentity { kind, key, version, domain, major, minor, patch })
    }
}

/// Publishes one component document (already validated) in its own transaction.
///
/// # Errors
/// [`InitError::Conflict`] when the version exists with other content;
/// [`InitError::InvalidComponent`] when the text is not a component document.
pub async fn publish(pool: &PgPool, raw_json: &str) -> Result<PublishOutcome, InitError> {
    let mut tx = pool.begin().await.map_err(InitError::sql("publishing a component"))?;
    let outcome = publish_in(&mut tx, raw_json).await?;
    tx.commit().await.map_err(InitError::sql("publishing a component"))?;
    Ok(outcome)
}

/// Publishes one component inside the caller's transaction; the change and its
/// notification commit (or roll back) with it.
///
/// # Errors
/// As [`publish`].
pub async fn publish_in(conn: &mut PgConnection, raw_json: &str) -> Result<PublishOutcome, InitError> {
    let value: Value =
        serde_json::from_str(raw_json).map_err(|e| InitError::InvalidComponent(format!("not valid JSON: {e}")))?;
    let id = ComponentIdentity::of(&value)?;
    let table = format!("{}.components", id.kind.schema());
    let context = || format!("publishing {} `{}` {}", id.kind, id.key, id.version);
    let sha256 = sha256_hex(raw_json.as_bytes());

    let inserted = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (key, version, major, minor, patch, domain, content, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::json, $8)
         ON CONFLICT (key, version) DO NOTHING"
    )))
    .bind(&id.key)
    .bind(&id.version)
    .bind(id.major)
    .bind(id.minor)
    .bind(id.patch)
    .bind(id.domain.as_str())
    .bind(raw_json)
    .bind(&sha256)
    .execute(&mut *conn)
    .await
    .map_err(InitError::sql(context()))?
    .rows_affected();

    if inserted == 1 {
        sqlx::query("UPDATE sys_schemas.publish_revision SET revision = revision + 1")
            .execute(&mut *conn)
            .await
            .map_err(InitError::sql(context()))?;
        return Ok(PublishOutcome::Created);
    }

    let (existing_sha, existing_raw): (String, String) =
        sqlx::query_as(AssertSqlSafe(format!("SELECT sha256, content::text FROM {table} WHERE key = $1 AND version = $2")))
            .bind(&id.key)
            .bind(&id.version)
            .fetch_one(&mut *conn)
            .await
            .map_err(InitError::sql(context()))?;
    if existing_sha == sha256 || serde_json::from_str::<Value>(&existing_raw).is_ok_and(|v| v == value) {
        Ok(PublishOutcome::Unchanged)
    } else {
        Err(InitError::Conflict { kind: id.kind, key: id.key, version: id.version })
    }
}

/// The domain's publish revision: raised by every publish that stores a
/// component, visible once that publish commits.
///
/// # Errors
/// [`InitError::Sql`] when it cannot be read.
pub async fn publish_revision<'e>(db: impl PgExecutor<'e>) -> Result<i64, InitError> {
    sqlx::query_scalar("SELECT revision FROM sys_schemas.publish_revision")
        .fetch_one(db)
        .await
        .map_err(InitError::sql("reading the publish revision"))
}

/// How a stored version compares with a document about to be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Absent,
    Same,
    Different,
}

/// Compares a document with what is stored under its key and version, without
/// writing anything (used to report every conflict of a folder up front).
///
/// # Errors
/// As [`publish`].
pub async fn compare(pool: &PgPool, raw_json: &str) -> Result<Existing, InitError> {
    let value: Value =
        serde_json::from_str(raw_json).map_err(|e| InitError::InvalidComponent(format!("not valid JSON: {e}")))?;
    let id = ComponentIdentity::of(&value)?;
    let row: Option<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT sha256, content::text FROM {}.components WHERE key = $1 AND version = $2",
        id.kind.schema()
    )))
    .bind(&id.key)
    .bind(&id.version)
    .fetch_optional(pool)
    .await
    .map_err(InitError::sql(format!("reading {} `{}` {}", id.kind, id.key, id.version)))?;
    Ok(match row {
        None => Existing::Absent,
        Some((sha, _)) if sha == sha256_hex(raw_json.as_bytes()) => Existing::Same,
        Some((_, raw)) if serde_json::from_str::<Value>(&raw).is_ok_and(|v| v == value) => Existing::Same,
        Some(_) => Existing::Different,
    })
}

/// The version of `key` that `selector` picks, with its content.
///
/// # Errors
/// [`InitError::Sql`] when the store cannot be read.
pub async fn fetch(
    pool: &PgPool,
    kind: ComponentKind,
    key: &str,
    selector: &VersionSelector,
) -> Result<Option<StoredComponent>, InitError> {
    let mut conn = pool.acquire().await.map_err(InitError::sql(format!("reading {kind} `{key}`")))?;
    fetch_in(&mut conn, kind, key, selector).await
}

/// [`fetch`] on a connection the caller holds (inside its transaction, if any).
///
/// # Errors
/// As [`fetch`].
pub async fn fetch_in(
    conn: &mut PgConnection,
    kind: ComponentKind,
    key: &str,
    selector: &VersionSelector,
) -> Result<Option<StoredComponent>, InitError> {
    let context = || format!("reading {kind} `{key}`");
    let (major, minor, patch) = match selector {
        VersionSelector::Latest => (None, None, None),
        VersionSelector::Major(m) => (Some(*m), None, None),
        VersionSelector::MajorMinor(m, n) => (Some(*m), Some(*n), None),
        VersionSelector::Exact(v) => (Some(v.major), Some(v.minor), Some(v.patch)),
    };
    let as_i64 = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let candidates: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM {}.components
          WHERE key = $1 AND status = 'active'
            AND ($2::bigint IS NULL OR major = $2)
            AND ($3::bigint IS NULL OR minor = $3)
            AND ($4::bigint IS NULL OR patch = $4)",
        kind.schema()
    )))
    .bind(key)
    .bind(as_i64(major))
    .bind(as_i64(minor))
    .bind(as_i64(patch))
    .fetch_all(&mut *conn)
    .await
    .map_err(InitError::sql(context()))?;
    let Some(version) = selector.pick(candidates.iter().map(String::as_str)) else {
        return Ok(None);
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT key, version, domain, content::text, sha256, published_at FROM {}.components WHERE key = $1 AND version = $2",
        kind.schema()
    )))
    .bind(key)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await
    .map_err(InitError::sql(context()))?;
    row.map(|row| {
        let raw: String = row.get(3);
        let content = serde_json::from_str(&raw)
            .map_err(|e| InitError::InvalidComponent(format!("stored {kind} `{key}` is not valid JSON: {e}")))?;
        Ok(StoredComponent {
            kind,
            key: row.get(0),
            version: row.get(1),
            domain: row.get(2),
            content,
            raw,
            sha256: row.get(4),
            published_at: row.get(5),
        })
    })
    .transpose()
}

/// Every stored version of `key`, lowest first by semver precedence.
///
/// # Errors
/// [`InitError::Sql`] when the store cannot be read.
pub async fn versions(pool: &PgPool, kind: ComponentKind, key: &str) -> Result<Vec<String>, InitError> {
    let mut versions: Vec<String> =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {}.components WHERE key = $1", kind.schema())))
            .bind(key)
            .fetch_all(pool)
            .await
            .map_err(InitError::sql(format!("listing versions of {kind} `{key}`")))?;
    sort_by_precedence(&mut versions);
    Ok(versions)
}

/// Every stored `(kind, domain, key, version)` of a domain database, for
/// resolving references of a package against what is already published.
///
/// # Errors
/// [`InitError::Sql`] when the store cannot be read.
pub async fn inventory(pool: &PgPool) -> Result<Vec<(ComponentKind, String, String, String)>, InitError> {
    let mut out = Vec::new();
    for kind in ComponentKind::PUBLISH_ORDER {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as(AssertSqlSafe(format!("SELECT domain, key, version FROM {}.components", kind.schema())))
                .fetch_all(pool)
                .await
                .map_err(InitError::sql(format!("listing {kind}")))?;
        out.extend(rows.into_iter().map(|(d, k, v)| (kind, d, k, v)));
    }
    Ok(out)
}

fn sort_by_precedence(versions: &mut [String]) {
    versions.sort_by(|a, b| match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp_precedence(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    });
}
