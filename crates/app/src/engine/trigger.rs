//! The transition trigger the job scheduler calls: timers, the workflow
//! timeout, async requests, retries and lease recovery.
//!
//! The job is marked done in the transaction that commits the transition, so a
//! job fires its effects at most once; a job already done (or not running)
//! answers [`TriggerOutcome::Stale`].

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine::Caller;
use vnext_core::traits::{TriggerError, TriggerOrigin, TriggerOutcome, TriggerRequest};
use vnext_init::queue::{self, JobBody};

use super::context::RequestData;
use super::recover::Recovery;
use super::writes::PARENT_ENDED;
use super::run::{First, JobRun, Origin, Run, Scope};
use super::{Engine, EngineError, InstanceRef, InstanceStatus};
use crate::store::{self, LockError};

fn fatal(message: String) -> TriggerError {
    TriggerError { message, retryable: false }
}

fn retryable(e: impl std::fmt::Display) -> TriggerError {
    TriggerError { message: e.to_string(), retryable: true }
}

/// Ends the transaction now: a dropped one releases its row lock only when
/// its connection is next touched, which would make the next caller busy.
async fn rollback(tx: sqlx::Transaction<'static, sqlx::Postgres>, outcome: TriggerOutcome) -> Result<TriggerOutcome, TriggerError> {
    tx.rollback().await.map_err(retryable)?;
    Ok(outcome)
}

/// The instance as the trigger found it, as far as deciding goes.
#[derive(Debug, Clone)]
struct Found<'a> {
    status: InstanceStatus,
    state: &'a str,
    /// Parked on a subflow (no lease).
    parked: bool,
    parked_on: Option<Uuid>,
    lease_token: Option<Uuid>,
    lease_until: Option<DateTime<Utc>>,
    lease_job_id: Option<Uuid>,
}

impl<'a> Found<'a> {
    fn of(row: &'a store::InstanceRow) -> Found<'a> {
        Found {
            status: row.status(),
            state: &row.current_state,
            parked: row.parked(),
            parked_on: row.parked_on,
            lease_token: row.lease_token,
            lease_until: row.lease_until,
            lease_job_id: row.lease_job_id,
        }
    }
}

/// What a fired job does with its instance, decided without I/O.
#[derive(Debug)]
enum Decision {
    /// Nothing to do: the job closes.
    Stale,
    /// The instance is held by something else: try again later.
    Busy,
    /// Run `first` as `origin`, with the job's request, at attempt `attempt`.
    Run { origin: Origin, first: First, req: Box<RequestData>, attempt: u32 },
    /// Lease recovery (see `recover`): `held` is the job the lease names.
    Recover { held: Option<Uuid> },
}

fn decide(req: &TriggerRequest, body: &JobBody, found: &Found<'_>, now: DateTime<Utc>) -> Decision {
    let busy = found.status == InstanceStatus::Busy;
    let owned_by_job = busy && found.lease_job_id == Some(req.job_id);
    let run = |origin, first| Decision::Run { origin, first, req: Box::default(), attempt: 1 };
    match req.origin {
        TriggerOrigin::Timer => {
            if found.status.is_finished() || req.armed_state.as_deref().is_some_and(|s| s != found.state) {
                Decision::Stale
            } else if busy {
                Decision::Busy
            } else {
                run(Origin::Timer, First::Named { key: req.transition.clone(), caller: Caller::System })
            }
        }
        TriggerOrigin::Timeout => {
            if found.status.is_finished() {
                Decision::Stale
            // Like cancel and exit, the workflow timeout is not held up by
            // a parent parked on a subflow.
            } else if busy && !found.parked {
                Decision::Busy
            } else {
                run(Origin::Timeout, First::Timeout)
            }
        }
        TriggerOrigin::Async | TriggerOrigin::Retry => {
            if found.status.is_finished() {
                return Decision::Stale;
            }
            let first = body.first_or(&req.transition);
            if let First::Resume { correlation } = first {
                // A parent resumes only while it still waits for this child.
                if found.parked_on != Some(correlation) {
                    return Decision::Stale;
                }
                if !found.parked && !owned_by_job {
                    return Decision::Busy;
                }
            } else if busy && !owned_by_job && !(found.parked && body.origin() == Some(PARENT_ENDED)) {
                // A child parked on its own child takes its parent's cascade
                // cancel, as it takes a client's cancel.
                return Decision::Busy;
            }
            let origin = if req.origin == TriggerOrigin::Async { Origin::Async } else { Origin::Retry };
            Decision::Run { origin, first, req: Box::new(RequestData::from_job(body)), attempt: body.attempt() }
        }
        TriggerOrigin::Lease => {
            let expired = busy && found.lease_until.is_some_and(|u| u <= now);
            // A recovery job names the lease it was made for; a newer lease is not its business.
            let same_lease = body.lease_token().is_none_or(|t| Some(t) == found.lease_token);
            if expired && same_lease { Decision::Recover { held: found.lease_job_id } } else { Decision::Stale }
        }
    }
}

/// The `kind` label of a job's run.
fn origin_name(origin: TriggerOrigin) -> &'static str {
    match origin {
        TriggerOrigin::Timer => "timer",
        TriggerOrigin::Timeout => "timeout",
        TriggerOrigin::Async => "async",
        TriggerOrigin::Retry => "retry-job",
        TriggerOrigin::Lease => "lease",
    }
}

impl Engine {
    pub(crate) async fn do_trigger(&self, req: TriggerRequest) -> Result<TriggerOutcome, TriggerError> {
        let domain = DomainName::new(&req.domain).map_err(|e| fatal(format!("job {}: domain: {e}", req.job_id)))?;
        let flow = FlowKey::new(&req.flow).map_err(|e| fatal(format!("job {}: workflow: {e}", req.job_id)))?;
        let pool = self.pool(&domain).await.map_err(|e| match e {
            EngineError::UnknownDomain(_) => fatal(e.to_string()),
            other => retryable(other),
        })?;
        let mut tx = vnext_init::db::begin(&pool).await.map_err(retryable)?;
        let row = match store::instances::lock(&mut tx, &flow, &InstanceRef::Id(req.instance_id)).await {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(TriggerOutcome::Stale),
            Err(LockError::Busy) => return Ok(TriggerOutcome::Busy),
            Err(LockError::Db(e)) if store::is_missing_schema(&e) => return Ok(TriggerOutcome::Stale),
            Err(LockError::Db(e)) => return Err(retryable(e)),
        };
        if !queue::mark_done(&mut tx, req.job_id).await.map_err(retryable)? {
            return rollback(tx, TriggerOutcome::Stale).await;
        }
        let stale = |tx: sqlx::Transaction<'static, sqlx::Postgres>| async move {
            tx.commit().await.map_err(retryable)?;
            Ok(TriggerOutcome::Stale)
        };
        // The request's headers and query travel sealed; open them for the run.
        let body = JobBody::from_value(&req.body).opened(&self.inner.settings.sealer);
        let decision = decide(&req, &body, &Found::of(&row), self.inner.clock.now());
        match decision {
            Decision::Stale => return stale(tx).await,
            Decision::Busy => return rollback(tx, TriggerOutcome::Busy).await,
            Decision::Run { .. } | Decision::Recover { .. } => {}
        }
        let def = match self.inner.definitions.get(&mut tx, &domain, &flow, &row.flow_version).await {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(if e.is_transient() { retryable(e) } else { fatal(e.to_string()) });
            }
        };
        let job = match decision {
            Decision::Run { origin, first, req: data, attempt } => JobRun { id: req.job_id, origin, first, req: *data, attempt },
            Decision::Recover { held } => match self.recover(&mut tx, &domain, &flow, &def, &row, held, req.job_id).await {
                Ok(Recovery::Run(job)) => *job,
                Ok(Recovery::Written) => {
                    tx.commit().await.map_err(retryable)?;
                    return Ok(TriggerOutcome::Applied);
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
            },
            Decision::Stale | Decision::Busy => return stale(tx).await,
        };
        let measure = super::observe::Measure::new(&domain, &flow, origin_name(req.origin));
        let scope = Scope { eng: self.inner.clone(), domain, flow, def, pool };
        let run = Run::job(scope, tx, row, job);
        let result = run.run().await;
        measure.job(result.as_ref().map(|s| s.status));
        match result {
            Ok(_) => Ok(TriggerOutcome::Applied),
            Err(EngineError::Busy { .. }) => Ok(TriggerOutcome::Busy),
            Err(e) if e.is_transient() => Err(retryable(e)),
            Err(e) => Err(fatal(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn request(origin: TriggerOrigin, job_id: Uuid, armed_state: Option<&str>) -> TriggerRequest {
        TriggerRequest {
            domain: "demo".into(),
            flow: "order".into(),
            instance_id: Uuid::now_v7(),
            transition: "tick".into(),
            origin,
            armed_state: armed_state.map(str::to_string),
            body: Value::Null,
            job_id,
            attempt: 1,
        }
    }

    fn found(status: InstanceStatus) -> Found<'static> {
        Found { status, state: "review", parked: false, parked_on: None, lease_token: None, lease_until: None, lease_job_id: None }
    }

    fn decide_with(req: &TriggerRequest, body: Value, found: &Found<'_>) -> Decision {
        decide(req, &JobBody::from_value(&body), found, Utc::now())
    }

    #[test]
    fn a_timer_is_stale_once_its_state_was_left_and_waits_for_a_busy_instance() {
        let job = Uuid::now_v7();
        let here = request(TriggerOrigin::Timer, job, Some("review"));
        let elsewhere = request(TriggerOrigin::Timer, job, Some("draft"));
        assert!(matches!(decide_with(&elsewhere, Value::Null, &found(InstanceStatus::Active)), Decision::Stale));
        assert!(matches!(decide_with(&here, Value::Null, &found(InstanceStatus::Completed)), Decision::Stale));
        assert!(matches!(decide_with(&here, Value::Null, &found(InstanceStatus::Busy)), Decision::Busy));
        match decide_with(&here, Value::Null, &found(InstanceStatus::Active)) {
            Decision::Run { origin, first, attempt, .. } => {
                assert_eq!(origin, Origin::Timer);
                assert_eq!(first, First::Named { key: "tick".into(), caller: Caller::System });
                assert_eq!(attempt, 1);
            }
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn the_workflow_timeout_passes_a_parked_parent_but_not_a_run_in_flight() {
        let req = request(TriggerOrigin::Timeout, Uuid::now_v7(), None);
        let parked = Found { parked: true, parked_on: Some(Uuid::now_v7()), ..found(InstanceStatus::Busy) };
        assert!(matches!(decide_with(&req, Value::Null, &parked), Decision::Run { origin: Origin::Timeout, first: First::Timeout, .. }));
        assert!(matches!(decide_with(&req, Value::Null, &found(InstanceStatus::Busy)), Decision::Busy));
        assert!(matches!(decide_with(&req, Value::Null, &found(InstanceStatus::Faulted)), Decision::Stale));
    }

    #[test]
    fn an_async_job_runs_on_the_instance_it_holds_with_its_request_and_attempt() {
        let job = Uuid::now_v7();
        let req = request(TriggerOrigin::Retry, job, None);
        let body = json!({"attempt": 3, "attributes": {"a": 1}, "first": {"kind": "named", "transition": "approve", "caller": "client"}});
        let held = Found { lease_job_id: Some(job), lease_token: Some(Uuid::new_v4()), ..found(InstanceStatus::Busy) };
        match decide_with(&req, body.clone(), &held) {
            Decision::Run { origin, first, req, attempt } => {
                assert_eq!(origin, Origin::Retry);
                assert_eq!(first, First::Named { key: "approve".into(), caller: Caller::Client });
                assert_eq!(req.body, json!({"a": 1}));
                assert_eq!(attempt, 3);
            }
            other => panic!("expected a run, got {other:?}"),
        }
        let other_job = Found { lease_job_id: Some(Uuid::now_v7()), ..held };
        assert!(matches!(decide_with(&req, body, &other_job), Decision::Busy));
    }

    #[test]
    fn a_resume_runs_only_while_the_parent_waits_for_that_child() {
        let correlation = Uuid::now_v7();
        let req = request(TriggerOrigin::Async, Uuid::now_v7(), None);
        let body = json!({"first": {"kind": "resume", "correlation": correlation}});
        let waiting = Found { parked: true, parked_on: Some(correlation), ..found(InstanceStatus::Busy) };
        assert!(matches!(
            decide_with(&req, body.clone(), &waiting),
            Decision::Run { origin: Origin::Async, first: First::Resume { .. }, .. }
        ));
        let moved_on = Found { parked_on: Some(Uuid::now_v7()), ..waiting.clone() };
        assert!(matches!(decide_with(&req, body.clone(), &moved_on), Decision::Stale));
        let leased = Found { parked: false, lease_token: Some(Uuid::new_v4()), ..waiting };
        assert!(matches!(decide_with(&req, body, &leased), Decision::Busy));
    }

    #[test]
    fn lease_recovery_takes_over_only_its_own_expired_lease() {
        let token = Uuid::new_v4();
        let holder = Uuid::now_v7();
        let req = request(TriggerOrigin::Lease, token, None);
        let body = json!({"leaseToken": token});
        let expired = Found {
            lease_token: Some(token),
            lease_until: Some(Utc::now() - chrono::Duration::seconds(1)),
            lease_job_id: Some(holder),
            ..found(InstanceStatus::Busy)
        };
        assert!(matches!(decide_with(&req, body.clone(), &expired), Decision::Recover { held: Some(h) } if h == holder));
        let renewed = Found { lease_token: Some(Uuid::new_v4()), ..expired.clone() };
        assert!(matches!(decide_with(&req, body.clone(), &renewed), Decision::Stale));
        let running = Found { lease_until: Some(Utc::now() + chrono::Duration::minutes(1)), ..expired.clone() };
        assert!(matches!(decide_with(&req, body.clone(), &running), Decision::Stale));
        let no_job = Found { lease_job_id: None, ..expired };
        assert!(matches!(decide_with(&req, body, &no_job), Decision::Recover { held: None }));
    }
}
