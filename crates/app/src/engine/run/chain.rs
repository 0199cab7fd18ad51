//! The chain of a run: the first hop, the automatic transitions after it, the
//! scripts' `ctx`, and the timers armed where the run rests.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use vnext_core::machine::{self, Caller, Plan, Resolved, TransitionKind};
use vnext_core::merge::deep_merge;
use vnext_core::model::Timer;
use vnext_core::schedule::Schedule;
use vnext_core::script::ResponseContext;
use vnext_init::queue::{JobKind, NewJob};

use super::{Failure, First, Origin, Run, Working};
use crate::engine::context::{self, HopView, InstanceView};
use crate::engine::definitions::CompiledFlow;
use crate::engine::error::gate_error;
use crate::engine::{EngineError, InstanceStatus, PayloadError};
use crate::store::TransitionRow;

/// The data a hop's body merges in when no mapping script takes it: a
/// non-empty object; nothing for `{}` or null; anything else is refused.
fn body_patch(body: &Value, transition: &str) -> Result<Option<Value>, EngineError> {
    match body {
        Value::Object(m) if !m.is_empty() => Ok(Some(body.clone())),
        Value::Object(_) | Value::Null => Ok(None),
        _ => Err(EngineError::InvalidPayload {
            transition: transition.to_string(),
            errors: vec![PayloadError { pointer: String::new(), message: "attributes must be a JSON object".into() }],
        }),
    }
}

/// Whether a hop leaves the child of a SubFlow state it is parked in (cancel,
/// exit, the workflow timeout): every hop but `updateData`.
fn abandons_child(kind: TransitionKind) -> bool {
    kind != TransitionKind::UpdateData
}

/// Whether a hop cancels the pending timers of the state it leaves: when it
/// changes state and re-arms, is not the start, and that state has timers.
fn cancels_timers(plan: &Plan<'_>, kind: TransitionKind, left_state_has_timers: bool) -> bool {
    plan.change_state && plan.rearm_timers && kind != TransitionKind::Start && left_state_has_timers
}

/// Whether a hop completes the instance: a transition that ends it, or a final state reached.
fn completes(kind: TransitionKind, final_state: bool) -> bool {
    kind.ends_instance() || final_state
}

/// Who a hop is recorded as: the request's actor, else the client for an API
/// run and the system for any other.
fn hop_actor(request_actor: Option<String>, run_origin: Origin) -> String {
    request_actor.unwrap_or_else(|| if run_origin == Origin::Api { "client".into() } else { "system".into() })
}

/// What a hop's history row takes from outside the run's working state.
struct HopMeta {
    id: Uuid,
    origin: Origin,
    /// The body the hop ran with (the first hop's is the request's).
    body: Option<Value>,
    /// The request's headers, redacted.
    headers: Map<String, Value>,
    actor: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    duration_ms: f64,
}

/// The history row of a hop, from the working state after it (`w.hops`
/// already counts it). Only a run's first hop keeps the request's body and
/// headers; data and its version are recorded only when the hop changed them.
fn transition_row(r: &Resolved<'_>, w: &Working, meta: HopMeta, changed: bool) -> TransitionRow {
    let first_hop = w.hops == 1;
    TransitionRow {
        id: meta.id,
        seq: w.hops as i64,
        transition_key: r.transition.key.clone(),
        from_state: (r.kind != TransitionKind::Start).then(|| r.from.clone()),
        to_state: w.state.clone(),
        trigger_type: i64::from(r.transition.trigger_type) as i16,
        origin: meta.origin,
        body: if first_hop { meta.body } else { None },
        headers: (first_hop && !meta.headers.is_empty()).then_some(Value::Object(meta.headers)),
        actor: Some(meta.actor),
        data_version: changed.then(|| w.data_version.clone()),
        data_version_no: changed.then_some(w.data_version_no),
        data: changed.then(|| w.data.clone()),
        final_snap: false,
        started_at: meta.started_at,
        finished_at: meta.finished_at,
        duration_ms: meta.duration_ms,
    }
}

impl Run {
    pub(super) async fn chain(&mut self) -> Result<(), Failure> {
        let def = self.def.clone();
        let wf = &def.workflow;
        let first = match &self.first {
            First::Start => Some(machine::resolve_start(wf, &self.w.state)),
            First::Timeout => match &def.timeout {
                Some(t) => Some(machine::resolve_timeout(wf, t, &self.w.state)),
                None => return Err(EngineError::Definition { message: "the workflow defines no timeout".into() }.into()),
            },
            First::Named { key, caller } => Some(machine::resolve(wf, &self.w.state, key, *caller)),
            First::Resume { .. } => None,
        }
        .transpose()
        .map_err(gate_error)?;
        if let First::Resume { correlation } = self.first {
            self.resume_from_store(&def, correlation).await?;
        }
        let max = self.eng.settings.max_auto_chain_depth;
        let mut next = first;
        let mut rearm = true;
        let mut body = Some(self.req.body.clone());
        let mut origin = self.origin;
        let mut depth = 0u32;
        loop {
            if let Some(hop) = next.take() {
                rearm = match self.hop(&def, &hop, body.take(), origin).await {
                    Ok(rearm) => rearm,
                    Err(Failure::Divert { key }) => {
                        // The boundary's transition runs from where the failed hop started.
                        self.undo_hop();
                        depth += 1;
                        if depth > max {
                            return Err(EngineError::ChainTooDeep { depth: max, state: self.w.state.clone() }.into());
                        }
                        next = Some(machine::resolve(wf, &self.w.state, &key, Caller::System).map_err(gate_error)?);
                        origin = Origin::Boundary;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if self.w.status == InstanceStatus::Completed {
                    return Ok(());
                }
                // `updateData` on a parked parent writes data and nothing else.
                if self.w.parked.is_some() {
                    return Ok(());
                }
                if rearm
                    && let Some((sf, path)) = machine::subflow(wf, &self.w.state)
                    && !self.enter_subflow(&def, sf, &path).await?
                {
                    // Parked until the child completes; its timers wait too.
                    return Ok(());
                }
            }
            match self.pick_auto(&def).await? {
                Some(n) => {
                    depth += 1;
                    if depth > max {
                        return Err(EngineError::ChainTooDeep { depth: max, state: self.w.state.clone() }.into());
                    }
                    next = Some(n);
                    origin = Origin::Auto;
                }
                None => {
                    if rearm {
                        self.arm_timers(&def).await?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// `ctx` for a script of the hop `r`.
    pub(crate) fn ctx(&self, r: &Resolved<'_>, response: Option<ResponseContext>) -> Value {
        let hop = HopView {
            key: &r.transition.key,
            from: (r.kind != TransitionKind::Start).then_some(r.from.as_str()),
            to: &r.to,
            trigger: r.transition.trigger_type,
        };
        self.ctx_at(&hop, response)
    }

    /// `ctx` for a script that runs outside a declared transition (subflow mappings).
    pub(crate) fn ctx_at(&self, hop: &HopView<'_>, response: Option<ResponseContext>) -> Value {
        context::build(
            &self.req,
            &InstanceView {
                id: self.row.id,
                key: self.row.key.as_deref(),
                flow: self.flow.as_str(),
                domain: self.domain.as_str(),
                state: &self.w.state,
                status: self.w.status.code(),
                data: &self.w.data,
            },
            hop,
            response,
            &self.responses,
            self.now,
        )
    }

    /// One hop: validate, map and merge, run tasks around the state change,
    /// complete on a final state, bump the data version, record the hop.
    /// Returns whether the hop re-arms timers (false for `updateData`).
    async fn hop(&mut self, def: &CompiledFlow, r: &Resolved<'_>, body: Option<Value>, origin: Origin) -> Result<bool, Failure> {
        let started_at = self.eng.clock.now();
        let t0 = Instant::now();
        self.checkpoint = Some(self.w.clone());
        self.hop_id = Uuid::now_v7();
        self.hop_key = r.transition.key.clone();
        let before = self.w.data.clone();
        let key = &r.transition.key;
        self.take_body(def, r, body.as_ref()).await?;

        let wf = &def.workflow;
        if abandons_child(r.kind)
            && let Some(corr) = self.w.parked.take()
        {
            // Leaving a SubFlow state before its child completed (cancel, exit,
            // the workflow timeout): the child is cancelled too, by a job.
            self.w.close.push((corr, crate::engine::writes::CASCADE));
        }
        self.w.canceled = r.kind == TransitionKind::Cancel;
        let plan = machine::plan(wf, r);
        for g in &plan.execution {
            self.group(def, r, g).await?;
        }
        for g in &plan.exits {
            self.group(def, r, g).await?;
        }
        if plan.change_state {
            if cancels_timers(&plan, r.kind, !machine::scheduled(wf, &r.from).is_empty()) {
                self.w.cancel_timers = true;
            }
            self.w.state = r.to.clone();
        }
        for g in &plan.entries {
            self.group(def, r, g).await?;
        }
        if completes(r.kind, machine::is_final(wf, &self.w.state)) {
            self.w.status = InstanceStatus::Completed;
            self.w.completed_at = Some(self.eng.clock.now());
        }
        if let Some(master) = &def.master_schema {
            let errors = master.errors(&self.w.data);
            if !errors.is_empty() {
                return Err(EngineError::InvalidPayload { transition: key.clone(), errors }.into());
            }
        }
        let changed = self.w.data != before;
        if changed {
            self.w.next_data_version(machine::version_strategy(r));
        }
        self.w.hops += 1;
        let meta = HopMeta {
            id: self.hop_id,
            origin,
            body,
            headers: self.eng.settings.redaction.headers(&self.req.headers),
            actor: hop_actor(self.req.actor(), self.origin),
            started_at,
            finished_at: self.eng.clock.now(),
            duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
        };
        self.records.transitions.push(transition_row(r, &self.w, meta, changed));
        Ok(plan.rearm_timers)
    }

    /// Validates a hop's body against the transition's schema and merges it
    /// into the data: through the transition's mapping script if it has one.
    async fn take_body(&mut self, def: &CompiledFlow, r: &Resolved<'_>, body: Option<&Value>) -> Result<(), Failure> {
        let key = &r.transition.key;
        if let Some(b) = body
            && let Some(schema) = def.schema(&r.path)
        {
            let payload = if b.is_null() { json!({}) } else { b.clone() };
            let errors = schema.errors(&payload);
            if !errors.is_empty() {
                return Err(EngineError::InvalidPayload { transition: key.clone(), errors }.into());
            }
        }
        let mapping_site = format!("{}/mapping", r.path);
        if let Some(script) = def.script(&mapping_site) {
            let ctx = self.ctx(r, None);
            let patch = self.eng.scripts.call_map(self.domain.as_str(), script, "handler", ctx).await?;
            if let Some(patch) = patch {
                deep_merge(&mut self.w.data, patch);
            }
        } else if let Some(b) = body
            && let Some(patch) = body_patch(b, key)?
        {
            deep_merge(&mut self.w.data, patch);
        }
        Ok(())
    }

    /// The automatic transition taken from the current state, if any.
    async fn pick_auto<'d>(&self, def: &'d CompiledFlow) -> Result<Option<Resolved<'d>>, Failure> {
        let wf = &def.workflow;
        for c in machine::auto_candidates(wf, &self.w.state) {
            let take = if c.is_default {
                true
            } else {
                let site = format!("{}/rule", c.path);
                let script = def.script(&site).ok_or_else(|| EngineError::Definition {
                    message: format!("automatic transition `{}` ({}) has no rule", c.transition.key, c.path),
                })?;
                let probe = Resolved {
                    kind: TransitionKind::State,
                    transition: c.transition,
                    path: c.path.clone(),
                    from: self.w.state.clone(),
                    to: if c.transition.targets_self() { self.w.state.clone() } else { c.transition.target.clone() },
                    self_target: c.transition.targets_self(),
                };
                let ctx = self.ctx(&probe, None);
                self.eng.scripts.call_bool(self.domain.as_str(), script, "handler", ctx).await?
            };
            if take {
                return machine::resolve(wf, &self.w.state, &c.transition.key, Caller::System).map(Some).map_err(|e| gate_error(e).into());
            }
        }
        Ok(None)
    }

    /// Arms the scheduled transitions of the state the run rests in.
    async fn arm_timers(&mut self, def: &CompiledFlow) -> Result<(), Failure> {
        let wf = &def.workflow;
        for s in machine::scheduled(wf, &self.w.state) {
            let schedule = match &s.transition.timer {
                Some(Timer::Declarative(d)) => Schedule::from_declarative(d),
                Some(Timer::Script(_)) => {
                    let site = format!("{}/timer", s.path);
                    let script = def
                        .script(&site)
                        .ok_or_else(|| EngineError::Internal(format!("timer script {site} was not compiled")))?;
                    let r = machine::resolve(wf, &self.w.state, &s.transition.key, Caller::System).map_err(gate_error)?;
                    let ctx = self.ctx(&r, None);
                    Ok(self.eng.scripts.call_timer(self.domain.as_str(), script, "handler", ctx).await?)
                }
                None => {
                    return Err(EngineError::Definition {
                        message: format!("scheduled transition `{}` ({}) has no timer", s.transition.key, s.path),
                    }
                    .into());
                }
            };
            let due = schedule
                .and_then(|sch| sch.next_fire(self.now))
                .map_err(|m| EngineError::Definition { message: format!("timer of `{}` ({}): {m}", s.transition.key, s.path) })?;
            self.w.arm.push(NewJob::new(JobKind::Timer, self.flow.as_str(), self.row.id, &s.transition.key, due).armed_in(&self.w.state));
        }
        Ok(())
    }

    /// The workflow timeout job of a new instance.
    pub(crate) fn timeout_job(&self) -> Result<Option<NewJob>, EngineError> {
        let Some(t) = &self.def.workflow.timeout else { return Ok(None) };
        let due = Schedule::from_duration(&t.timer.duration)
            .and_then(|s| s.next_fire(self.row.created_at))
            .map_err(|m| EngineError::Definition { message: format!("workflow timeout: {m}") })?;
        Ok(Some(NewJob::new(JobKind::Timeout, self.flow.as_str(), self.row.id, machine::TIMEOUT_TRANSITION, due)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vnext_core::model::Transition;

    use super::*;

    fn transition(key: &str, target: &str) -> Transition {
        serde_json::from_value(json!({"key": key, "target": target, "triggerType": 0, "versionStrategy": "Minor",
            "labels": [{"label": "x", "language": "en"}]}))
        .expect("a transition")
    }

    fn resolved(kind: TransitionKind, t: &Transition) -> Resolved<'_> {
        Resolved { kind, transition: t, path: "/states/0/transitions/0".into(), from: "idle".into(), to: t.target.clone(), self_target: false }
    }

    fn plan(change_state: bool, rearm_timers: bool) -> Plan<'static> {
        Plan { execution: Vec::new(), exits: Vec::new(), change_state, entries: Vec::new(), rearm_timers }
    }

    fn meta(body: Option<Value>, headers: Map<String, Value>) -> HopMeta {
        let now = Utc::now();
        HopMeta { id: Uuid::now_v7(), origin: Origin::Api, body, headers, actor: "client".into(), started_at: now, finished_at: now, duration_ms: 1.0 }
    }

    #[test]
    fn a_body_merges_only_as_a_non_empty_object() {
        assert_eq!(body_patch(&json!({"a": 1}), "go").map_err(|e| e.to_string()).unwrap(), Some(json!({"a": 1})));
        assert_eq!(body_patch(&json!({}), "go").map_err(|e| e.to_string()).unwrap(), None);
        assert_eq!(body_patch(&Value::Null, "go").map_err(|e| e.to_string()).unwrap(), None);
        match body_patch(&json!([1]), "go") {
            Err(EngineError::InvalidPayload { transition, errors }) => {
                assert_eq!(transition, "go");
                assert_eq!(errors[0].message, "attributes must be a JSON object");
            }
            other => panic!("expected an invalid payload, got {:?}", other.map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn timers_are_cancelled_only_when_a_state_with_timers_is_left_for_good() {
        assert!(cancels_timers(&plan(true, true), TransitionKind::State, true));
        assert!(!cancels_timers(&plan(true, true), TransitionKind::State, false));
        assert!(!cancels_timers(&plan(true, true), TransitionKind::Start, true));
        assert!(!cancels_timers(&plan(false, false), TransitionKind::UpdateData, true));
        assert!(!abandons_child(TransitionKind::UpdateData));
        assert!(abandons_child(TransitionKind::Cancel));
        assert!(completes(TransitionKind::State, true));
        assert!(completes(TransitionKind::Cancel, false));
        assert!(!completes(TransitionKind::State, false));
    }

    #[test]
    fn the_actor_is_the_requests_else_the_client_or_the_system() {
        assert_eq!(hop_actor(Some("ada".into()), Origin::Auto), "ada");
        assert_eq!(hop_actor(None, Origin::Api), "client");
        assert_eq!(hop_actor(None, Origin::Timer), "system");
    }

    #[test]
    fn only_the_first_hop_keeps_the_request_and_only_a_change_records_data() {
        let t = transition("go", "busy");
        let r = resolved(TransitionKind::State, &t);
        let mut w = crate::engine::run::tests::working("1.0.0", 1);
        w.state = "busy".into();
        w.data = json!({"a": 1});
        w.hops = 1;
        let headers: Map<String, Value> = json!({"x-actor": "ada"}).as_object().cloned().unwrap();
        let first = transition_row(&r, &w, meta(Some(json!({"a": 1})), headers.clone()), true);
        assert_eq!((first.seq, first.transition_key.as_str(), first.from_state.as_deref(), first.to_state.as_str()), (1, "go", Some("idle"), "busy"));
        assert_eq!(first.body, Some(json!({"a": 1})));
        assert_eq!(first.headers, Some(json!({"x-actor": "ada"})));
        assert_eq!((first.data_version.as_deref(), first.data_version_no, first.data), (Some("1.0.0"), Some(1), Some(json!({"a": 1}))));
        w.hops = 2;
        let second = transition_row(&r, &w, meta(Some(json!({"a": 1})), headers), false);
        assert_eq!(second.seq, 2);
        assert_eq!((second.body, second.headers), (None, None));
        assert_eq!((second.data_version, second.data_version_no, second.data), (None, None, None));
        assert_eq!(transition_row(&r, &w, meta(None, Map::new()), false).headers, None);
        let start = transition_row(&resolved(TransitionKind::Start, &t), &w, meta(None, Map::new()), false);
        assert_eq!(start.from_state, None);
    }
}
