//! The durable job queue, `sys_queues.jobs`: the one definition both the app
//! and the job scheduler use. Every statement on the table is here.
//!
//! - [`enqueue`]: jobs are written in the caller's transaction, so a state
//!   change and the jobs it schedules commit together (or not at all). Each
//!   enqueue also sends `NOTIFY vnext_jobs, '<kind>'`; PostgreSQL delivers it
//!   only when the transaction commits, which wakes schedulers without polling.
//!   Also: cancelling an instance's jobs, and lease recovery's insert.
//! - [`claim`]: the scheduler's batch claim (due jobs and expired claims, with
//!   the next due time in the same statement), and the app's in-process claims
//!   of one job by id or of the next due job of a kind.
//! - [`settle`]: recording how fired jobs ended (many per statement), giving
//!   claims back, purging finished jobs; and what the app does to jobs inside
//!   a transition's own transaction (marking the job it runs done, cancelling
//!   a job that has not started).
//! - [`body`]: [`JobBody`], what the app stores in `jobs.body` to run a job's
//!   transition later, with [`First`], the hop a job (or a retry) starts with.
//!
//! A job's life: `pending` → `running` (claimed, under a lock that expires) →
//! `done`, `failed` or `cancelled`; a claim given back or a retry makes it
//! `pending` again.
//!
//! Every function takes any executor (a pool or one connection) unless it
//! needs a transaction of the caller's.

pub mod body;
pub mod claim;
pub mod seal;
pub mod settle;
mod write;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use body::{First, JobBody};
pub use seal::Sealer;
pub use claim::{claim, claim_by_id, claim_due, Claim, ClaimedJob};
pub use settle::{
    cancel_if_pending, close_held, mark_done, purge_finished, release, settle, settle_inline, Settlement,
};
pub use write::{armed_timers, cancel_for_instance, enqueue, enqueue_lease_recovery, held_job, ArmedJob, ExpiredLease, HeldJob};

/// The channel that wakes job schedulers; the payload is the job kind.
pub const JOBS_CHANNEL: &str = "vnext_jobs";

/// What a job does when it comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A scheduled transition's timer fired.
    Timer,
    /// The workflow timeout elapsed.
    Timeout,
    /// A transition accepted with `sync=false`.
    Async,
    /// A failed task or transition is retried.
    Retry,
    /// A busy instance's lease expired and must be recovered.
    Lease,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [JobKind::Timer, JobKind::Timeout, JobKind::Async, JobKind::Retry, JobKind::Lease];

    /// The value stored in `jobs.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Timer => "timer",
            JobKind::Timeout => "timeout",
            JobKind::Async => "async",
            JobKind::Retry => "retry",
            JobKind::Lease => "lease",
        }
    }

    /// Parses a stored `jobs.kind`.
    pub fn parse(s: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl TryFrom<String> for JobKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        JobKind::parse(&s).ok_or_else(|| format!("unknown job kind `{s}`"))
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job is in its life (`jobs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for its due time.
    Pending,
    /// Claimed by a worker until its lock expires.
    Running,
    /// Fired (or found to have nothing to do).
    Done,
    /// Given up, with the reason in `last_error`.
    Failed,
    /// Withdrawn before it ran.
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] =
        [JobStatus::Pending, JobStatus::Running, JobStatus::Done, JobStatus::Failed, JobStatus::Cancelled];

    /// The value stored in `jobs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored `jobs.status`.
    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: Uuid,
    pub kind: JobKind,
    /// The workflow key (`customer-onboarding`).
    pub flow: String,
    pub instance_id: Uuid,
    /// The transition the job runs when it fires.
    pub transition_key: String,
    /// The state the job was armed in; the job is stale once the instance left it.
    pub armed_state: Option<String>,
    /// What the job's transition needs later; the app writes a [`JobBody`].
    pub body: Option<Value>,
    pub due_at: DateTime<Utc>,
}

impl NewJob {
    /// A job with a fresh id, no armed state and no body.
    pub fn new(
        kind: JobKind,
        flow: impl Into<String>,
        instance_id: Uuid,
        transition_key: impl Into<String>,
        due_at: DateTime<Utc>,
    ) -> NewJob {
        NewJob {
            id: Uuid::now_v7(),
            kind,
            flow: flow.into(),
            instance_id,
            transition_key: transition_key.into(),
            armed_state: None,
            body: None,
            due_at,
        }
    }

    /// The same job under a given id (one chosen before the job is written).
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> NewJob {
        self.id = id;
        self
    }

    /// Stale once the instance left `state`.
    #[must_use]
    pub fn armed_in(mut self, state: impl Into<String>) -> NewJob {
        self.armed_state = Some(state.into());
        self
    }

    #[must_use]
    pub fn with_body(mut self, body: &JobBody) -> NewJob {
        self.body = Some(body.to_value());
        self
    }
}
