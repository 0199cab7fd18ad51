//! State rules of workflows: each with a failing and a passing case.

use crate::validate_support;

use serde_json::json;
use validate_support::*;

#[test]
fn state_keys_are_unique() {
    let mut w = workflow();
    set(&mut w, "/attributes/states/3/key", json!("review"));
    // The renamed final state leaves the old key `approved` unreferenced targets behind;
    // point those at the duplicate so only the duplicate remains.
    let mut text = w.to_string();
    text = text.replace("\"target\":\"approved\"", "\"target\":\"review\"");
    let w: serde_json::Value = serde_json::from_str(&text).unwrap();
    let d = assert_only(
        &check(&w),
        "workflow.state.duplicate-key",
        "/attributes/states/3/key",
    );
    assert!(
        d.message.contains("`review`") && d.message.contains("/attributes/states/1"),
        "{}",
        d.message
    );
    assert_clean(&check(&workflow()));
}

#[test]
fn state_keys_follow_the_name_pattern() {
    let mut w = workflow();
    let text = w.to_string().replace("\"approved\"", "\"Approved_State\"");
    w = serde_json::from_str(&text).unwrap();
    let d = assert_only(
        &check(&w),
        "workflow.state.invalid-key",
        "/attributes/states/3/key",
    );
    assert!(d.message.contains("Approved_State"));
}

#[test]
fn at_most_one_initial_state() {
    let mut w = workflow();
    set(&mut w, "/attributes/states/1/stateType", json!(1));
    let d = assert_only(
        &check(&w),
        "workflow.state.multiple-initial",
        "/attributes/states/1/stateType",
    );
    assert!(d.message.contains("`review`") && d.message.contains("`draft`"));
    // No initial state at all is allowed: the instance starts in the implicit `$start`.
    let mut w = workflow();
    set(&mut w, "/attributes/states/0/stateType", json!(2));
    assert_clean(&check(&w));
}

#[test]
fn final_states_have_no_transitions() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/3/transitions",
        json!([
            {"key": "reopen", "target": "draft", "triggerType": 0, "versionStrategy": "None", "labels": labels("Reopen")}
        ]),
    );
    let d = assert_only(
        &check(&w),
        "workflow.state.final-has-transitions",
        "/attributes/states/3/transitions",
    );
    assert!(d.message.contains("`approved`"));
    set(&mut w, "/attributes/states/3/transitions", json!([]));
    assert_clean(&check(&w));
}

#[test]
fn at_most_one_default_automatic_transition_per_state() {
    let mut w = workflow();
    push(
        &mut w,
        "/attributes/states/0/transitions",
        json!(
            {"key": "fallback-2", "target": "approved", "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": labels("Second")}
        ),
    );
    let d = assert_only(
        &check(&w),
        "workflow.state.multiple-defaults",
        "/attributes/states/0/transitions/3/triggerKind",
    );
    assert!(d.message.contains("`fallback-2`") && d.message.contains("`fallback`"));
    // One default per state, in two different states, is fine.
    assert_clean(&check(&workflow()));
}

#[test]
fn subflow_states_name_their_child() {
    let mut w = workflow();
    remove(&mut w, "/attributes/states/2/subFlow");
    let d = assert_only(
        &check(&w),
        "workflow.state.subflow-missing",
        "/attributes/states/2",
    );
    assert!(d.message.contains("`child`"));
}

#[test]
fn subflow_mapping_defines_input_or_output() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/2/subFlow/mapping",
        rhai("sub", "fn handler(ctx) { #{} }"),
    );
    let d = assert_only(
        &check(&w),
        "script.missing-function",
        "/attributes/states/2/subFlow/mapping",
    );
    assert!(
        d.message.contains("fn input(ctx)") && d.message.contains("./src/sub.rhai"),
        "{}",
        d.message
    );
    set(
        &mut w,
        "/attributes/states/2/subFlow/mapping",
        rhai("sub", "fn output(ctx) { ctx.response.data }"),
    );
    assert_clean(&check(&w));
}

#[test]
fn state_task_entries_need_an_order_from_one() {
    let mut w = workflow();
    set(&mut w, "/attributes/states/1/onEntries/0/order", json!(0));
    let d = assert_only(
        &check(&w),
        "workflow.task-entry.order-invalid",
        "/attributes/states/1/onEntries/0/order",
    );
    assert!(d.message.contains("order 0"));
    set(&mut w, "/attributes/states/1/onEntries/0/order", json!(3));
    assert_clean(&check(&w));
}

#[test]
fn workflow_type_is_c_f_s_or_p() {
    let mut w = workflow();
    set(&mut w, "/attributes/type", json!("X"));
    assert_only(&check(&w), "workflow.type.invalid", "/attributes/type");
    for ok in ["C", "S", "P"] {
        set(&mut w, "/attributes/type", json!(ok));
        assert_clean(&check(&w));
    }
}

#[test]
fn workflow_timeout_targets_a_state_and_has_a_duration() {
    let mut w = workflow();
    set(&mut w, "/attributes/timeout/target", json!("nowhere"));
    set(&mut w, "/attributes/timeout/timer/duration", json!("1 day"));
    let d = check(&w);
    assert_has(
        &d,
        "workflow.timeout.unknown-target",
        "/attributes/timeout/target",
    );
    assert_has(
        &d,
        "timer.duration.invalid",
        "/attributes/timeout/timer/duration",
    );
    assert_eq!(d.len(), 2, "{}", render(&d));
}

#[test]
fn error_boundaries_retry_with_a_policy_and_iso_delays() {
    let mut w = workflow();
    remove(&mut w, "/attributes/errorBoundary/onError/0/retryPolicy");
    assert_only(
        &check(&w),
        "error-boundary.retry-policy-missing",
        "/attributes/errorBoundary/onError/0",
    );
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/errorBoundary/onError/0/retryPolicy/initialDelay",
        json!("5s"),
    );
    let d = assert_only(
        &check(&w),
        "error-boundary.delay.invalid",
        "/attributes/errorBoundary/onError/0/retryPolicy/initialDelay",
    );
    assert!(d.message.contains("5s"));
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/errorBoundary/onError/0/retryPolicy/maxDelay",
        json!("PT1S"),
    );
    let d = assert_only(
        &check(&w),
        "error-boundary.delay.invalid",
        "/attributes/errorBoundary/onError/0/retryPolicy/maxDelay",
    );
    assert!(
        d.message.contains("PT1S") && d.message.contains("PT5S"),
        "{}",
        d.message
    );
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/errorBoundary/onError/0/retryPolicy/backoffMultiplier",
        json!(0.5),
    );
    assert_only(
        &check(&w),
        "error-boundary.retry-policy-invalid",
        "/attributes/errorBoundary/onError/0/retryPolicy/backoffMultiplier",
    );
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/errorBoundary/onError/0/retryPolicy/backoffType",
        json!(7),
    );
    assert_only(
        &check(&w),
        "error-boundary.retry-policy-invalid",
        "/attributes/errorBoundary/onError/0/retryPolicy/backoffType",
    );
    // Abort needs no policy.
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/errorBoundary/onError/0",
        json!({"action": 0}),
    );
    assert_clean(&check(&w));
}
