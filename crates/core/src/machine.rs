//! The pure state machine: which transition a request names, where it leads,
//! which tasks run in which order, which automatic transition comes next and
//! which scheduled transitions a state arms.
//!
//! Nothing here runs a script or touches a database; the engine asks these
//! questions and does the work. Every transition and task entry carries a
//! `path` (a JSON pointer into the workflow's `attributes`, e.g.
//! `/states/2/transitions/0`) so compiled scripts can be cached per site and
//! errors can say where they come from.

use crate::model::{State, StateType, SubFlow, TaskEntry, Transition, TriggerType, VersionStrategy, Workflow, SELF_TARGET};

/// The name the workflow timeout fires under.
pub const TIMEOUT_TRANSITION: &str = "$timeout";

/// Request aliases of the well-known transitions, accepted besides their configured keys.
const CANCEL_ALIASES: [&str; 1] = ["cancel"];
const EXIT_ALIASES: [&str; 1] = ["exit"];
const UPDATE_DATA_ALIASES: [&str; 3] = ["updateData", "update-data", "update-parent-data"];

/// What sort of transition a request resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    /// The workflow's `startTransition`.
    Start,
    /// A transition listed in the current state.
    State,
    /// A `sharedTransitions` entry available in the current state.
    Shared,
    /// The well-known `cancel` transition: ends the instance.
    Cancel,
    /// The well-known `exit` transition: completes the instance.
    Exit,
    /// The well-known `updateData` transition: data only, no state change.
    UpdateData,
    /// The workflow timeout (`$timeout`).
    Timeout,
}

impl TransitionKind {
    /// Cancel and exit end the instance wherever they lead.
    pub fn ends_instance(self) -> bool {
        matches!(self, TransitionKind::Cancel | TransitionKind::Exit)
    }
}

/// Who asks for a transition. Clients may fire manual and event transitions;
/// automatic and scheduled ones belong to the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Client,
    System,
}

/// A transition resolved against the current state.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'w> {
    pub kind: TransitionKind,
    pub transition: &'w Transition,
    /// Where the transition sits in the workflow (`/states/1/transitions/0`).
    pub path: String,
    /// The state left. For a start, the state the instance was pre-positioned in.
    pub from: String,
    /// The state entered, with `$self` resolved.
    pub to: String,
    /// True when the transition's target is `$self`.
    pub self_target: bool,
}

/// Why a transition cannot run in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("transition `{transition}` is not defined (current state `{state}`)")]
    Unknown { transition: String, state: String },
    #[error("transition `{transition}` is not available in state `{state}`")]
    NotAvailable { transition: String, state: String, available: Vec<String> },
    #[error("transition `{transition}` targets `{target}`, which is not a state of the workflow")]
    BadTarget { transition: String, target: String },
    #[error("the instance is in `{state}`, which is not a state of the workflow")]
    UnknownState { state: String },
}

/// A transition offered in a state, as listed by [`available`].
#[derive(Debug, Clone, PartialEq)]
pub struct Offered<'w> {
    pub kind: TransitionKind,
    pub transition: &'w Transition,
    pub path: String,
}

fn well_known(wf: &Workflow) -> [(TransitionKind, Option<&Transition>, &'static str, &'static [&'static str]); 3] {
    [
        (TransitionKind::Cancel, wf.cancel.as_ref(), "/cancel", &CANCEL_ALIASES),
        (TransitionKind::Exit, wf.exit.as_ref(), "/exit", &EXIT_ALIASES),
        (TransitionKind::UpdateData, wf.update_data.as_ref(), "/updateData", &UPDATE_DATA_ALIASES),
    ]
}

fn offered_in(t: &Transition, state: &str) -> bool {
    t.available_in.is_empty() || t.available_in.iter().any(|a| a.state() == state)
}

fn state_index(wf: &Workflow, key: &str) -> Option<usize> {
    wf.states.iter().position(|s| s.key == key)
}

/// Every transition a client may fire in `state`: the state's manual and event
/// transitions, shared transitions offered there, and the well-known ones.
/// Final states offer nothing.
pub fn available<'w>(wf: &'w Workflow, state: &str) -> Vec<Offered<'w>> {
    let mut out = Vec::new();
    let Some(si) = state_index(wf, state) else { return out };
    let st = &wf.states[si];
    if st.state_type == StateType::Final {
        return out;
    }
    for (i, t) in st.transitions.iter().enumerate() {
        if client_callable(t) {
            out.push(Offered { kind: TransitionKind::State, transition: t, path: format!("/states/{si}/transitions/{i}") });
        }
    }
    for (i, t) in wf.shared_transitions.iter().enumerate() {
        if client_callable(t) && offered_in(t, state) && !out.iter().any(|o| o.transition.key == t.key) {
            out.push(Offered { kind: TransitionKind::Shared, transition: t, path: format!("/sharedTransitions/{i}") });
        }
    }
    for (kind, t, path, _) in well_known(wf) {
        if let Some(t) = t
            && offered_in(t, state)
        {
            out.push(Offered { kind, transition: t, path: path.to_string() });
        }
    }
    out
}

fn client_callable(t: &Transition) -> bool {
    matches!(t.trigger_type, TriggerType::Manual | TriggerType::Event)
}

/// Resolves the transition `key` requested in `state`.
///
/// Lookup order: the state's own transitions, shared transitions, then the
/// well-known `cancel`, `exit` and `updateData` (by configured key or alias).
///
/// # Errors
/// [`GateError::Unknown`] when the workflow has no such transition anywhere;
/// [`GateError::NotAvailable`] (with the keys a client could use instead) when it
/// exists but not here, or is automatic/scheduled and the caller is a client;
/// [`GateError::BadTarget`] when the target is not a state.
pub fn resolve<'w>(wf: &'w Workflow, state: &str, key: &str, caller: Caller) -> Result<Resolved<'w>, GateError> {
    let si = state_index(wf, state).ok_or_else(|| GateError::UnknownState { state: state.to_string() })?;
    let st = &wf.states[si];
    let not_available = || GateError::NotAvailable {
        transition: key.to_string(),
        state: state.to_string(),
        available: available(wf, state).into_iter().map(|o| o.transition.key.clone()).collect(),
    };
    let finished = st.state_type == StateType::Final;

    if let Some(i) = st.transitions.iter().position(|t| t.key == key) {
        let t = &st.transitions[i];
        if finished || (caller == Caller::Client && !client_callable(t)) {
            return Err(not_available());
        }
        return finish(wf, TransitionKind::State, t, format!("/states/{si}/transitions/{i}"), state);
    }
    if let Some(i) = wf.shared_transitions.iter().position(|t| t.key == key) {
        let t = &wf.shared_transitions[i];
        if finished || !offered_in(t, state) || (caller == Caller::Client && !client_callable(t)) {
            return Err(not_available());
        }
        return finish(wf, TransitionKind::Shared, t, format!("/sharedTransitions/{i}"), state);
    }
    for (kind, t, path, aliases) in well_known(wf) {
        let Some(t) = t else { continue };
        if t.key == key || aliases.contains(&key) {
            if finished || !offered_in(t, state) {
                return Err(not_available());
            }
            return finish(wf, kind, t, path.to_string(), state);
        }
    }
    if wf.start_transition.key == key || wf.states.iter().any(|s| s.transitions.iter().any(|t| t.key == key)) {
        return Err(not_available());
    }
    Err(GateError::Unknown { transition: key.to_string(), state: state.to_string() })
}

/// Resolves the start transition for an instance pre-positioned in `state`
/// (the initial state, or `$start` when the workflow has none).
///
/// # Errors
/// [`GateError::BadTarget`] when the start transition targets no state.
pub fn resolve_start<'w>(wf: &'w Workflow, state: &str) -> Result<Resolved<'w>, GateError> {
    finish(wf, TransitionKind::Start, &wf.start_transition, "/startTransition".to_string(), state)
}

/// Resolves a transition the engine already holds (the workflow timeout, built
/// with [`timeout_transition`]) from `state`.
///
/// # Errors
/// [`GateError::BadTarget`] when its target is not a state.
pub fn resolve_timeout<'w>(wf: &Workflow, t: &'w Transition, state: &str) -> Result<Resolved<'w>, GateError> {
    finish(wf, TransitionKind::Timeout, t, "/timeout".to_string(), state)
}

fn finish<'w>(wf: &Workflow, kind: TransitionKind, t: &'w Transition, path: String, state: &str) -> Result<Resolved<'w>, GateError> {
    let self_target = t.targets_self() || kind == TransitionKind::UpdateData;
    let to = if self_target { state.to_string() } else { t.target.clone() };
    if !self_target && wf.state(&to).is_none() {
        return Err(GateError::BadTarget { transition: t.key.clone(), target: t.target.clone() });
    }
    Ok(Resolved { kind, transition: t, path, from: state.to_string(), to, self_target })
}

/// The workflow `timeout` as a transition (`$timeout` → `timeout.target`).
pub fn timeout_transition(wf: &Workflow) -> Option<Transition> {
    let to = wf.timeout.as_ref()?;
    Some(Transition {
        key: TIMEOUT_TRANSITION.to_string(),
        target: to.target.clone(),
        from: None,
        version_strategy: to.version_strategy,
        trigger_type: TriggerType::Scheduled,
        trigger_kind: None,
        labels: Vec::new(),
        schema: None,
        rule: None,
        timer: None,
        view: None,
        mapping: to.mapping.clone(),
        on_execution_tasks: Vec::new(),
        roles: None,
        available_in: Vec::new(),
        annotations: None,
        execution_type: None,
    })
}

/// Which phase of a hop a task entry runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The transition's `onExecutionTasks`.
    Execution,
    /// The left state's `onExits`.
    Exit,
    /// The entered state's `onEntries`.
    Entry,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Execution => "execution",
            Phase::Exit => "exit",
            Phase::Entry => "entry",
        }
    }
}

/// A task entry and where it sits.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask<'w> {
    pub entry: &'w TaskEntry,
    /// `/states/1/onEntries/0`, `/startTransition/onExecutionTasks/2`, ...
    pub path: String,
}

/// Entries of one `order`: they run concurrently.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskGroup<'w> {
    pub phase: Phase,
    pub order: i64,
    pub tasks: Vec<PlannedTask<'w>>,
}

/// What one hop does, in order: execution tasks, exit tasks, the state change,
/// entry tasks; then whether the state's timers are (re)armed.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'w> {
    pub execution: Vec<TaskGroup<'w>>,
    pub exits: Vec<TaskGroup<'w>>,
    /// False only for `updateData`, which writes data and nothing else.
    pub change_state: bool,
    pub entries: Vec<TaskGroup<'w>>,
    /// Cancel the left state's timers and arm the entered state's (when no
    /// automatic transition is taken). False for `updateData`.
    pub rearm_timers: bool,
}

impl<'w> Plan<'w> {
    /// All groups in run order.
    pub fn groups(&self) -> impl Iterator<Item = &TaskGroup<'w>> {
        self.execution.iter().chain(self.exits.iter()).chain(self.entries.iter())
    }
}

/// Groups entries by `order`, ascending; definition order within a group.
pub fn group_by_order<'w>(entries: &'w [TaskEntry], phase: Phase, base: &str, list: &str) -> Vec<TaskGroup<'w>> {
    let mut indexed: Vec<(usize, &TaskEntry)> = entries.iter().enumerate().collect();
    indexed.sort_by_key(|(i, e)| (e.order, *i));
    let mut out: Vec<TaskGroup<'w>> = Vec::new();
    for (i, e) in indexed {
        let task = PlannedTask { entry: e, path: format!("{base}/{list}/{i}") };
        match out.last_mut() {
            Some(g) if g.order == e.order => g.tasks.push(task),
            _ => out.push(TaskGroup { phase, order: e.order, tasks: vec![task] }),
        }
    }
    out
}

/// The ordered task plan of a resolved transition.
///
/// `updateData` runs only its execution tasks. A start runs its execution tasks
/// and the target's entries (the instance was only pre-positioned, so nothing
/// is exited). Every other transition, `$self` included, exits the old state and
/// enters the new one.
pub fn plan<'w>(wf: &'w Workflow, r: &Resolved<'w>) -> Plan<'w> {
    let execution = group_by_order(&r.transition.on_execution_tasks, Phase::Execution, &r.path, "onExecutionTasks");
    if r.kind == TransitionKind::UpdateData {
        return Plan { execution, exits: Vec::new(), change_state: false, entries: Vec::new(), rearm_timers: false };
    }
    let state_groups = |key: &str, phase: Phase| -> Vec<TaskGroup<'w>> {
        match state_index(wf, key) {
            Some(si) => {
                let st = &wf.states[si];
                let (list, name) = match phase {
                    Phase::Exit => (&st.on_exits, "onExits"),
                    _ => (&st.on_entries, "onEntries"),
                };
                group_by_order(list, phase, &format!("/states/{si}"), name)
            }
            None => Vec::new(),
        }
    };
    let exits = if r.kind == TransitionKind::Start { Vec::new() } else { state_groups(&r.from, Phase::Exit) };
    let entries = state_groups(&r.to, Phase::Entry);
    Plan { execution, exits, change_state: true, entries, rearm_timers: true }
}

/// The version strategy a hop bumps data by.
pub fn version_strategy(r: &Resolved<'_>) -> VersionStrategy {
    r.transition.version_strategy
}

/// An automatic transition candidate, in evaluation order.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoCandidate<'w> {
    pub transition: &'w Transition,
    pub path: String,
    /// The `triggerKind: 10` default: taken when no rule matched, without a rule.
    pub is_default: bool,
}

/// The automatic transitions of `state` in the order they are evaluated: rule
/// transitions in definition order, then the default (`triggerKind: 10`) last.
/// Final states have none.
pub fn auto_candidates<'w>(wf: &'w Workflow, state: &str) -> Vec<AutoCandidate<'w>> {
    let Some(si) = state_index(wf, state) else { return Vec::new() };
    let st = &wf.states[si];
    if st.state_type == StateType::Final {
        return Vec::new();
    }
    let autos = st.transitions.iter().enumerate().filter(|(_, t)| t.trigger_type == TriggerType::Automatic);
    let (defaults, rules): (Vec<_>, Vec<_>) = autos.partition(|(_, t)| t.is_default_auto());
    rules
        .into_iter()
        .map(|(i, t)| (i, t, false))
        .chain(defaults.into_iter().map(|(i, t)| (i, t, true)))
        .map(|(i, t, is_default)| AutoCandidate { transition: t, path: format!("/states/{si}/transitions/{i}"), is_default })
        .collect()
}

/// A scheduled transition a state arms on entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledTransition<'w> {
    pub transition: &'w Transition,
    pub path: String,
}

/// The scheduled (timer) transitions `state` arms on entry, in definition
/// order: the state's own, then the scheduled shared transitions offered there
/// (`availableIn` names the state, or is empty: every state). A shared one
/// whose key the state also uses is the state's.
pub fn scheduled<'w>(wf: &'w Workflow, state: &str) -> Vec<ScheduledTransition<'w>> {
    let Some(si) = state_index(wf, state) else { return Vec::new() };
    let st = &wf.states[si];
    if st.state_type == StateType::Final {
        return Vec::new();
    }
    let own = st
        .transitions
        .iter()
        .enumerate()
        .filter(|(_, t)| t.trigger_type == TriggerType::Scheduled)
        .map(|(i, t)| ScheduledTransition { transition: t, path: format!("/states/{si}/transitions/{i}") });
    let shared = wf
        .shared_transitions
        .iter()
        .enumerate()
        .filter(|(_, t)| t.trigger_type == TriggerType::Scheduled && offered_in(t, state))
        .filter(|(_, t)| !st.transitions.iter().any(|o| o.key == t.key))
        .map(|(i, t)| ScheduledTransition { transition: t, path: format!("/sharedTransitions/{i}") });
    own.chain(shared).collect()
}

/// The child a SubFlow state starts (`stateType: 4` with a `subFlow`), with
/// the path of its definition (`/states/2/subFlow`).
pub fn subflow<'w>(wf: &'w Workflow, state: &str) -> Option<(&'w SubFlow, String)> {
    let si = state_index(wf, state)?;
    let st = &wf.states[si];
    match (&st.state_type, &st.sub_flow) {
        (StateType::SubFlow, Some(sf)) => Some((sf, format!("/states/{si}/subFlow"))),
        _ => None,
    }
}

/// True when `state` is a Final state (entering it completes the instance).
pub fn is_final(wf: &Workflow, state: &str) -> bool {
    wf.state(state).is_some_and(|s| s.state_type == StateType::Final)
}

/// The state a new instance is pre-positioned in: the initial state, or the
/// reserved `$start` when the workflow declares none.
pub fn start_position(wf: &Workflow) -> &str {
    wf.initial_state().map(|s: &State| s.key.as_str()).unwrap_or("$start")
}

/// The path of a state (`/states/3`), for diagnostics.
pub fn state_path(wf: &Workflow, state: &str) -> Option<String> {
    state_index(wf, state).map(|i| format!("/states/{i}"))
}

/// True when the target string is the `$self` keyword.
pub fn is_self(target: &str) -> bool {
    target == SELF_TARGET
}

#[cfg(test)]
mod tests;
