//! The instance row: its one column list, its status codes, how it is built
//! for a new instance and for the write of an existing one, and how it reads
//! as the snapshot the engine and the API answer with.
//!
//! A new column is a field of [`InstanceRow`] (with its value in
//! [`InstanceRow::new`] and [`InstanceRow::written`] when a write sets it) and a
//! name in [`COLUMNS`] and the write statement (`records::statement`).

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::version::INITIAL_DATA_VERSION;

/// Every column of `instances`, in [`InstanceRow`] order; every read of an
/// instance selects these.
pub const COLUMNS: &str = "id, key, flow_version, status::text AS status, current_state, data, data_version, \
    data_version_no, etag, tags, has_incident, created_at, modified_at, completed_at, \
    lease_token, lease_until, lease_transition, lease_job_id, parked_on, parent_flow, parent_instance_id, \
    parent_correlation_id, lease_request, lease_step";

/// A stored code that names nothing this version knows: the row was written by
/// something else, so guessing a meaning would hide the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{code}`")]
pub struct UnknownCode {
    pub what: &'static str,
    pub code: String,
}

impl UnknownCode {
    pub fn new(what: &'static str, code: &str) -> UnknownCode {
        UnknownCode { what, code: code.chars().flat_map(char::escape_debug).collect() }
    }
}

/// An instance named by id or by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceRef {
    Id(Uuid),
    Key(String),
}

impl InstanceRef {
    /// A UUID names an instance by id; anything else is its key.
    pub fn parse(s: &str) -> InstanceRef {
        match Uuid::parse_str(s) {
            Ok(id) => InstanceRef::Id(id),
            Err(_) => InstanceRef::Key(s.to_string()),
        }
    }
}

impl std::fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstanceRef::Id(id) => write!(f, "{id}"),
            InstanceRef::Key(k) => f.write_str(k),
        }
    }
}

/// Instance status, with vNext's one-letter codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum InstanceStatus {
    Active,
    Busy,
    Completed,
    Faulted,
    Passive,
}

impl InstanceStatus {
    pub fn code(self) -> char {
        match self {
            InstanceStatus::Active => 'A',
            InstanceStatus::Busy => 'B',
            InstanceStatus::Completed => 'C',
            InstanceStatus::Faulted => 'F',
            InstanceStatus::Passive => 'P',
        }
    }

    /// The status of a stored code: exactly one of the five letters.
    ///
    /// # Errors
    /// [`UnknownCode`] for anything else.
    pub fn parse(code: &str) -> Result<InstanceStatus, UnknownCode> {
        Ok(match code {
            "A" => InstanceStatus::Active,
            "B" => InstanceStatus::Busy,
            "C" => InstanceStatus::Completed,
            "F" => InstanceStatus::Faulted,
            "P" => InstanceStatus::Passive,
            _ => return Err(UnknownCode::new("instance status", code)),
        })
    }

    /// Completed and faulted instances take no transitions (retry aside).
    pub fn is_finished(self) -> bool {
        matches!(self, InstanceStatus::Completed | InstanceStatus::Faulted)
    }
}

impl TryFrom<String> for InstanceStatus {
    type Error = UnknownCode;

    fn try_from(code: String) -> Result<Self, UnknownCode> {
        InstanceStatus::parse(&code)
    }
}

/// An instance as the engine answers and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSnapshot {
    pub id: Uuid,
    pub key: Option<String>,
    pub domain: String,
    pub flow: String,
    pub flow_version: String,
    pub status: InstanceStatus,
    pub current_state: String,
    pub data: Value,
    pub data_version: String,
    pub data_version_no: i64,
    pub etag: String,
    pub tags: Vec<String>,
    pub has_incident: bool,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// A subflow child (it has a parent instance).
    pub is_subflow: bool,
}

/// Where a subflow child reports back: its parent and the correlation row (in
/// the parent's schema) that links them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLink {
    pub flow: String,
    pub instance_id: Uuid,
    pub correlation_id: Uuid,
}

/// A lease: the instance is busy while a transition runs external I/O.
#[derive(Debug, Clone)]
pub struct Lease {
    pub token: Uuid,
    pub until: DateTime<Utc>,
    pub transition: String,
    /// The job that started the transition; lease recovery re-runs it.
    pub job_id: Option<Uuid>,
    /// What the run holding the lease re-runs after a crash (a stored
    /// `JobBody`: first hop, body, redacted headers and query, attempt);
    /// `None` for a lease a job holds without running yet.
    pub request: Option<Value>,
    /// The step whose external I/O is in flight (`engine::lost::LeaseStep`).
    pub step: Option<Value>,
}

/// An instance row as stored, and as a write leaves it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: Uuid,
    pub key: Option<String>,
    pub flow_version: String,
    #[sqlx(try_from = "String")]
    pub status: InstanceStatus,
    pub current_state: String,
    pub data: Value,
    pub data_version: String,
    pub data_version_no: i64,
    pub etag: String,
    pub tags: Vec<String>,
    pub has_incident: bool,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub lease_token: Option<Uuid>,
    pub lease_until: Option<DateTime<Utc>>,
    pub lease_transition: Option<String>,
    pub lease_job_id: Option<Uuid>,
    /// The open correlation a parent parked on a SubFlow state waits for.
    pub parked_on: Option<Uuid>,
    /// A subflow child's parent (workflow, instance, correlation).
    pub parent_flow: Option<String>,
    pub parent_instance_id: Option<Uuid>,
    pub parent_correlation_id: Option<Uuid>,
    /// The lease's request and step in flight (see [`Lease`]).
    pub lease_request: Option<Value>,
    pub lease_step: Option<Value>,
}

/// What a new instance starts from.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub flow_version: String,
    /// Where its start transition leaves from.
    pub start_state: String,
    pub key: Option<String>,
    pub tags: Vec<String>,
    /// Set for a subflow child.
    pub parent: Option<ParentLink>,
    pub now: DateTime<Utc>,
}

/// What a write sets on an instance; the rest of its row stays as loaded.
#[derive(Debug, Clone)]
pub struct RowChange {
    pub status: InstanceStatus,
    pub current_state: String,
    pub data: Value,
    pub data_version: String,
    pub data_version_no: i64,
    pub has_incident: bool,
    pub completed_at: Option<DateTime<Utc>>,
    /// The lease the instance is left under (busy), or none.
    pub lease: Option<Lease>,
    /// The correlation a parent is left parked on, or none.
    pub parked_on: Option<Uuid>,
}

fn new_etag() -> String {
    Uuid::new_v4().simple().to_string()
}

/// `t` as PostgreSQL stores it (`timestamptz` keeps microseconds), so an
/// answer built from a row before it is written shows the times a read shows.
fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

impl InstanceRow {
    /// A new instance, active in front of its start transition, with empty data
    /// at the initial data version. Not stored yet.
    pub fn new(n: NewInstance) -> InstanceRow {
        let (parent_flow, parent_instance_id, parent_correlation_id) = match n.parent {
            Some(p) => (Some(p.flow), Some(p.instance_id), Some(p.correlation_id)),
            None => (None, None, None),
        };
        InstanceRow {
            id: Uuid::now_v7(),
            key: n.key,
            flow_version: n.flow_version,
            status: InstanceStatus::Active,
            current_state: n.start_state,
            data: json!({}),
            data_version: INITIAL_DATA_VERSION.to_string(),
            data_version_no: 0,
            etag: new_etag(),
            tags: n.tags,
            has_incident: false,
            created_at: stored(n.now),
            modified_at: stored(n.now),
            completed_at: None,
            lease_token: None,
            lease_until: None,
            lease_transition: None,
            lease_job_id: None,
            parked_on: None,
            parent_flow,
            parent_instance_id,
            parent_correlation_id,
            lease_request: None,
            lease_step: None,
        }
    }

    /// The row a write of this instance leaves: `change` applied, a new ETag,
    /// modified `now`. Identity, version, key, tags and parent stay.
    pub fn written(&self, change: RowChange, now: DateTime<Utc>) -> InstanceRow {
        let lease = change.lease;
        InstanceRow {
            id: self.id,
            key: self.key.clone(),
            flow_version: self.flow_version.clone(),
            status: change.status,
            current_state: change.current_state,
            data: change.data,
            data_version: change.data_version,
            data_version_no: change.data_version_no,
            etag: new_etag(),
            tags: self.tags.clone(),
            has_incident: change.has_incident,
            created_at: self.created_at,
            modified_at: stored(now),
            completed_at: change.completed_at.map(stored),
            lease_token: lease.as_ref().map(|l| l.token),
            lease_until: lease.as_ref().map(|l| l.until),
            lease_job_id: lease.as_ref().and_then(|l| l.job_id),
            lease_request: lease.as_ref().and_then(|l| l.request.clone()),
            lease_step: lease.as_ref().and_then(|l| l.step.clone()),
            lease_transition: lease.map(|l| l.transition),
            parked_on: change.parked_on,
            parent_flow: self.parent_flow.clone(),
            parent_instance_id: self.parent_instance_id,
            parent_correlation_id: self.parent_correlation_id,
        }
    }

    /// This (new) row busy under `lease`, as an async start or a start that
    /// reaches external I/O first writes it.
    pub fn leased(mut self, lease: &Lease, now: DateTime<Utc>) -> InstanceRow {
        self.status = InstanceStatus::Busy;
        self.lease_token = Some(lease.token);
        self.lease_until = Some(lease.until);
        self.lease_transition = Some(lease.transition.clone());
        self.lease_job_id = lease.job_id;
        self.lease_request = lease.request.clone();
        self.lease_step = lease.step.clone();
        self.modified_at = stored(now);
        self
    }

    pub fn status(&self) -> InstanceStatus {
        self.status
    }

    /// Parked on a subflow: busy for the child's lifetime, with no lease (a
    /// parked parent resuming under a lease is busy like any leased instance).
    pub fn parked(&self) -> bool {
        self.parked_on.is_some() && self.lease_token.is_none()
    }

    /// The parent of a subflow child.
    pub fn parent(&self) -> Option<ParentLink> {
        Some(ParentLink {
            flow: self.parent_flow.clone()?,
            instance_id: self.parent_instance_id?,
            correlation_id: self.parent_correlation_id?,
        })
    }

    /// The instance as the engine answers and the API shows it.
    pub fn into_snapshot(self, domain: &DomainName, flow: &FlowKey) -> InstanceSnapshot {
        InstanceSnapshot {
            id: self.id,
            key: self.key,
            domain: domain.to_string(),
            flow: flow.to_string(),
            flow_version: self.flow_version,
            status: self.status,
            current_state: self.current_state,
            data: self.data,
            data_version: self.data_version,
            data_version_no: self.data_version_no,
            etag: self.etag,
            tags: self.tags,
            has_incident: self.has_incident,
            created_at: self.created_at,
            modified_at: self.modified_at,
            completed_at: self.completed_at,
            is_subflow: self.parent_instance_id.is_some(),
        }
    }

    /// [`InstanceRow::into_snapshot`] of a row kept.
    pub fn snapshot(&self, domain: &DomainName, flow: &FlowKey) -> InstanceSnapshot {
        self.clone().into_snapshot(domain, flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_decode_strictly() {
        for s in [
            InstanceStatus::Active,
            InstanceStatus::Busy,
            InstanceStatus::Completed,
            InstanceStatus::Faulted,
            InstanceStatus::Passive,
        ] {
            assert_eq!(InstanceStatus::try_from(s.code().to_string()), Ok(s));
        }
        for code in ["X", "", "a", "AB", " A"] {
            let e = InstanceStatus::try_from(code.to_string()).unwrap_err();
            assert_eq!(e.what, "instance status", "{code:?}");
            assert_eq!(e.code, code.escape_debug().to_string(), "{code:?}");
        }
    }

    #[test]
    fn a_write_keeps_identity_and_renews_the_etag() {
        let now = Utc::now();
        let parent = ParentLink { flow: "p".into(), instance_id: Uuid::now_v7(), correlation_id: Uuid::now_v7() };
        let row = InstanceRow::new(NewInstance {
            flow_version: "1.0.0".into(),
            start_state: "s0".into(),
            key: Some("k".into()),
            tags: vec!["t".into()],
            parent: Some(parent.clone()),
            now,
        });
        assert_eq!(row.status, InstanceStatus::Active);
        assert_eq!(row.parent(), Some(parent.clone()));
        let later = now + chrono::Duration::seconds(1);
        let lease = Lease { token: Uuid::new_v4(), until: later, transition: "go".into(), job_id: None, request: None, step: None };
        let next = row.written(
            RowChange {
                status: InstanceStatus::Busy,
                current_state: "s1".into(),
                data: json!({"a": 1}),
                data_version: "1.0.0".into(),
                data_version_no: 1,
                has_incident: false,
                completed_at: None,
                lease: Some(lease.clone()),
                parked_on: None,
            },
            later,
        );
        assert_eq!((next.id, next.key.as_deref(), next.parent()), (row.id, Some("k"), Some(parent)));
        assert_ne!(next.etag, row.etag);
        assert_eq!((next.created_at, next.modified_at), (stored(now), stored(later)));
        // Times carry microseconds at most, as PostgreSQL keeps them.
        assert_eq!(next.modified_at.timestamp_subsec_nanos() % 1000, 0);
        assert_eq!((next.lease_token, next.lease_transition.as_deref()), (Some(lease.token), Some("go")));
        let snap = next.snapshot(&DomainName::new("sales").unwrap(), &FlowKey::new("orders").unwrap());
        assert_eq!((snap.domain.as_str(), snap.flow.as_str(), snap.current_state.as_str()), ("sales", "orders", "s1"));
    }
}
