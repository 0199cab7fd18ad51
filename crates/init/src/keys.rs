//! API keys, kept in the control database (`vnext_control.api_keys`).
//!
//! A key is `vnk_` followed by 64 hex digits: 32 bytes from the operating
//! system's CSPRNG. It is shown once, when created; only its SHA-256 is stored.
//! A salted, slow hash (argon2, bcrypt) protects low-entropy passwords against
//! guessing; a 256-bit random secret cannot be guessed, so one SHA-256 is as
//! strong here and lets a request find its key with one indexed look-up.
//!
//! A key's scope is either `admin` (everything: provisioning, key management and
//! every domain) or one domain with a set of [`Grant`]s. Roles are free strings
//! carried for the workflow model's roles.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;
use vnext_core::ident::DomainName;

use crate::db::Databases;
use crate::error::InitError;
use crate::migrate::Migrations;
use crate::provision::prepare_control;

/// What every key secret starts with, so a leaked one is recognisable.
pub const KEY_PREFIX: &str = "vnk_";

/// What a domain-scoped key may do in its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    /// Publish components into the (existing) domain.
    Publish,
    /// Start instances, run transitions, retry.
    Write,
    /// Read instances, history, functions, definitions.
    Read,
}

impl Grant {
    pub const ALL: [Grant; 3] = [Grant::Publish, Grant::Write, Grant::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Publish => "publish",
            Grant::Write => "write",
            Grant::Read => "read",
        }
    }

    /// Parses one grant name.
    ///
    /// # Errors
    /// A message naming the unknown grant and the known ones.
    pub fn parse(raw: &str) -> Result<Grant, String> {
        Grant::ALL
            .into_iter()
            .find(|g| g.as_str() == raw.trim())
            .ok_or_else(|| format!("unknown grant `{}`; use publish, write or read", raw.trim()))
    }
}

/// Who a key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    Admin,
    Domain { domain: DomainName, grants: BTreeSet<Grant> },
}

impl KeyScope {
    /// Whether the scope allows `grant` in `domain`.
    pub fn allows(&self, domain: &str, grant: Grant) -> bool {
        match self {
            KeyScope::Admin => true,
            KeyScope::Domain { domain: d, grants } => d.as_str() == domain && grants.contains(&grant),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, KeyScope::Admin)
    }
}

/// A stored key (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub scope: KeyScope,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// The key as the admin API and `vnext keys list` show it.
    pub fn to_json(&self) -> serde_json::Value {
        let (scope, domain, grants) = match &self.scope {
            KeyScope::Admin => ("admin", None, Vec::new()),
            KeyScope::Domain { domain, grants } => {
                ("domain", Some(domain.to_string()), grants.iter().map(|g| g.as_str()).collect())
            }
        };
        serde_json::json!({
            "id": self.id, "name": self.name, "scope": scope, "domain": domain, "grants": grants,
            "roles": self.roles, "createdAt": self.created_at, "revokedAt": self.revoked_at,
            "lastUsedAt": self.last_used_at,
        })
    }
}

/// What a new key is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub name: String,
    pub scope: KeyScope,
    pub roles: Vec<String>,
}

impl NewKey {
    /// A key request from its parts, as the command line and the admin API take
    /// them: either `admin`, or a domain with grants.
    ///
    /// # Errors
    /// A message naming the field that is wrong.
    pub fn from_parts(name: &str, admin: bool, domain: Option<&str>, grants: &[String], roles: Vec<String>) -> Result<NewKey, String> {
        let scope = match (admin, domain) {
            (true, Some(_)) => return Err("scope: a key is either admin or for one domain, not both".into()),
            (true, None) if !grants.is_empty() => return Err("grants: an admin key may do everything; give no grants".into()),
            (true, None) => KeyScope::Admin,
            (false, None) => return Err("scope: give `admin` or a domain with its grants".into()),
            (false, Some(domain)) => KeyScope::Domain {
                domain: DomainName::new(domain)
                    .map_err(|e| format!("domain: {e}"))
                    .and_then(|d| if d.is_reserved() { Err(format!("domain: `{d}` is reserved (a path of the API)")) } else { Ok(d) })?,
                grants: grants
                    .iter()
                    .flat_map(|g| g.split(','))
                    .filter(|g| !g.trim().is_empty())
                    .map(Grant::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("grants: {e}"))?,
            },
        };
        let key = NewKey { name: name.to_string(), scope, roles };
        key.check()?;
        Ok(key)
    }

    /// Checks what types cannot: a name, a non-empty grant set, sane roles.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn check(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err("name: 1 to 200 printable characters".into());
        }
        if let KeyScope::Domain { grants, .. } = &self.scope
            && grants.is_empty()
        {
            return Err("grants: a domain key needs at least one of publish, write, read".into());
        }
        if self.roles.iter().any(|r| r.trim().is_empty() || r.len() > 100 || r.chars().any(char::is_control)) {
            return Err("roles: each role is 1 to 100 printable characters".into());
        }
        Ok(())
    }
}

/// The stored form of a secret: SHA-256, lower-case hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh secret: the prefix and 32 random bytes in hex.
///
/// # Errors
/// When the operating system's random source fails.
fn generate_secret() -> Result<String, InitError> {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| InitError::Random(e.to_string()))?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

const COLUMNS: &str = "id, name, scope, domain, grants, roles, created_at, revoked_at, last_used_at";

type KeyRow = (Uuid, String, String, Option<String>, Vec<String>, Vec<String>, DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn from_row(row: KeyRow) -> Result<ApiKey, InitError> {
    let (id, name, scope, domain, grants, roles, created_at, revoked_at, last_used_at) = row;
    let scope = match (scope.as_str(), domain) {
        ("domain", Some(domain)) => KeyScope::Domain {
            domain: DomainName::new(&domain).map_err(InitError::domain_name)?,
            grants: grants.iter().filter_map(|g| Grant::parse(g).ok()).collect(),
        },
        _ => KeyScope::Admin,
    };
    Ok(ApiKey { id, name, scope, roles, created_at, revoked_at, last_used_at })
}

/// Creates a key and returns it with its secret (the only time the secret exists).
///
/// # Errors
/// [`InitError::InvalidKey`] for a bad name, grant set or role; [`InitError::Sql`].
pub async fn create(dbs: &Databases, key: &NewKey) -> Result<(ApiKey, String), InitError> {
    key.check().map_err(InitError::InvalidKey)?;
    prepare_control(dbs, Migrations::embedded()).await?;
    let secret = generate_secret()?;
    let (scope, domain, grants) = match &key.scope {
        KeyScope::Admin => ("admin", None, Vec::new()),
        KeyScope::Domain { domain, grants } => {
            ("domain", Some(domain.as_str().to_string()), grants.iter().map(|g| g.as_str().to_string()).collect())
        }
    };
    let roles: Vec<String> = key.roles.iter().map(|r| r.trim().to_string()).collect();
    let sql = format!(
        "INSERT INTO vnext_control.api_keys (id, name, secret_sha256, scope, domain, grants, roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    let row: KeyRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(key.name.trim())
        .bind(secret_hash(&secret))
        .bind(scope)
        .bind(domain)
        .bind(grants)
        .bind(roles)
        .fetch_one(dbs.control())
        .await
        .map_err(InitError::sql("creating an API key"))?;
    Ok((from_row(row)?, secret))
}

/// Every key, oldest first, revoked ones included.
///
/// # Errors
/// [`InitError::Sql`].
pub async fn list(control: &PgPool) -> Result<Vec<ApiKey>, InitError> {
    let sql = format!("SELECT {COLUMNS} FROM vnext_control.api_keys ORDER BY created_at, id");
    match sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(sql)).fetch_all(control).await {
        Ok(rows) => rows.into_iter().map(from_row).collect(),
        Err(e) if missing_table(&e) => Ok(Vec::new()),
        Err(e) => Err(InitError::sql("listing API keys")(e)),
    }
}

/// Revokes a key. Returns false when no key has this id; revoking twice keeps
/// the first time.
///
/// # Errors
/// [`InitError::Sql`].
pub async fn revoke(control: &PgPool, id: Uuid) -> Result<bool, InitError> {
    let done = sqlx::query("UPDATE vnext_control.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
        .bind(id)
        .execute(control)
        .await;
    match done {
        Ok(r) => Ok(r.rows_affected() == 1),
        Err(e) if missing_table(&e) => Ok(false),
        Err(e) => Err(InitError::sql("revoking an API key")(e)),
    }
}

/// The live (not revoked) key whose secret this is: one look-up on the unique
/// index of the hash. `last_used_at` is refreshed at most once a minute, so a
/// busy key does not write a row per request.
///
/// # Errors
/// The database error (the caller answers 503 or 500).
pub async fn authenticate(control: &PgPool, secret: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM vnext_control.api_keys WHERE secret_sha256 = $1 AND revoked_at IS NULL");
    let row: Option<KeyRow> = match sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(secret_hash(secret)).fetch_optional(control).await {
        Ok(row) => row,
        Err(e) if missing_table(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(row) = row else { return Ok(None) };
    let key = from_row(row).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    if key.last_used_at.is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60)) {
        let control = control.clone();
        let id = key.id;
        tokio::spawn(async move {
            let _ = sqlx::query("UPDATE vnext_control.api_keys SET last_used_at = now() WHERE id = $1").bind(id).execute(&control).await;
        });
    }
    Ok(Some(key))
}

/// Whether any key is live. A control database without the keys table has none.
///
/// # Errors
/// The database error.
pub async fn any_live(control: &PgPool) -> Result<bool, sqlx::Error> {
    match sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM vnext_control.api_keys WHERE revoked_at IS NULL)").fetch_one(control).await {
        Ok(any) => Ok(any),
        Err(e) if missing_table(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn missing_table(e: &sqlx::Error) -> bool {
    // 42P01 undefined_table, 3F000 invalid_schema_name: never migrated, so no keys.
    matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42P01" | "3F000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a).len(), 64);
        assert!(!secret_hash(&a).contains(&a[KEY_PREFIX.len()..]));
    }

    #[test]
    fn scopes_allow_what_they_name() {
        let d = DomainName::new("payments").unwrap();
        let scope = KeyScope::Domain { domain: d, grants: [Grant::Read].into() };
        assert!(scope.allows("payments", Grant::Read));
        assert!(!scope.allows("payments", Grant::Write));
        assert!(!scope.allows("orders", Grant::Read));
        assert!(KeyScope::Admin.allows("anything", Grant::Publish));
        assert_eq!(Grant::parse(" write").unwrap(), Grant::Write);
        assert!(Grant::parse("delete").unwrap_err().contains("delete"));
    }
}
