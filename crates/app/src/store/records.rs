//! The one write of a request: instance row, transition history, task runs,
//! incidents and outbox events in a single statement.
//!
//! Rows travel as one JSON array per table (serialized straight from the row
//! structs, history rows in the shape the API shows them, see [`super::history`])
//! and are unpacked with `jsonb_to_recordset`, so the statement text
//! is fixed per flow schema (and prepared once per connection) however many
//! hops an auto-chain took.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;
use vnext_core::ident::FlowKey;

use super::history::{TaskRunRow, TransitionRow};
use super::instance_row::InstanceRow;

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

/// An instance event for `sys_queues.outbox`, written with the change it reports.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEvent {
    /// The workflow key.
    pub flow: String,
    /// `instance.state-changed`, `instance.completed`, `instance.canceled`, `instance.faulted`.
    pub event_type: &'static str,
    pub payload: Value,
}

impl OutboxEvent {
    pub fn new(flow: &str, event_type: &'static str, payload: &impl Serialize) -> OutboxEvent {
        OutboxEvent { flow: flow.to_string(), event_type, payload: serde_json::to_value(payload).unwrap_or(Value::Null) }
    }
}

/// Everything a request records besides the instance row.
#[derive(Debug, Default)]
pub struct Records {
    pub transitions: Vec<TransitionRow>,
    pub task_runs: Vec<TaskRunRow>,
    pub incidents: Vec<IncidentRow>,
    pub events: Vec<OutboxEvent>,
    /// Mark the instance's open incidents resolved (a transition succeeded).
    pub resolve_incidents: bool,
}

/// Insert a new instance (skipped when its key exists) or update one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Insert,
    Update,
}

/// Which optional parts a write has. A part without rows is left out of the
/// statement: planning and running an empty `INSERT ... SELECT` still costs,
/// and most transitions write no task runs, incidents or resolutions. Each
/// combination is its own (prepared, cached) statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    task_runs: bool,
    incidents: bool,
    resolve: bool,
    events: bool,
}

impl Parts {
    fn of(rec: &Records) -> Parts {
        Parts {
            task_runs: !rec.task_runs.is_empty(),
            incidents: !rec.incidents.is_empty(),
            resolve: rec.resolve_incidents,
            events: !rec.events.is_empty(),
        }
    }
}

fn statement(flow: &FlowKey, mode: WriteMode, parts: Parts) -> String {
    // Parameters: $1 id, $2 status, $3 current_state, $4 data, $5 data_version,
    // $6 data_version_no, $7 etag, $8 tags, $9 has_incident, $10 completed_at,
    // $11 now, $12 transitions, $13 task runs, $14 incidents, $15 resolve
    // incidents, $16-$19 the lease (token, until, transition, job; NULLs clear
    // it), $20 outbox events, $21 key (set on an update only where none is),
    // $22 parked_on, $23-$24 the lease's request and step; inserts add $25
    // flow_version, $26-$28 the parent link and $29 created_at.
    let s = flow.quoted();
    let head = match mode {
        WriteMode::Insert => format!(
            "WITH i AS (INSERT INTO {s}.instances (id, status, current_state, data, data_version, data_version_no, etag, \
             tags, has_incident, completed_at, created_at, modified_at, key, flow_version, lease_token, lease_until, \
             lease_transition, lease_job_id, parked_on, parent_flow, parent_instance_id, parent_correlation_id, \
             lease_request, lease_step) \
             VALUES ($1, $2::text::\"char\", $3, $4, $5, $6, $7, $8, $9, $10, $29, $11, \
             $21, $25, $16, $17, $18, $19, $22, $26, $27, $28, $23, $24) ON CONFLICT (key) DO NOTHING RETURNING id, key), \
             b AS (SELECT 0::bigint AS s), "
        ),
        WriteMode::Update => format!(
            "WITH i AS (UPDATE {s}.instances SET status = $2::text::\"char\", current_state = $3, data = $4, \
             data_version = $5, data_version_no = $6, etag = $7, tags = $8, has_incident = $9, completed_at = $10, \
             modified_at = $11, lease_token = $16, lease_until = $17, lease_transition = $18, lease_job_id = $19, \
             key = coalesce(key, $21), parked_on = $22, lease_request = $23, lease_step = $24 \
             WHERE id = $1 RETURNING id, key), \
             b AS (SELECT coalesce(max(seq), 0) AS s FROM {s}.transitions WHERE instance_id = $1), "
        ),
    };
    let mut ctes = vec![format!(
        "{head}\
         h AS (INSERT INTO {s}.transitions (id, instance_id, seq, transition_key, from_state, to_state, trigger_type, origin, \
           body, headers, actor, data_version, data_version_no, data, started_at, finished_at, duration_ms) \
           SELECT r.id, i.id, b.s + r.seq, r.transition, r.\"from\", r.\"to\", r.\"triggerType\", r.origin, r.body, \
           r.headers, r.actor, r.\"dataVersion\", r.\"dataVersionNo\", CASE WHEN r.\"finalSnap\" THEN $4 ELSE r.data END, \
           r.\"startedAt\", r.\"finishedAt\", r.\"durationMs\" \
           FROM i, b, jsonb_to_recordset($12) AS r(id uuid, seq bigint, transition text, \"from\" text, \"to\" text, \
           \"triggerType\" smallint, origin text, body jsonb, headers jsonb, actor text, \"dataVersion\" text, \
           \"dataVersionNo\" bigint, data jsonb, \"finalSnap\" boolean, \"startedAt\" timestamptz, \"finishedAt\" timestamptz, \
           \"durationMs\" float8))"
    )];
    if parts.task_runs {
        ctes.push(format!(
            "t AS (INSERT INTO {s}.task_runs (id, instance_id, transition_id, task_key, task_version, task_type, phase, task_order, \
           attempt, status, request, response, error, started_at, finished_at, duration_ms) \
           SELECT r.id, i.id, r.\"transitionId\", r.\"taskKey\", r.\"taskVersion\", r.\"taskType\", r.phase, r.\"order\", \
           r.attempt, r.status, r.request, r.response, r.error, r.\"startedAt\", r.\"finishedAt\", r.\"durationMs\" \
           FROM i, jsonb_to_recordset($13) AS r(id uuid, \"transitionId\" uuid, \"taskKey\" text, \"taskVersion\" text, \
           \"taskType\" text, phase text, \"order\" integer, attempt integer, status text, request jsonb, response jsonb, \
           error jsonb, \"startedAt\" timestamptz, \"finishedAt\" timestamptz, \"durationMs\" float8))"
        ));
    }
    if parts.incidents {
        ctes.push(format!(
            "n AS (INSERT INTO {s}.incidents (id, instance_id, state, transition_key, task_key, error_code, message, status_code, \
           boundary_action, retry_count, request, created_at) \
           SELECT r.id, i.id, r.state, r.transition_key, r.task_key, r.error_code, r.message, r.status_code, r.boundary_action, \
           r.retry_count, r.request, $11 \
           FROM i, jsonb_to_recordset($14) AS r(id uuid, state text, transition_key text, task_key text, error_code text, \
           message text, status_code integer, boundary_action text, retry_count integer, request jsonb))"
        ));
    }
    if parts.resolve {
        ctes.push(format!(
            "v AS (UPDATE {s}.incidents SET resolved = true, resolved_at = $11 \
           WHERE $15 AND instance_id IN (SELECT id FROM i) AND NOT resolved)"
        ));
    }
    if parts.events {
        ctes.push(format!(
            "o AS (INSERT INTO sys_queues.outbox (flow, instance_id, event_type, payload, created_at) \
           SELECT r.flow, i.id, r.event_type, r.payload || jsonb_build_object('key', i.key), $11 \
           FROM i, jsonb_to_recordset($20) AS r(flow text, event_type text, payload jsonb))"
        ));
    }
    format!("{} SELECT count(*) FROM i", ctes.join(", "))
}


/// Writes the instance row as `row` holds it (modified at `row.modified_at`)
/// and its records, in one statement. Returns false when nothing was written:
/// an insert whose key exists, or an update of a missing row.
///
/// # Errors
/// Database errors.
pub async fn apply(conn: &mut PgConnection, flow: &FlowKey, mode: WriteMode, row: &InstanceRow, rec: &Records) -> Result<bool, sqlx::Error> {
    let sql = statement(flow, mode, Parts::of(rec));
    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
        .bind(row.id)
        .bind(row.status.code().to_string())
        .bind(&row.current_state)
        .bind(&row.data)
        .bind(&row.data_version)
        .bind(row.data_version_no)
        .bind(&row.etag)
        .bind(&row.tags)
        .bind(row.has_incident)
        .bind(row.completed_at)
        .bind(row.modified_at)
        .bind(Json(&rec.transitions))
        .bind(Json(&rec.task_runs))
        .bind(Json(&rec.incidents))
        .bind(rec.resolve_incidents)
        .bind(row.lease_token)
        .bind(row.lease_until)
        .bind(row.lease_transition.as_deref())
        .bind(row.lease_job_id)
        .bind(Json(&rec.events))
        .bind(row.key.as_deref())
        .bind(row.parked_on)
        .bind(row.lease_request.as_ref())
        .bind(row.lease_step.as_ref());
    if mode == WriteMode::Insert {
        q = q
            .bind(&row.flow_version)
            .bind(row.parent_flow.as_deref())
            .bind(row.parent_instance_id)
            .bind(row.parent_correlation_id)
            .bind(row.created_at);
    }
    let n = q.fetch_one(conn).await?;
    Ok(n > 0)
}
