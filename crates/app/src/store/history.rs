//! An instance's history rows: the transitions it took and the task attempts
//! they ran, one shape for the write that records them and the read that shows
//! them.
//!
//! A row serializes as the history answer shows it (camelCase); the write
//! statement unpacks the same JSON, so write-only members (`headers`, `data`,
//! ...) are left out whenever they are empty, which they always are on a read.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;
use vnext_core::machine::Phase;

use super::instance_row::UnknownCode;

/// The columns of a [`TransitionRow`] a read selects.
pub const TRANSITION_COLUMNS: &str = "id, seq, transition_key, from_state, to_state, trigger_type, origin, body, actor, \
    data_version, started_at, finished_at, duration_ms";

/// The columns of a [`TaskRunRow`].
pub const TASK_RUN_COLUMNS: &str = "id, transition_id, task_key, task_version, task_type, phase, task_order, attempt, \
    status, request, response, error, started_at, finished_at, duration_ms";

/// Where a hop came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A client's request.
    Api,
    /// An automatic transition chained after another hop.
    Auto,
    /// The transition an error boundary named, run instead of a failed hop.
    Boundary,
    Timer,
    Timeout,
    /// An async request, run by its job.
    Async,
    Retry,
    /// Lease recovery re-running a job whose lease expired.
    Lease,
    /// A subflow child started or resumed by its parent's run.
    Subflow,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Auto => "auto",
            Origin::Boundary => "boundary",
            Origin::Timer => "timer",
            Origin::Timeout => "timeout",
            Origin::Async => "async",
            Origin::Retry => "retry",
            Origin::Lease => "lease",
            Origin::Subflow => "subflow",
        }
    }
}

impl TryFrom<String> for Origin {
    type Error = UnknownCode;

    fn try_from(code: String) -> Result<Self, UnknownCode> {
        Ok(match code.as_str() {
            "api" => Origin::Api,
            "auto" => Origin::Auto,
            "boundary" => Origin::Boundary,
            "timer" => Origin::Timer,
            "timeout" => Origin::Timeout,
            "async" => Origin::Async,
            "retry" => Origin::Retry,
            "lease" => Origin::Lease,
            "subflow" => Origin::Subflow,
            _ => return Err(UnknownCode::new("transition origin", &code)),
        })
    }
}

/// How a task attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskRunStatus {
    Succeeded,
    Failed,
}

impl TryFrom<String> for TaskRunStatus {
    type Error = UnknownCode;

    fn try_from(code: String) -> Result<Self, UnknownCode> {
        match code.as_str() {
            "succeeded" => Ok(TaskRunStatus::Succeeded),
            "failed" => Ok(TaskRunStatus::Failed),
            _ => Err(UnknownCode::new("task run status", &code)),
        }
    }
}

/// A task phase as stored: the text of [`Phase::as_str`].
#[derive(Debug, sqlx::Type)]
#[sqlx(transparent)]
pub struct PhaseText(String);

impl TryFrom<PhaseText> for Phase {
    type Error = UnknownCode;

    fn try_from(PhaseText(code): PhaseText) -> Result<Self, UnknownCode> {
        [Phase::Execution, Phase::Exit, Phase::Entry]
            .into_iter()
            .find(|p| p.as_str() == code)
            .ok_or_else(|| UnknownCode::new("task phase", &code))
    }
}

fn phase_text<S: Serializer>(phase: &Phase, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(phase.as_str())
}

/// One hop of the transition history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TransitionRow {
    pub id: Uuid,
    /// Position in the instance's history. A write numbers its hops from 1 and
    /// the statement continues after the instance's last one.
    pub seq: i64,
    #[serde(rename = "transition")]
    pub transition_key: String,
    #[serde(rename = "from")]
    pub from_state: Option<String>,
    #[serde(rename = "to")]
    pub to_state: String,
    pub trigger_type: i16,
    #[sqlx(try_from = "String")]
    pub origin: Origin,
    pub body: Option<Value>,
    /// Written only; not part of the history answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub headers: Option<Value>,
    pub actor: Option<String>,
    /// Set when the hop changed data (with `data`).
    pub data_version: Option<String>,
    /// Written only, like `data` and `final_snap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub data_version_no: Option<i64>,
    /// The data after the hop, when it changed and the hop is not the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub data: Option<Value>,
    /// The data after the hop equals the instance's final data: not sent twice.
    #[serde(skip_serializing_if = "is_false")]
    #[sqlx(default)]
    pub final_snap: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One task attempt.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunRow {
    pub id: Uuid,
    /// The hop that ran it. The history answer nests a run under its
    /// transition and drops the link (see `query::history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition_id: Option<Uuid>,
    pub task_key: String,
    pub task_version: String,
    pub task_type: String,
    #[serde(serialize_with = "phase_text")]
    #[schema(value_type = String)]
    #[sqlx(try_from = "PhaseText")]
    pub phase: Phase,
    #[serde(rename = "order")]
    pub task_order: i32,
    pub attempt: i32,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: TaskRunStatus,
    pub request: Option<Value>,
    pub response: Option<Value>,
    pub error: Option<Value>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decode_strictly() {
        for o in [
            Origin::Api,
            Origin::Auto,
            Origin::Boundary,
            Origin::Timer,
            Origin::Timeout,
            Origin::Async,
            Origin::Retry,
            Origin::Lease,
            Origin::Subflow,
        ] {
            assert_eq!(Origin::try_from(o.as_str().to_string()), Ok(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert_eq!(Origin::try_from("API".to_string()).unwrap_err().what, "transition origin");
        assert_eq!(TaskRunStatus::try_from("failed".to_string()), Ok(TaskRunStatus::Failed));
        assert!(TaskRunStatus::try_from("ok".to_string()).is_err());
        for p in [Phase::Execution, Phase::Exit, Phase::Entry] {
            assert_eq!(Phase::try_from(PhaseText(p.as_str().to_string())), Ok(p));
        }
        assert_eq!(Phase::try_from(PhaseText("during".into())).unwrap_err().what, "task phase");
    }

    #[test]
    fn write_only_members_stay_out_of_the_answer() {
        let t0 = Utc::now();
        let mut row = TransitionRow {
            id: Uuid::nil(),
            seq: 3,
            transition_key: "go".into(),
            from_state: Some("a".into()),
            to_state: "b".into(),
            trigger_type: 0,
            origin: Origin::Auto,
            body: None,
            headers: None,
            actor: Some("system".into()),
            data_version: None,
            data_version_no: None,
            data: None,
            final_snap: false,
            started_at: t0,
            finished_at: t0,
            duration_ms: 1.0,
        };
        let shown = serde_json::to_value(&row).unwrap();
        let mut keys: Vec<&str> = shown.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "id", "seq", "transition", "from", "to", "triggerType", "origin", "body", "actor", "dataVersion", "startedAt",
            "finishedAt", "durationMs",
        ];
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(shown["origin"], "auto");
        row.final_snap = true;
        row.data_version_no = Some(1);
        let written = serde_json::to_value(&row).unwrap();
        assert_eq!((written["finalSnap"].as_bool(), written["dataVersionNo"].as_i64()), (Some(true), Some(1)));
    }
}
