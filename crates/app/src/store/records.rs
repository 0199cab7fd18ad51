//! The one write of a request: instance row, transition history, task runs
//! and incidents in a single statement.
//!
//! Rows travel as one JSON array per table and are unpacked with
//! `jsonb_to_recordset`, so the statement text is fixed per flow schema (and
//! prepared once per connection) however many hops an auto-chain took.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;
use vnext_core::ident::FlowKey;

use super::instances::Lease;
use crate::engine::InstanceStatus;

/// One hop of the transition history.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionRow {
    pub id: Uuid,
    /// Position in this request (1, 2, ...); `seq` continues the instance's history.
    pub n: i64,
    pub transition_key: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub trigger_type: i16,
    /// api, auto, timer, timeout, async, retry, lease.
    pub origin: String,
    pub body: Option<Value>,
    pub headers: Option<Value>,
    pub actor: Option<String>,
    /// Set when the hop changed data (with `data`).
    pub data_version: Option<String>,
    pub data_version_no: Option<i64>,
    /// The data after the hop, when it changed and the hop is not the last.
    pub data: Option<Value>,
    /// The data after the hop equals the instance's final data: not sent twice.
    pub final_snap: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
}

/// One task attempt.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRunRow {
    pub id: Uuid,
    pub transition_id: Option<Uuid>,
    pub task_key: String,
    pub task_version: String,
    pub task_type: String,
    /// execution, exit or entry.
    pub phase: String,
    pub task_order: i32,
    pub attempt: i32,
    /// succeeded or failed.
    pub status: String,
    pub request: Option<Value>,
    pub response: Option<Value>,
    pub error: Option<Value>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
}

/// A failure that stopped the instance.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub id: Uuid,
    pub state: Option<String>,
    pub transition_key: Option<String>,
    pub task_key: Option<String>,
    pub error_code: String,
    pub message: String,
    pub status_code: Option<i32>,
    pub boundary_action: Option<String>,
    pub retry_count: i32,
    /// What a retry re-runs.
    pub request: Option<Value>,
}

/// Everything a request records besides the instance row.
#[derive(Debug, Default)]
pub struct Records {
    pub transitions: Vec<TransitionRow>,
    pub task_runs: Vec<TaskRunRow>,
    pub incidents: Vec<IncidentRow>,
    /// Mark the instance's open incidents resolved (a transition succeeded).
    pub resolve_incidents: bool,
}

/// The instance row as a request leaves it.
#[derive(Debug)]
pub struct InstanceWrite<'a> {
    pub id: Uuid,
    pub key: Option<&'a str>,
    pub flow_version: &'a str,
    pub status: InstanceStatus,
    pub current_state: &'a str,
    pub data: &'a Value,
    pub data_version: &'a str,
    pub data_version_no: i64,
    pub etag: &'a str,
    pub tags: &'a [String],
    pub has_incident: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The lease the instance is left under (busy), or none.
    pub lease: Option<&'a Lease>,
}

/// Insert a new instance (skipped when its key exists) or update one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Insert,
    Update,
}

fn statement(flow: &FlowKey, mode: WriteMode) -> String {
    // Parameters: $1 id, $2 status, $3 current_state, $4 data, $5 data_version,
    // $6 data_version_no, $7 etag, $8 tags, $9 has_incident, $10 completed_at,
    // $11 now, $12 transitions, $13 task runs, $14 incidents, $15 resolve
    // incidents, $16-$19 the lease (token, until, transition, job; NULLs clear
    // it); inserts add $20 key and $21 flow_version.
    let s = flow.quoted();
    let head = match mode {
        WriteMode::Insert => format!(
            "WITH i AS (INSERT INTO {s}.instances (id, status, current_state, data, data_version, data_version_no, etag, \
             tags, has_incident, completed_at, created_at, modified_at, key, flow_version, lease_token, lease_until, \
             lease_transition, lease_job_id) VALUES ($1, $2::text::\"char\", $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, \
             $20, $21, $16, $17, $18, $19) ON CONFLICT (key) DO NOTHING RETURNING id), \
             b AS (SELECT 0::bigint AS s), "
        ),
        WriteMode::Update => format!(
            "WITH i AS (UPDATE {s}.instances SET status = $2::text::\"char\", current_state = $3, data = $4, \
             data_version = $5, data_version_no = $6, etag = $7, tags = $8, has_incident = $9, completed_at = $10, \
             modified_at = $11, lease_token = $16, lease_until = $17, lease_transition = $18, lease_job_id = $19 \
             WHERE id = $1 RETURNING id), \
             b AS (SELECT coalesce(max(seq), 0) AS s FROM {s}.transitions WHERE instance_id = $1), "
        ),
    };
    format!(
        "{head}\
         h AS (INSERT INTO {s}.transitions (id, instance_id, seq, transition_key, from_state, to_state, trigger_type, origin, \
           body, headers, actor, data_version, data_version_no, data, started_at, finished_at, duration_ms) \
           SELECT r.id, i.id, b.s + r.n, r.transition_key, r.from_state, r.to_state, r.trigger_type, r.origin, r.body, \
           r.headers, r.actor, r.data_version, r.data_version_no, CASE WHEN r.final_snap THEN $4 ELSE r.data END, \
           r.started_at, r.finished_at, r.duration_ms \
           FROM i, b, jsonb_to_recordset($12) AS r(id uuid, n bigint, transition_key text, from_state text, to_state text, \
           trigger_type smallint, origin text, body jsonb, headers jsonb, actor text, data_version text, data_version_no bigint, \
           data jsonb, final_snap boolean, started_at timestamptz, finished_at timestamptz, duration_ms float8)), \
         t AS (INSERT INTO {s}.task_runs (id, instance_id, transition_id, task_key, task_version, task_type, phase, task_order, \
           attempt, status, request, response, error, started_at, finished_at, duration_ms) \
           SELECT r.id, i.id, r.transition_id, r.task_key, r.task_version, r.task_type, r.phase, r.task_order, r.attempt, \
           r.status, r.request, r.response, r.error, r.started_at, r.finished_at, r.duration_ms \
           FROM i, jsonb_to_recordset($13) AS r(id uuid, transition_id uuid, task_key text, task_version text, task_type text, \
           phase text, task_order integer, attempt integer, status text, request jsonb, response jsonb, error jsonb, \
           started_at timestamptz, finished_at timestamptz, duration_ms float8)), \
         n AS (INSERT INTO {s}.incidents (id, instance_id, state, transition_key, task_key, error_code, message, status_code, \
           boundary_action, retry_count, request, created_at) \
           SELECT r.id, i.id, r.state, r.transition_key, r.task_key, r.error_code, r.message, r.status_code, r.boundary_action, \
           r.retry_count, r.request, $11 \
           FROM i, jsonb_to_recordset($14) AS r(id uuid, state text, transition_key text, task_key text, error_code text, \
           message text, status_code integer, boundary_action text, retry_count integer, request jsonb)), \
         v AS (UPDATE {s}.incidents SET resolved = true, resolved_at = $11 \
           WHERE $15 AND instance_id IN (SELECT id FROM i) AND NOT resolved) \
         SELECT count(*) FROM i"
    )
}

fn rows<T: Serialize>(rows: &[T]) -> Value {
    serde_json::to_value(rows).unwrap_or_else(|_| Value::Array(Vec::new()))
}

/// Writes the instance and its records in one statement. Returns false when
/// nothing was written: an insert whose key exists, or an update of a missing row.
///
/// # Errors
/// Database errors.
pub async fn apply(conn: &mut PgConnection, flow: &FlowKey, mode: WriteMode, w: &InstanceWrite<'_>, rec: &Records) -> Result<bool, sqlx::Error> {
    let sql = statement(flow, mode);
    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
        .bind(w.id)
        .bind(w.status.code().to_string())
        .bind(w.current_state)
        .bind(w.data)
        .bind(w.data_version)
        .bind(w.data_version_no)
        .bind(w.etag)
        .bind(w.tags)
        .bind(w.has_incident)
        .bind(w.completed_at)
        .bind(w.now)
        .bind(rows(&rec.transitions))
        .bind(rows(&rec.task_runs))
        .bind(rows(&rec.incidents))
        .bind(rec.resolve_incidents)
        .bind(w.lease.map(|l| l.token))
        .bind(w.lease.map(|l| l.until))
        .bind(w.lease.map(|l| l.transition.as_str()))
        .bind(w.lease.and_then(|l| l.job_id));
    if mode == WriteMode::Insert {
        q = q.bind(w.key).bind(w.flow_version);
    }
    let n = q.fetch_one(conn).await?;
    Ok(n > 0)
}
