//! The audit log's rows: written to a domain's `sys_audit.audit_log` or to the
//! control database's `vnext_control.audit_log`, read back newest first.
//!
//! Both tables have the same columns and are append-only (triggers refuse
//! UPDATE, DELETE and TRUNCATE; see `migrations/system/audit`). What a row
//! holds is fixed by [`AuditRecord`]: who called (label, key id, roles), what
//! (action, method, route template, identifiers of the target), the outcome
//! (status, `ok` or the error code), the trace id and when. Never a body,
//! header or credential: the type has no field that could carry one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use crate::error::InitError;

/// One audited call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// When the call came in.
    pub at: DateTime<Utc>,
    /// `key:<id>`, `jwt:<subject>`, `header:<subject>`, `open`, `anonymous`, `cli`.
    pub caller: String,
    pub key_id: Option<Uuid>,
    pub roles: Vec<String>,
    /// What the call does: `instance.start`, `key.revoke`, ...
    pub action: String,
    pub method: String,
    /// The route template (`/api/v1/{domain}/workflows/{workflow}/instances/start`).
    pub route: String,
    pub domain: Option<String>,
    /// Identifiers of what the call was about (path parameters, the instance
    /// a start created, the component a publish named, the key created).
    pub target: Map<String, Value>,
    pub status: u16,
    /// `ok`, or the answer's error code.
    pub outcome: String,
    pub trace_id: Option<String>,
    pub duration_ms: Option<f64>,
}

impl AuditRecord {
    /// A key management step of `vnext keys` (caller `cli`), with the status
    /// the admin API answers for the same step.
    pub fn cli(action: &str, key_id: Uuid, status: u16, outcome: &str) -> AuditRecord {
        let mut target = Map::new();
        target.insert("keyId".into(), Value::String(key_id.to_string()));
        AuditRecord {
            at: Utc::now(),
            caller: "cli".into(),
            key_id: None,
            roles: Vec::new(),
            action: action.into(),
            method: "CLI".into(),
            route: format!("vnext keys {}", action.trim_start_matches("key.")),
            domain: None,
            target,
            status,
            outcome: outcome.into(),
            trace_id: None,
            duration_ms: None,
        }
    }
}

/// A stored row: the record and its id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub id: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Which audit table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLog {
    /// `sys_audit.audit_log` of a domain database.
    Domain,
    /// `vnext_control.audit_log`.
    Control,
}

impl AuditLog {
    fn table(self) -> &'static str {
        match self {
            AuditLog::Domain => "sys_audit.audit_log",
            AuditLog::Control => "vnext_control.audit_log",
        }
    }
}

/// Writes one row (its own autocommit statement).
///
/// # Errors
/// The database error (a missing table included: the domain was not migrated).
pub async fn record(pool: &PgPool, log: AuditLog, r: &AuditRecord) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO {} (at, caller, key_id, roles, action, method, route, domain, target, status, outcome, trace_id, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        log.table()
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(r.at)
        .bind(&r.caller)
        .bind(r.key_id)
        .bind(&r.roles)
        .bind(&r.action)
        .bind(&r.method)
        .bind(&r.route)
        .bind(&r.domain)
        .bind(sqlx::types::Json(&r.target))
        .bind(i16::try_from(r.status).unwrap_or(i16::MAX))
        .bind(&r.outcome)
        .bind(&r.trace_id)
        .bind(r.duration_ms)
        .execute(pool)
        .await
        .map(|_| ())
}

/// What to read: newest first, before an id, optionally narrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only rows with a smaller id (the previous page's last id).
    pub before: Option<i64>,
    /// At most this many rows.
    pub limit: u32,
    pub action: Option<String>,
    /// Rows whose target names this instance (id or key, as called).
    pub instance: Option<String>,
    pub key_id: Option<Uuid>,
    /// Control log only: rows about this domain.
    pub domain: Option<String>,
}

type Row = (
    i64,
    DateTime<Utc>,
    String,
    Option<Uuid>,
    Vec<String>,
    String,
    String,
    String,
    Option<String>,
    sqlx::types::Json<Map<String, Value>>,
    i16,
    String,
    Option<String>,
    Option<f64>,
);

/// Reads rows newest first.
///
/// # Errors
/// [`InitError::Sql`].
pub async fn list(pool: &PgPool, log: AuditLog, q: &AuditQuery) -> Result<Vec<AuditRow>, InitError> {
    let sql = format!(
        "SELECT id, at, caller, key_id, roles, action, method, route, domain, target, status, outcome, trace_id, duration_ms
           FROM {}
          WHERE ($1::bigint IS NULL OR id < $1)
            AND ($2::text IS NULL OR action = $2)
            AND ($3::text IS NULL OR target->>'instance' = $3 OR target->>'instanceId' = $3)
            AND ($4::uuid IS NULL OR key_id = $4)
            AND ($5::text IS NULL OR domain = $5)
          ORDER BY id DESC
          LIMIT $6",
        log.table()
    );
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(q.before)
        .bind(&q.action)
        .bind(&q.instance)
        .bind(q.key_id)
        .bind(&q.domain)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await
        .map_err(InitError::sql("reading the audit log"))?;
    Ok(rows
        .into_iter()
        .map(|(id, at, caller, key_id, roles, action, method, route, domain, target, status, outcome, trace_id, duration_ms)| AuditRow {
            id,
            record: AuditRecord {
                at,
                caller,
                key_id,
                roles,
                action,
                method,
                route,
                domain,
                target: target.0,
                status: u16::try_from(status).unwrap_or_default(),
                outcome,
                trace_id,
                duration_ms,
            },
        })
        .collect())
}
