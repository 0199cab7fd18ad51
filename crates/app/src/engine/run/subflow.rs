//! SubFlow states (`stateType: 4`, `subFlow.type: "S"`): a parent entering one
//! starts a child instance and parks until the child completes.
//!
//! Starting: the child's start runs inside the parent's run, as a nested run
//! whose writes join the parent's transaction, so a parent and a child without
//! external I/O commit together, once. A child that needs external I/O (or a
//! chain of subflows nested deeper than [`MAX_INLINE_DEPTH`]) is created busy,
//! owned by an async start job written in the same transaction and run right
//! after the commit.
//!
//! Parking: the parent stays busy (`B`) with `parked_on` naming its open
//! correlation and no lease, so lease recovery never touches it.
//!
//! Resuming: a child that completes within its parent's run resumes the parent
//! in memory. A child that completes later writes a resume job for its parent
//! in the transaction that completes it; the job runs right after that commit
//! (and, if that fails, whenever the scheduler gets to it). The job is marked
//! done in the parent's resume transaction and checks that the parent still
//! waits for that correlation, so a parent resumes exactly once.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use uuid::Uuid;
use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::machine;
use vnext_core::merge::deep_merge;
use vnext_core::model::{Reference, SubFlow, TriggerType};
use vnext_core::script::ResponseContext;

use crate::engine::context::{HopView, RequestData};
use crate::engine::definitions::CompiledFlow;
use super::{Failure, First, Hold, Origin, Run};
use crate::engine::writes::{async_job, child_stopped, Pending, SubflowWrites, RESUME_KEY};
use crate::engine::{EngineError, InstanceStatus};
use crate::store::{correlations, CorrelationRow, InstanceRow, Lease, NewInstance, ParentLink, Records, TransitionRow, WriteMode};

/// Subflow levels started inline within one request; deeper children start
/// through a job (one commit each) instead.
pub const MAX_INLINE_DEPTH: u32 = 8;

/// `(key, version selector, domain)` of the workflow a subflow names.
fn process_ref(r: &Reference) -> (String, String, String) {
    match r {
        Reference::Explicit(e) => (e.key.clone().or_else(|| e.id.clone()).unwrap_or_default(), e.version.clone(), e.domain.clone()),
        Reference::File { path } => {
            let file = path.rsplit('/').next().unwrap_or(path);
            (file.trim_end_matches(".json").to_string(), String::new(), String::new())
        }
    }
}

/// The workflow (and version selector) a SubFlow state starts, checked
/// without I/O: only `S` subflows, in the parent's own domain.
fn subflow_target(sf: &SubFlow, state: &str, path: &str, domain: &DomainName) -> Result<(FlowKey, Option<String>), Failure> {
    if sf.flow_type != "S" {
        return Err(unsupported(format!(
            "state `{state}` ({path}) has a subflow of type `{}`; a state starts only `S` subflows (SubProcesses are started by the SubProcess task)",
            sf.flow_type
        )));
    }
    let (key, selector, other) = process_ref(&sf.process);
    if !other.is_empty() && other != domain.as_str() {
        return Err(unsupported(format!(
            "cross-domain subflows are not supported yet: state `{state}` ({path}) starts `{key}` in domain `{other}` from domain `{domain}`"
        )));
    }
    let child_flow = FlowKey::new(&key).map_err(|e| EngineError::Definition {
        message: format!("state `{state}` ({path}) names subflow `{key}`, which is not a workflow key: {e}"),
    })?;
    Ok((child_flow, (!selector.is_empty()).then_some(selector)))
}

fn unsupported(message: String) -> Failure {
    Failure::Abort(EngineError::Unsupported { message })
}

/// How a child starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ChildStart {
    /// As a nested run inside the parent's (it may still ask for a job when its
    /// chain reaches external I/O).
    Inline,
    /// Through a start job written with the parent's commit.
    Job,
}

/// How the child of a parent at subflow depth `depth` starts: inline up to
/// [`MAX_INLINE_DEPTH`] levels, through a job below that.
fn child_start(depth: u32) -> ChildStart {
    if depth < MAX_INLINE_DEPTH { ChildStart::Inline } else { ChildStart::Job }
}

/// What the parent does once its child's start has run inline.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AfterChild {
    /// The child completed: the correlation closes as `completed` and the parent resumes.
    Resume,
    /// The parent parks on the correlation. `outcome` closes it at once (a
    /// canceled child); `incident` records a child that stopped without completing.
    Park { outcome: Option<&'static str>, incident: bool },
}

fn after_child(status: InstanceStatus, canceled: bool) -> AfterChild {
    match status {
        InstanceStatus::Completed if !canceled => AfterChild::Resume,
        InstanceStatus::Completed | InstanceStatus::Faulted => AfterChild::Park { outcome: canceled.then_some("canceled"), incident: true },
        _ => AfterChild::Park { outcome: None, incident: false },
    }
}

/// The open correlation between a parent parked in `parent_state` and its child.
fn correlation_row(link: &ParentLink, parent_state: &str, domain: &DomainName, child_flow: &FlowKey, child_id: Uuid) -> CorrelationRow {
    CorrelationRow {
        id: link.correlation_id,
        parent_instance_id: link.instance_id,
        parent_state: parent_state.to_string(),
        child_domain: domain.to_string(),
        child_flow: child_flow.to_string(),
        child_instance_id: child_id,
        completed: false,
        outcome: None,
    }
}

impl Run {
    /// Enters the SubFlow state the run just moved into: starts the child.
    /// Returns true when the child completed within this run and the parent
    /// resumed (the chain goes on); false when the parent is parked.
    pub(crate) async fn enter_subflow(&mut self, def: &CompiledFlow, sf: &SubFlow, path: &str) -> Result<bool, Failure> {
        let state = self.w.state.clone();
        let (child_flow, selector) = subflow_target(sf, &state, path, &self.domain)?;
        let child_def = self.child_definition(&child_flow, selector.as_deref(), &state, path).await?;
        self.eng.ensure_schema(&self.pool, &self.domain, &child_flow).await?;
        let body = self.child_body(def, path, &state).await?;

        let link = ParentLink { flow: self.flow.as_str().to_string(), instance_id: self.row.id, correlation_id: Uuid::now_v7() };
        let row = child_row(&child_def, &link, self.now);
        let mut correlation = correlation_row(&link, &state, &self.domain, &child_flow, row.id);
        let nested = match child_start(self.depth) {
            ChildStart::Inline => {
                let child = self.nested(child_flow.clone(), child_def.clone(), row.clone(), RequestData::new(body.clone(), Map::new(), Map::new()));
                Box::pin(child.run_nested()).await?
            }
            ChildStart::Job => None,
        };
        let Some(child) = nested else {
            let pending = self.child_start_job(row, &child_def, &child_flow, body);
            self.sub.children.push(pending);
            self.sub.correlations.push(correlation);
            self.w.parked = Some(link.correlation_id);
            return Ok(false);
        };
        match after_child(child.row.status, child.canceled) {
            AfterChild::Resume => {
                let data = child.row.data.clone();
                correlation.completed = true;
                correlation.outcome = Some("completed".into());
                self.sub.children.push(child);
                self.sub.correlations.push(correlation);
                self.resume(def, path, &child_flow, data).await?;
                Ok(true)
            }
            AfterChild::Park { outcome, incident } => {
                if incident {
                    let cause = child.records.incidents.last().map(|i| i.message.clone());
                    self.records.incidents.push(child_stopped(child_flow.as_str(), child.row.id, &child.row.current_state, child.row.status, cause.as_deref()));
                    self.w.child_incident = true;
                }
                if let Some(outcome) = outcome {
                    correlation.completed = true;
                    correlation.outcome = Some(outcome.into());
                }
                self.sub.children.push(child);
                self.sub.correlations.push(correlation);
                self.w.parked = Some(link.correlation_id);
                Ok(false)
            }
        }
    }

    /// The published definition of the child's workflow.
    async fn child_definition(&mut self, child_flow: &FlowKey, selector: Option<&str>, state: &str, path: &str) -> Result<Arc<CompiledFlow>, Failure> {
        // On the run's own transaction when it holds one: a second pooled
        // connection per run could starve the pool under load.
        let selected = match &mut self.hold {
            Hold::Locked(tx) => self.eng.definitions.select(tx, &self.domain, child_flow, selector).await,
            _ => {
                let mut conn = vnext_init::db::acquire(&self.pool).await.map_err(|e| Failure::Abort(e.into()))?;
                self.eng.definitions.select(&mut conn, &self.domain, child_flow, selector).await
            }
        };
        match selected {
            Ok(d) => Ok(d),
            Err(EngineError::UnknownFlow { .. }) => Err(EngineError::Definition {
                message: format!(
                    "state `{state}` ({path}) starts subflow `{child_flow}` version `{}`, which is not published in domain `{}`",
                    selector.unwrap_or("latest"),
                    self.domain
                ),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// What the child starts with: the subflow mapping's `fn input(ctx)`, or the parent's data.
    async fn child_body(&self, def: &CompiledFlow, path: &str, state: &str) -> Result<Value, Failure> {
        Ok(match def.script(&format!("{path}/mapping")) {
            Some(m) if m.has_function("input") => {
                let hop = HopView { key: &self.hop_key, from: None, to: state, trigger: TriggerType::Automatic };
                let ctx = self.ctx_at(&hop, None);
                self.eng.scripts.call_map(self.domain.as_str(), m, "input", ctx).await?.unwrap_or_else(|| json!({}))
            }
            _ => self.w.data.clone(),
        })
    }

    /// A child that cannot start inline: created busy, owned by an async job
    /// that runs its start (right after the parent commits).
    fn child_start_job(&self, row: InstanceRow, child_def: &CompiledFlow, child_flow: &FlowKey, body: Value) -> Pending {
        let job_id = Uuid::now_v7();
        let start_key = child_def.workflow.start_transition.key.clone();
        let lease = Lease { token: Uuid::new_v4(), until: self.now + self.eng.settings.lease, transition: start_key.clone(), job_id: Some(job_id), request: None, step: None };
        let req = RequestData::new(body, Map::new(), Map::new());
        let job = async_job(child_flow, row.id, &start_key, &req.job_body(&First::Start, &self.eng.settings.sealer), self.now).with_id(job_id);
        Pending {
            flow: child_flow.clone(),
            mode: WriteMode::Insert,
            row: row.leased(&lease, self.now),
            records: Records::default(),
            cancel: &[],
            arm: vec![job],
            sub: SubflowWrites::default(),
            close: Vec::new(),
            report: None,
            followups: vec![job_id],
            canceled: false,
        }
    }

    /// The resume of a parked parent by a job: reads what its child ended
    /// with, closes the correlation and merges the child's data.
    pub(crate) async fn resume_from_store(&mut self, def: &CompiledFlow, correlation: Uuid) -> Result<(), Failure> {
        let id = self.row.id;
        if self.w.parked != Some(correlation) {
            return Err(EngineError::Internal(format!("instance {id} does not wait for correlation {correlation}")).into());
        }
        let corr = match &mut self.hold {
            Hold::Locked(tx) => correlations::find(&mut **tx, &self.flow, correlation).await?,
            _ => correlations::find(&self.pool, &self.flow, correlation).await?,
        }
        .ok_or_else(|| EngineError::Internal(format!("correlation {correlation} of instance {id} is missing")))?;
        let child_flow = FlowKey::new(&corr.child_flow).map_err(|e| EngineError::Internal(format!("correlation {correlation}: {e}")))?;
        let (status, data) = correlations::child_data(&self.pool, &child_flow, corr.child_instance_id)
            .await?
            .ok_or_else(|| EngineError::Internal(format!("subflow instance {} is missing", corr.child_instance_id)))?;
        if status != "C" {
            return Err(EngineError::Internal(format!("subflow instance {} has not completed (status {status})", corr.child_instance_id)).into());
        }
        let wf = &def.workflow;
        let Some((_, path)) = machine::subflow(wf, &self.w.state) else {
            return Err(EngineError::Definition { message: format!("instance {id} waits for a subflow in `{}`, which is not a SubFlow state", self.w.state) }.into());
        };
        self.w.close.push((correlation, "completed"));
        self.resume(def, &path, &child_flow, data).await
    }

    /// Merges a completed child's data into the parent (the subflow mapping's
    /// `fn output(ctx)` with `ctx.response.data` = the child's data, or the
    /// child's data under the child workflow's key) and records the resume.
    async fn resume(&mut self, def: &CompiledFlow, path: &str, child_flow: &FlowKey, child_data: Value) -> Result<(), Failure> {
        let started_at = self.eng.clock.now();
        let t0 = std::time::Instant::now();
        self.hop_id = Uuid::now_v7();
        self.hop_key = RESUME_KEY.to_string();
        let state = self.w.state.clone();
        let before = self.w.data.clone();
        match def.script(&format!("{path}/mapping")) {
            Some(m) if m.has_function("output") => {
                let response = ResponseContext { status_code: None, is_success: true, data: child_data, headers: Map::new(), error: None };
                let hop = HopView { key: RESUME_KEY, from: Some(&state), to: &state, trigger: TriggerType::Automatic };
                let ctx = self.ctx_at(&hop, Some(response));
                if let Some(patch) = self.eng.scripts.call_map(self.domain.as_str(), m, "output", ctx).await? {
                    deep_merge(&mut self.w.data, patch);
                }
            }
            _ => deep_merge(&mut self.w.data, json!({ child_flow.as_str(): child_data })),
        }
        self.w.parked = None;
        if let Some(master) = &def.master_schema {
            let errors = master.errors(&self.w.data);
            if !errors.is_empty() {
                return Err(EngineError::InvalidPayload { transition: RESUME_KEY.to_string(), errors }.into());
            }
        }
        let changed = self.w.data != before;
        if changed {
            let strategy = def.workflow.state(&state).map(|s| s.version_strategy).unwrap_or_default();
            self.w.next_data_version(strategy);
        }
        self.w.hops += 1;
        self.records.transitions.push(TransitionRow {
            id: self.hop_id,
            seq: self.w.hops as i64,
            transition_key: RESUME_KEY.to_string(),
            from_state: Some(state.clone()),
            to_state: state,
            trigger_type: i64::from(TriggerType::Automatic) as i16,
            origin: Origin::Subflow,
            body: None,
            headers: None,
            actor: Some("system".into()),
            data_version: changed.then(|| self.w.data_version.clone()),
            data_version_no: changed.then_some(self.w.data_version_no),
            data: changed.then(|| self.w.data.clone()),
            final_snap: false,
            started_at,
            finished_at: self.eng.clock.now(),
            duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
        });
        Ok(())
    }
}

/// A new child row, pre-positioned for its start.
fn child_row(def: &CompiledFlow, link: &ParentLink, now: chrono::DateTime<chrono::Utc>) -> InstanceRow {
    InstanceRow::new(NewInstance {
        flow_version: def.version.clone(),
        start_state: machine::start_position(&def.workflow).to_string(),
        key: None,
        tags: Vec::new(),
        parent: Some(link.clone()),
        now,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn subflow(v: serde_json::Value) -> SubFlow {
        serde_json::from_value(v).expect("a subflow")
    }

    fn reason(r: Result<(FlowKey, Option<String>), Failure>) -> String {
        match r {
            Err(Failure::Abort(e)) => e.to_string(),
            Err(_) => "another failure".into(),
            Ok((flow, _)) => format!("starts {flow}"),
        }
    }

    #[test]
    fn a_child_starts_inline_up_to_the_depth_limit_then_through_a_job() {
        assert_eq!(child_start(0), ChildStart::Inline);
        assert_eq!(child_start(MAX_INLINE_DEPTH - 1), ChildStart::Inline);
        assert_eq!(child_start(MAX_INLINE_DEPTH), ChildStart::Job);
    }

    #[test]
    fn a_completed_child_resumes_its_parent_and_any_other_end_parks_it() {
        assert_eq!(after_child(InstanceStatus::Completed, false), AfterChild::Resume);
        assert_eq!(after_child(InstanceStatus::Completed, true), AfterChild::Park { outcome: Some("canceled"), incident: true });
        assert_eq!(after_child(InstanceStatus::Faulted, false), AfterChild::Park { outcome: None, incident: true });
        assert_eq!(after_child(InstanceStatus::Active, false), AfterChild::Park { outcome: None, incident: false });
        assert_eq!(after_child(InstanceStatus::Busy, false), AfterChild::Park { outcome: None, incident: false });
    }

    #[test]
    fn the_correlation_names_parent_and_child_and_starts_open() {
        let demo = DomainName::new("demo").unwrap();
        let link = ParentLink { flow: "order".into(), instance_id: Uuid::now_v7(), correlation_id: Uuid::now_v7() };
        let child = Uuid::now_v7();
        let c = correlation_row(&link, "check", &demo, &FlowKey::new("kyc").unwrap(), child);
        assert_eq!((c.id, c.parent_instance_id, c.child_instance_id), (link.correlation_id, link.instance_id, child));
        assert_eq!((c.parent_state.as_str(), c.child_domain.as_str(), c.child_flow.as_str()), ("check", "demo", "kyc"));
        assert_eq!((c.completed, c.outcome), (false, None));
    }

    #[test]
    fn a_subflow_state_starts_a_workflow_of_its_own_domain() {
        let demo = DomainName::new("demo").unwrap();
        let same = subflow(json!({"type": "S", "process": {"key": "kyc", "domain": "demo", "version": "1.0.0", "flow": "sys-flows"}}));
        let (flow, selector) = subflow_target(&same, "check", "/states/1", &demo).map_err(|_| ()).unwrap();
        assert_eq!((flow.as_str(), selector.as_deref()), ("kyc", Some("1.0.0")));
        let other = subflow(json!({"type": "S", "process": {"key": "kyc", "domain": "bank", "version": "", "flow": "sys-flows"}}));
        assert!(reason(subflow_target(&other, "check", "/states/1", &demo)).contains("cross-domain"));
        let process = subflow(json!({"type": "P", "process": {"key": "kyc", "domain": "demo", "version": "", "flow": "sys-flows"}}));
        assert!(reason(subflow_target(&process, "check", "/states/1", &demo)).contains("of type `P`"));
        let bad = subflow(json!({"type": "S", "process": {"key": "Not A Key", "domain": "", "version": "", "flow": "sys-flows"}}));
        assert!(reason(subflow_target(&bad, "check", "/states/1", &demo)).contains("not a workflow key"));
    }
}
