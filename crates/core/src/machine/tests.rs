use serde_json::json;

use super::*;

fn wf() -> Workflow {
    let t = |key: &str, target: &str, trigger: i64| json!({"key": key, "target": target, "triggerType": trigger, "versionStrategy": "Minor"});
    let entry = |order: i64, key: &str| json!({"order": order, "task": {"key": key, "domain": "d", "flow": "sys-tasks", "version": "1.0.0"}});
    serde_json::from_value(json!({
        "type": "F",
        "startTransition": {"key": "start", "target": "draft", "triggerType": 0, "versionStrategy": "Major",
            "onExecutionTasks": [entry(1, "s1")]},
        "states": [
            {"key": "draft", "stateType": 1, "versionStrategy": "None",
             "onExits": [entry(2, "x2"), entry(1, "x1a"), entry(1, "x1b")],
             "onEntries": [entry(1, "e1")],
             "transitions": [
                t("submit", "review", 0),
                t("again", "$self", 0),
                {"key": "tick", "target": "review", "triggerType": 2, "versionStrategy": "None", "timer": {"duration": "PT5S"}},
             ]},
            {"key": "review", "stateType": 2, "versionStrategy": "None",
             "onEntries": [entry(3, "r3"), entry(1, "r1"), entry(3, "r3b")],
             "transitions": [
                {"key": "fallback", "target": "done", "triggerType": 1, "triggerKind": 10, "versionStrategy": "None"},
                {"key": "big", "target": "done", "triggerType": 1, "versionStrategy": "None", "rule": {"code": "x", "encoding": "NAT"}},
                {"key": "small", "target": "draft", "triggerType": 1, "versionStrategy": "None", "rule": {"code": "y", "encoding": "NAT"}},
             ]},
            {"key": "done", "stateType": 3, "versionStrategy": "None"}
        ],
        "sharedTransitions": [
            {"key": "comment", "target": "$self", "triggerType": 0, "versionStrategy": "Patch", "availableIn": ["review"]},
            {"key": "reset", "target": "draft", "triggerType": 0, "versionStrategy": "None"},
            {"key": "nudge", "target": "$self", "triggerType": 2, "versionStrategy": "None", "availableIn": ["review"],
             "timer": {"duration": "PT1M"}},
            {"key": "sweep", "target": "done", "triggerType": 2, "versionStrategy": "None", "timer": {"duration": "P1D"}}
        ],
        "cancel": {"key": "cancel-it", "target": "done", "triggerType": 0, "versionStrategy": "None"},
        "updateData": {"key": "update", "target": "$self", "triggerType": 0, "versionStrategy": "Patch",
            "onExecutionTasks": [entry(1, "u1")]},
        "timeout": {"key": "too-late", "target": "done", "versionStrategy": "None", "timer": {"duration": "PT1H"}}
    }))
    .unwrap()
}

fn keys(groups: &[TaskGroup<'_>]) -> Vec<(i64, Vec<String>)> {
    groups
        .iter()
        .map(|g| {
            let names = g.tasks.iter().map(|t| match &t.entry.task {
                crate::model::Reference::Explicit(e) => e.key.clone().unwrap(),
                other => panic!("{other:?}"),
            });
            (g.order, names.collect())
        })
        .collect()
}

#[test]
fn resolves_state_transition_and_self() {
    let w = wf();
    let r = resolve(&w, "draft", "submit", Caller::Client).unwrap();
    assert_eq!((r.kind, r.from.as_str(), r.to.as_str(), r.self_target), (TransitionKind::State, "draft", "review", false));
    assert_eq!(r.path, "/states/0/transitions/0");
    let r = resolve(&w, "draft", "again", Caller::Client).unwrap();
    assert_eq!((r.to.as_str(), r.self_target), ("draft", true));
}

#[test]
fn shared_transitions_respect_available_in() {
    let w = wf();
    let r = resolve(&w, "review", "comment", Caller::Client).unwrap();
    assert_eq!((r.kind, r.to.as_str()), (TransitionKind::Shared, "review"));
    let err = resolve(&w, "draft", "comment", Caller::Client).unwrap_err();
    match err {
        GateError::NotAvailable { available, .. } => {
            assert_eq!(available, ["submit", "again", "reset", "cancel-it", "update"]);
        }
        other => panic!("{other:?}"),
    }
    // Empty availableIn: every (non-final) state.
    assert_eq!(resolve(&w, "review", "reset", Caller::Client).unwrap().to, "draft");
}

#[test]
fn well_known_by_key_or_alias() {
    let w = wf();
    assert_eq!(resolve(&w, "draft", "cancel", Caller::Client).unwrap().kind, TransitionKind::Cancel);
    assert_eq!(resolve(&w, "draft", "cancel-it", Caller::Client).unwrap().kind, TransitionKind::Cancel);
    let u = resolve(&w, "review", "update-data", Caller::Client).unwrap();
    assert_eq!((u.kind, u.to.as_str(), u.self_target), (TransitionKind::UpdateData, "review", true));
    assert!(matches!(resolve(&w, "draft", "exit", Caller::Client), Err(GateError::Unknown { .. })));
}

#[test]
fn system_transitions_are_not_client_callable() {
    let w = wf();
    assert!(matches!(resolve(&w, "draft", "tick", Caller::Client), Err(GateError::NotAvailable { .. })));
    assert_eq!(resolve(&w, "draft", "tick", Caller::System).unwrap().to, "review");
    assert!(matches!(resolve(&w, "review", "big", Caller::Client), Err(GateError::NotAvailable { .. })));
}

#[test]
fn gate_errors() {
    let w = wf();
    assert!(matches!(resolve(&w, "draft", "nope", Caller::Client), Err(GateError::Unknown { .. })));
    // Defined in another state: not available here.
    assert!(matches!(resolve(&w, "review", "submit", Caller::Client), Err(GateError::NotAvailable { .. })));
    // Final states take nothing.
    assert!(matches!(resolve(&w, "done", "cancel", Caller::Client), Err(GateError::NotAvailable { .. })));
    assert!(matches!(resolve(&w, "ghost", "submit", Caller::Client), Err(GateError::UnknownState { .. })));
}

#[test]
fn plan_orders_execution_exits_entries() {
    let w = wf();
    let r = resolve(&w, "draft", "submit", Caller::Client).unwrap();
    let p = plan(&w, &r);
    assert!(p.execution.is_empty());
    assert_eq!(keys(&p.exits), vec![(1, vec!["x1a".into(), "x1b".into()]), (2, vec!["x2".into()])]);
    assert_eq!(keys(&p.entries), vec![(1, vec!["r1".into()]), (3, vec!["r3".into(), "r3b".into()])]);
    assert_eq!(p.entries[1].tasks[1].path, "/states/1/onEntries/2");
    assert!(p.change_state && p.rearm_timers);
    let phases: Vec<Phase> = p.groups().map(|g| g.phase).collect();
    assert_eq!(phases, [Phase::Exit, Phase::Exit, Phase::Entry, Phase::Entry]);
}

#[test]
fn self_transition_reruns_exit_and_entry() {
    let w = wf();
    let r = resolve(&w, "draft", "again", Caller::Client).unwrap();
    let p = plan(&w, &r);
    assert_eq!(p.exits.len(), 2);
    assert_eq!(keys(&p.entries), vec![(1, vec!["e1".into()])]);
    assert!(p.rearm_timers);
}

#[test]
fn update_data_is_data_only() {
    let w = wf();
    let r = resolve(&w, "draft", "update", Caller::Client).unwrap();
    let p = plan(&w, &r);
    assert_eq!(keys(&p.execution), vec![(1, vec!["u1".into()])]);
    assert_eq!(p.execution[0].tasks[0].path, "/updateData/onExecutionTasks/0");
    assert!(p.exits.is_empty() && p.entries.is_empty() && !p.change_state && !p.rearm_timers);
}

#[test]
fn start_enters_without_exiting() {
    let w = wf();
    assert_eq!(start_position(&w), "draft");
    let r = resolve_start(&w, start_position(&w)).unwrap();
    assert_eq!((r.kind, r.to.as_str()), (TransitionKind::Start, "draft"));
    let p = plan(&w, &r);
    assert_eq!(keys(&p.execution), vec![(1, vec!["s1".into()])]);
    assert!(p.exits.is_empty());
    assert_eq!(keys(&p.entries), vec![(1, vec!["e1".into()])]);
}

#[test]
fn auto_candidates_rules_first_default_last() {
    let w = wf();
    let c = auto_candidates(&w, "review");
    let names: Vec<(&str, bool)> = c.iter().map(|c| (c.transition.key.as_str(), c.is_default)).collect();
    assert_eq!(names, [("big", false), ("small", false), ("fallback", true)]);
    assert_eq!(c[2].path, "/states/1/transitions/0");
    assert!(auto_candidates(&w, "draft").is_empty());
    assert!(auto_candidates(&w, "done").is_empty());
}

#[test]
fn scheduled_transitions_of_a_state() {
    let w = wf();
    let s = scheduled(&w, "draft");
    let got: Vec<(&str, &str)> = s.iter().map(|s| (s.transition.key.as_str(), s.path.as_str())).collect();
    // The state's own first, then shared ones offered here (empty availableIn: everywhere).
    assert_eq!(got, [("tick", "/states/0/transitions/2"), ("sweep", "/sharedTransitions/3")]);
    let got: Vec<&str> = scheduled(&w, "review").iter().map(|s| s.transition.key.as_str()).collect();
    assert_eq!(got, ["nudge", "sweep"]);
    assert!(scheduled(&w, "done").is_empty(), "final states arm nothing");
    // Fired by the system, from a state where it is offered.
    assert_eq!(resolve(&w, "review", "nudge", Caller::System).unwrap().path, "/sharedTransitions/2");
    assert!(resolve(&w, "review", "nudge", Caller::Client).is_err());
}

#[test]
fn subflow_states_name_their_child() {
    let mut w = wf();
    assert!(subflow(&w, "review").is_none());
    w.states[1].state_type = StateType::SubFlow;
    w.states[1].sub_flow = Some(serde_json::from_value(json!({
        "type": "S", "process": {"key": "kyc", "domain": "d", "flow": "sys-flows", "version": "1.0.0"}
    })).unwrap());
    let (sf, path) = subflow(&w, "review").unwrap();
    assert_eq!((sf.flow_type.as_str(), path.as_str()), ("S", "/states/1/subFlow"));
}

#[test]
fn timeout_is_a_transition_to_its_target() {
    let w = wf();
    let t = timeout_transition(&w).unwrap();
    let r = resolve_timeout(&w, &t, "review").unwrap();
    assert_eq!((r.kind, r.transition.key.as_str(), r.to.as_str()), (TransitionKind::Timeout, TIMEOUT_TRANSITION, "done"));
    assert!(is_final(&w, &r.to));
    assert!(plan(&w, &r).exits.is_empty());
}

#[test]
fn bad_target_is_reported() {
    let mut w = wf();
    w.states[0].transitions[0].target = "nowhere".into();
    assert!(matches!(resolve(&w, "draft", "submit", Caller::Client), Err(GateError::BadTarget { .. })));
}
