//! The chain of a run: the first hop, the automatic transitions after it, the
//! scripts' `ctx`, and the timers armed where the run rests.

use std::time::Instant;

use serde_json::{json, Value};
use uuid::Uuid;
use vnext_core::machine::{self, Caller, Resolved, TransitionKind};
use vnext_core::merge::deep_merge;
use vnext_core::model::Timer;
use vnext_core::schedule::Schedule;
use vnext_core::script::ResponseContext;
use vnext_init::queue::{JobKind, NewJob};

use super::{Failure, First, Origin, Run};
use crate::engine::context::{self, HopView, InstanceView};
use crate::engine::definitions::CompiledFlow;
use crate::engine::error::{gate_error, script_error};
use crate::engine::{EngineError, InstanceStatus, PayloadError};
use crate::store::TransitionRow;

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
                        self.arm_timers(&def)?;
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

        if let Some(b) = &body
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
            let patch = self.eng.scripts.call_map(script, "handler", &ctx).map_err(|e| script_error(&script.location, e))?;
            if let Some(patch) = patch {
                deep_merge(&mut self.w.data, patch);
            }
        } else if let Some(b) = body.clone() {
            match b {
                Value::Object(m) if !m.is_empty() => deep_merge(&mut self.w.data, Value::Object(m)),
                Value::Object(_) | Value::Null => {}
                _ => {
                    return Err(EngineError::InvalidPayload {
                        transition: key.clone(),
                        errors: vec![PayloadError { pointer: String::new(), message: "attributes must be a JSON object".into() }],
                    }
                    .into());
                }
            }
        }

        let wf = &def.workflow;
        if r.kind != TransitionKind::UpdateData
            && let Some(corr) = self.w.parked.take()
        {
            // Leaving a SubFlow state before its child completed (cancel, exit,
            // the workflow timeout): the child runs on, unlinked.
            self.w.close.push((corr, "abandoned"));
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
            if plan.rearm_timers && r.kind != TransitionKind::Start && !machine::scheduled(wf, &r.from).is_empty() {
                self.w.cancel_timers = true;
            }
            self.w.state = r.to.clone();
        }
        for g in &plan.entries {
            self.group(def, r, g).await?;
        }
        if r.kind.ends_instance() || machine::is_final(wf, &self.w.state) {
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
        let first_hop = self.w.hops == 0;
        self.w.hops += 1;
        let finished_at = self.eng.clock.now();
        self.records.transitions.push(TransitionRow {
            id: self.hop_id,
            seq: self.w.hops as i64,
            transition_key: key.clone(),
            from_state: (r.kind != TransitionKind::Start).then(|| r.from.clone()),
            to_state: self.w.state.clone(),
            trigger_type: i64::from(r.transition.trigger_type) as i16,
            origin,
            body: if first_hop { body } else { None },
            headers: (first_hop && !self.req.headers.is_empty())
                .then(|| Value::Object(self.eng.settings.redaction.headers(&self.req.headers))),
            actor: Some(self.req.actor().unwrap_or_else(|| if self.origin == Origin::Api { "client".into() } else { "system".into() })),
            data_version: changed.then(|| self.w.data_version.clone()),
            data_version_no: changed.then_some(self.w.data_version_no),
            data: changed.then(|| self.w.data.clone()),
            final_snap: false,
            started_at,
            finished_at,
            duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
        });
        Ok(plan.rearm_timers)
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
                self.eng.scripts.call_bool(script, "handler", &ctx).map_err(|e| script_error(&script.location, e))?
            };
            if take {
                return machine::resolve(wf, &self.w.state, &c.transition.key, Caller::System).map(Some).map_err(|e| gate_error(e).into());
            }
        }
        Ok(None)
    }

    /// Arms the scheduled transitions of the state the run rests in.
    fn arm_timers(&mut self, def: &CompiledFlow) -> Result<(), Failure> {
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
                    Ok(self.eng.scripts.call_timer(script, "handler", &ctx).map_err(|e| script_error(&script.location, e))?)
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
