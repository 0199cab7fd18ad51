//! Error-boundary resolution: actions, level precedence, priorities, code and type
//! matching, retry exhaustion and fallback.

use chrono::TimeDelta;
use serde_json::json;
use vnext_core::boundary::{BoundaryDecision, BoundaryLevel, LOST_CODE, RuleOrigin, resolve, resolve_lost};
use vnext_core::model::{ErrorAction, ErrorBoundary};
use vnext_core::traits::TaskError;

fn boundary(rules: serde_json::Value) -> ErrorBoundary {
    serde_json::from_value(json!({ "onError": rules })).unwrap()
}

fn err(code: &str) -> TaskError {
    TaskError::new(code, "upstream said no", true)
}

fn origin(level: BoundaryLevel, index: usize, priority: i64) -> RuleOrigin {
    RuleOrigin { level, index, priority }
}

const RETRY_TWICE: &str = r#"{"action": 1, "errorCodes": ["5xx"], "retryPolicy": {"initialDelay": "PT1S", "maxRetries": 2, "useJitter": false}}"#;

fn rule(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn no_boundary_faults() {
    let decision = resolve([None, None, None], &err("Task:503"), 1);
    match decision {
        BoundaryDecision::Fault { reason, origin: None } => {
            assert!(reason.contains("Task:503") && reason.contains("no error boundary handles it"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_action() {
    let cases = [
        (json!([{"action": 0}]), "abort"),
        (json!([{"action": 2, "transition": "rollback-payment"}]), "rollback"),
        (json!([{"action": 3}]), "ignore"),
        (json!([{"action": 4, "transition": "notify-ops"}]), "notify"),
        (json!([{"action": 5}]), "log"),
        (json!([{"action": 0, "logOnly": true}]), "log-only"),
    ];
    for (rules, name) in cases {
        let b = boundary(rules);
        let decision = resolve([Some(&b), None, None], &err("Task:503"), 1);
        let at = origin(BoundaryLevel::Task, 0, 100);
        match (name, decision) {
            ("abort", BoundaryDecision::Fault { reason, origin: Some(o) }) => {
                assert_eq!(o, at);
                assert!(reason.contains("aborted by task-level errorBoundary.onError[0]"), "{reason}");
            }
            ("rollback", BoundaryDecision::RunTransition { key, action: ErrorAction::Rollback, origin: o }) => {
                assert_eq!((key.as_str(), o), ("rollback-payment", at));
            }
            ("notify", BoundaryDecision::RunTransition { key, action: ErrorAction::Notify, origin: o }) => {
                assert_eq!((key.as_str(), o), ("notify-ops", at));
            }
            ("ignore", BoundaryDecision::Continue { log: false, origin: o }) => assert_eq!(o, at),
            ("log" | "log-only", BoundaryDecision::Continue { log: true, origin: o }) => assert_eq!(o, at),
            (name, other) => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn retry_counts_attempts_then_faults() {
    let b = boundary(json!([rule(RETRY_TWICE)]));
    for attempt in [1, 2] {
        match resolve([Some(&b), None, None], &err("Task:503"), attempt) {
            BoundaryDecision::Retry { policy, retry_number, origin: o } => {
                assert_eq!(retry_number, attempt);
                assert_eq!(o, origin(BoundaryLevel::Task, 0, 100));
                assert_eq!(policy.delay_for(retry_number, 0.0), Some(TimeDelta::seconds(i64::from(attempt))));
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    // Attempt 0 is read as the first attempt.
    assert!(matches!(resolve([Some(&b), None, None], &err("Task:503"), 0), BoundaryDecision::Retry { retry_number: 1, .. }));
    // 1 + maxRetries = 3 attempts have failed: no fallback, so the instance faults.
    match resolve([Some(&b), None, None], &err("Task:503"), 3) {
        BoundaryDecision::Fault { reason, origin: Some(o) } => {
            assert_eq!(o, origin(BoundaryLevel::Task, 0, 100));
            assert!(reason.contains("exhausted after 3 attempts"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn exhausted_retry_falls_back_to_the_next_non_retry_rule() {
    // Same level: the Retry rule has priority 1, a second Retry and a Notify follow.
    let task = boundary(json!([
        {"action": 4, "transition": "notify-ops", "priority": 50},
        {"action": 1, "priority": 10, "retryPolicy": {"initialDelay": "PT5S", "maxRetries": 9}},
        {"action": 1, "priority": 1, "retryPolicy": {"initialDelay": "PT1S", "maxRetries": 1}},
    ]));
    assert!(matches!(
        resolve([Some(&task), None, None], &err("Task:503"), 1),
        BoundaryDecision::Retry { retry_number: 1, origin: RuleOrigin { index: 2, priority: 1, .. }, .. }
    ));
    // Exhausted: other Retry rules are skipped, the Notify rule decides.
    match resolve([Some(&task), None, None], &err("Task:503"), 2) {
        BoundaryDecision::RunTransition { key, origin: o, .. } => {
            assert_eq!(key, "notify-ops");
            assert_eq!(o, origin(BoundaryLevel::Task, 0, 50));
        }
        other => panic!("{other:?}"),
    }

    // Fallback found at an outer level.
    let task = boundary(json!([rule(RETRY_TWICE)]));
    let workflow = boundary(json!([{"action": 2, "transition": "compensate"}]));
    match resolve([Some(&task), None, Some(&workflow)], &err("Task:502"), 3) {
        BoundaryDecision::RunTransition { key, action: ErrorAction::Rollback, origin: o } => {
            assert_eq!(key, "compensate");
            assert_eq!(o.level, BoundaryLevel::Workflow);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn levels_take_precedence_over_priorities() {
    let task = boundary(json!([{"action": 3, "priority": 999}]));
    let state = boundary(json!([{"action": 0, "priority": 1}]));
    let workflow = boundary(json!([{"action": 5, "priority": 1}]));
    assert!(matches!(
        resolve([Some(&task), Some(&state), Some(&workflow)], &err("Task:503"), 1),
        BoundaryDecision::Continue { log: false, origin: RuleOrigin { level: BoundaryLevel::Task, .. } }
    ));
    assert!(matches!(
        resolve([None, Some(&state), Some(&workflow)], &err("Task:503"), 1),
        BoundaryDecision::Fault { origin: Some(RuleOrigin { level: BoundaryLevel::State, .. }), .. }
    ));
    assert!(matches!(
        resolve([None, None, Some(&workflow)], &err("Task:503"), 1),
        BoundaryDecision::Continue { log: true, origin: RuleOrigin { level: BoundaryLevel::Workflow, .. } }
    ));
    // A level whose rules do not match passes the error outwards.
    let task_404 = boundary(json!([{"action": 3, "errorCodes": ["404"]}]));
    assert!(matches!(
        resolve([Some(&task_404), Some(&state), None], &err("Task:503"), 1),
        BoundaryDecision::Fault { origin: Some(RuleOrigin { level: BoundaryLevel::State, .. }), .. }
    ));
}

#[test]
fn lower_priority_first_default_100_ties_keep_order() {
    let b = boundary(json!([
        {"action": 5, "priority": 150},
        {"action": 3},
        {"action": 0},
        {"action": 4, "transition": "x", "priority": 101},
    ]));
    assert_eq!(
        resolve([Some(&b), None, None], &err("Task:500"), 1),
        BoundaryDecision::Continue { log: false, origin: origin(BoundaryLevel::Task, 1, 100) }
    );
    let b = boundary(json!([{"action": 3, "priority": 7}, {"action": 5, "priority": 6}]));
    assert_eq!(
        resolve([Some(&b), None, None], &err("Task:500"), 1),
        BoundaryDecision::Continue { log: true, origin: origin(BoundaryLevel::Task, 1, 6) }
    );
}

#[test]
fn codes_and_types_select_rules() {
    let b = boundary(json!([
        {"action": 2, "transition": "on-404", "errorCodes": ["Task:404"], "priority": 1},
        {"action": 4, "transition": "on-5xx", "errorCodes": ["5xx"], "priority": 2},
        {"action": 4, "transition": "on-timeout", "errorTypes": ["TimeoutException"], "priority": 3},
        {"action": 5, "errorCodes": ["*"], "priority": 999},
    ]));
    let pick = |code: &str| match resolve([Some(&b), None, None], &err(code), 1) {
        BoundaryDecision::RunTransition { key, .. } => key,
        BoundaryDecision::Continue { log: true, .. } => "logged".into(),
        other => panic!("{code}: {other:?}"),
    };
    assert_eq!(pick("Task:404"), "on-404");
    assert_eq!(pick("Task:503"), "on-5xx");
    assert_eq!(pick("Task:500"), "on-5xx");
    assert_eq!(pick("Task:timeout"), "on-timeout");
    assert_eq!(pick("Task:400"), "logged");
    // Codes and types must both match when both are given.
    let both = boundary(json!([{"action": 3, "errorCodes": ["5xx"], "errorTypes": ["timeout"]}]));
    assert!(matches!(resolve([Some(&both), None, None], &err("Task:503"), 1), BoundaryDecision::Fault { origin: None, .. }));
}

#[test]
fn rules_that_cannot_be_carried_out_fault_with_a_reason() {
    for (rules, needle) in [
        (json!([{"action": 1}]), "Retry rule without a retryPolicy"),
        (json!([{"action": 1, "retryPolicy": {"initialDelay": "PT0S"}}]), "initialDelay must be greater than zero"),
        (json!([{"action": 2}]), "Rollback rule without a transition"),
        (json!([{"action": 4, "transition": " "}]), "Notify rule without a transition"),
    ] {
        let b = boundary(rules);
        match resolve([None, Some(&b), None], &err("Task:503"), 1) {
            BoundaryDecision::Fault { reason, origin: Some(o) } => {
                assert_eq!(o.level, BoundaryLevel::State);
                assert!(reason.contains(needle), "{reason}");
            }
            other => panic!("{needle}: {other:?}"),
        }
    }
}

#[test]
fn a_lost_attempt_takes_any_retry_rule_whatever_its_codes() {
    // The retry rule names 5xx only; a lost outcome is unknown, so it applies.
    let b = boundary(json!([rule(RETRY_TWICE)]));
    match resolve_lost([Some(&b), None, None], "charge", 1) {
        BoundaryDecision::Retry { retry_number: 1, policy, origin: o } => {
            assert_eq!(o, origin(BoundaryLevel::Task, 0, 100));
            assert_eq!(policy.initial_delay, TimeDelta::seconds(1));
        }
        other => panic!("{other:?}"),
    }
    // The same rule does not take an ordinary error it does not name.
    assert!(matches!(resolve([Some(&b), None, None], &err("Task:404"), 1), BoundaryDecision::Fault { origin: None, .. }));
    // Exhausted after 1 + maxRetries attempts: a fault that says so and names the lost outcome.
    match resolve_lost([Some(&b), None, None], "charge", 3) {
        BoundaryDecision::Fault { reason, origin: Some(_) } => {
            assert!(reason.contains(LOST_CODE) && reason.contains("exhausted after 3 attempts"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lost_attempt_meets_the_other_rules_by_code_and_in_order() {
    // An Abort of higher priority (a lower number) that matches every code comes first.
    let abort_first = boundary(json!([rule(RETRY_TWICE), {"action": 0, "priority": 1}]));
    assert!(matches!(resolve_lost([Some(&abort_first), None, None], "charge", 1), BoundaryDecision::Fault { origin: Some(_), .. }));
    // A Rollback for 5xx only does not take a lost outcome; one for `Lease:*` does.
    let narrow = boundary(json!([{"action": 2, "errorCodes": ["5xx"], "transition": "undo"}]));
    assert!(matches!(resolve_lost([Some(&narrow), None, None], "charge", 1), BoundaryDecision::Fault { origin: None, .. }));
    let lease = boundary(json!([{"action": 2, "errorCodes": ["Lease:*"], "transition": "undo"}]));
    assert!(matches!(
        resolve_lost([None, Some(&lease), None], "charge", 1),
        BoundaryDecision::RunTransition { ref key, .. } if key == "undo"
    ));
    // By type: `expired`.
    let by_type = boundary(json!([{"action": 3, "errorTypes": ["ExpiredException"]}]));
    assert!(matches!(resolve_lost([None, None, Some(&by_type)], "charge", 1), BoundaryDecision::Continue { log: false, .. }));
    // A retry rule at the workflow level still applies to a task without one.
    let outer = boundary(json!([rule(RETRY_TWICE)]));
    assert!(matches!(resolve_lost([None, None, Some(&outer)], "charge", 2), BoundaryDecision::Retry { retry_number: 2, .. }));
}
