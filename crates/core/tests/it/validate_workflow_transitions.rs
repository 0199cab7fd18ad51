//! Transition rules of workflows (targets, keys, triggers, timers, shared and
//! well-known transitions): each with a failing and a passing case.

use crate::validate_support;

use serde_json::json;
use validate_support::*;

#[test]
fn transition_keys_are_unique_within_a_state() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/1/transitions/1/key",
        json!("approve"),
    );
    let d = assert_only(
        &check(&w),
        "workflow.transition.duplicate-key",
        "/attributes/states/1/transitions/1/key",
    );
    assert!(d.message.contains("`approve`") && d.message.contains("`review`"));
    // The same key in two different states is fine.
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/1/transitions/0/key",
        json!("submit"),
    );
    assert_clean(&check(&w));
}

#[test]
fn transition_keys_follow_the_name_pattern() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/1/transitions/0/key",
        json!("Approve It"),
    );
    let d = assert_only(
        &check(&w),
        "workflow.transition.invalid-key",
        "/attributes/states/1/transitions/0/key",
    );
    assert!(d.message.contains("Approve It"));
}

#[test]
fn shared_transition_keys_are_unique() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/sharedTransitions/1/key",
        json!("abort"),
    );
    let d = assert_only(
        &check(&w),
        "workflow.shared.duplicate-key",
        "/attributes/sharedTransitions/1/key",
    );
    assert!(d.message.contains("`abort`"));
}

#[test]
fn targets_exist_or_are_self() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/1/transitions/0/target",
        json!("aproved"),
    );
    set(
        &mut w,
        "/attributes/sharedTransitions/0/target",
        json!("gone"),
    );
    set(&mut w, "/attributes/cancel/target", json!("cancelled"));
    let d = check(&w);
    let t = assert_has(
        &d,
        "workflow.transition.unknown-target",
        "/attributes/states/1/transitions/0/target",
    );
    assert!(
        t.message.contains("`aproved`") && t.message.contains("`approve`"),
        "{}",
        t.message
    );
    assert_has(
        &d,
        "workflow.transition.unknown-target",
        "/attributes/sharedTransitions/0/target",
    );
    assert_has(
        &d,
        "workflow.transition.unknown-target",
        "/attributes/cancel/target",
    );
    assert_eq!(d.len(), 3, "{}", render(&d));
    // `$self` is always a valid target (the fixture's `remind` and `nightly` use it).
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/1/transitions/0/target",
        json!("$self"),
    );
    assert_clean(&check(&w));
}

#[test]
fn start_transition_targets_a_defined_state_and_is_manual() {
    let mut w = workflow();
    set(&mut w, "/attributes/startTransition/target", json!("$self"));
    assert_only(
        &check(&w),
        "workflow.start.unknown-target",
        "/attributes/startTransition/target",
    );
    set(
        &mut w,
        "/attributes/startTransition/target",
        json!("missing"),
    );
    let d = assert_only(
        &check(&w),
        "workflow.start.unknown-target",
        "/attributes/startTransition/target",
    );
    assert!(d.message.contains("`missing`"));
    set(
        &mut w,
        "/attributes/startTransition/target",
        json!("review"),
    );
    assert_clean(&check(&w));
    set(&mut w, "/attributes/startTransition/triggerType", json!(1));
    set(&mut w, "/attributes/startTransition/rule", rule());
    assert_only(
        &check(&w),
        "workflow.start.trigger-type",
        "/attributes/startTransition/triggerType",
    );
}

#[test]
fn update_data_targets_self() {
    let mut w = workflow();
    set(&mut w, "/attributes/updateData/target", json!("review"));
    let d = assert_only(
        &check(&w),
        "workflow.update-data.target-not-self",
        "/attributes/updateData/target",
    );
    assert!(d.message.contains("$self"));
}

#[test]
fn automatic_transitions_need_a_rule_unless_default() {
    let mut w = workflow();
    remove(&mut w, "/attributes/states/0/transitions/1/rule");
    let d = assert_only(
        &check(&w),
        "workflow.transition.missing-rule",
        "/attributes/states/0/transitions/1",
    );
    assert!(d.message.contains("`auto-approve`") && d.message.contains("triggerKind"));
    // A null rule counts as missing too.
    set(
        &mut w,
        "/attributes/states/0/transitions/1/rule",
        json!(null),
    );
    assert_only(
        &check(&w),
        "workflow.transition.missing-rule",
        "/attributes/states/0/transitions/1",
    );
    // The default (`fallback`, triggerKind 10) has no rule and is valid; so may a default with one.
    let mut w = workflow();
    set(&mut w, "/attributes/states/0/transitions/2/rule", rule());
    assert_clean(&check(&w));
}

#[test]
fn scheduled_transitions_need_a_timer() {
    let mut w = workflow();
    remove(&mut w, "/attributes/states/1/transitions/2/timer");
    let d = assert_only(
        &check(&w),
        "workflow.transition.missing-timer",
        "/attributes/states/1/transitions/2",
    );
    assert!(d.message.contains("`expire`"));
}

#[test]
fn declarative_timers_have_exactly_one_schedule() {
    let at = "/attributes/states/1/transitions/2/timer";
    let mut w = workflow();
    set(&mut w, at, json!({}));
    assert_only(&check(&w), "timer.no-schedule", at);
    set(&mut w, at, json!({"duration": 8}));
    let d = assert_only(&check(&w), "timer.no-schedule", at);
    assert!(d.message.contains("as a string"), "{}", d.message);
    set(&mut w, at, json!({"duration": "PT8S", "cron": "0 9 * * *"}));
    let d = assert_only(&check(&w), "timer.ambiguous", at);
    assert!(d.message.contains("duration and cron"));
    for ok in [
        json!({"cron": "*/5 * * * *"}),
        json!({"at": "2030-01-01T09:00:00+03:00"}),
        json!({"duration": "P1DT2H"}),
    ] {
        set(&mut w, at, ok);
        assert_clean(&check(&w));
    }
}

#[test]
fn declarative_timer_values_must_parse() {
    let at = "/attributes/states/1/transitions/2/timer";
    let mut w = workflow();
    set(&mut w, at, json!({"duration": "8 seconds"}));
    let d = assert_only(
        &check(&w),
        "timer.duration.invalid",
        &format!("{at}/duration"),
    );
    assert!(d.message.contains("8 seconds"));
    set(&mut w, at, json!({"cron": "99 * * * *"}));
    assert_only(&check(&w), "timer.cron.invalid", &format!("{at}/cron"));
    set(&mut w, at, json!({"at": "tomorrow 9am"}));
    assert_only(&check(&w), "timer.at.invalid", &format!("{at}/at"));
    set(
        &mut w,
        at,
        json!({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}),
    );
    let d = assert_only(
        &check(&w),
        "timer.timezone.unknown",
        &format!("{at}/timezone"),
    );
    assert!(d.message.contains("Mars/Olympus"));
    set(
        &mut w,
        at,
        json!({"duration": "PT8S", "timezone": "Europe/Istanbul"}),
    );
    let d = assert_only(
        &check(&w),
        "timer.timezone.without-cron",
        &format!("{at}/timezone"),
    );
    assert!(d.message.contains("cron"), "{}", d.message);
    set(
        &mut w,
        at,
        json!({"cron": "0 9 * * *", "timezone": "America/New_York"}),
    );
    assert_clean(&check(&w));
}

#[test]
fn timer_scripts_define_handler() {
    let at = "/attributes/states/1/transitions/3/timer";
    let mut w = workflow();
    set(
        &mut w,
        at,
        rhai("timer", "fn schedule(ctx) { #{ duration: \"PT1H\" } }"),
    );
    let d = assert_only(&check(&w), "script.missing-function", at);
    assert!(d.message.contains("fn handler(ctx)"));
}

#[test]
fn shared_transitions_are_never_automatic() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/sharedTransitions/0/triggerType",
        json!(1),
    );
    set(&mut w, "/attributes/sharedTransitions/0/rule", rule());
    let d = assert_only(
        &check(&w),
        "workflow.shared.trigger-type",
        "/attributes/sharedTransitions/0/triggerType",
    );
    assert!(d.message.contains("`abort`"));
    // Event shared transitions are allowed.
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/sharedTransitions/0/triggerType",
        json!(3),
    );
    assert_clean(&check(&w));
}

#[test]
fn available_in_names_existing_states() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/sharedTransitions/0/availableIn",
        json!(["draft", {"state": "reveiw"}]),
    );
    let d = assert_only(
        &check(&w),
        "workflow.available-in.unknown-state",
        "/attributes/sharedTransitions/0/availableIn/1",
    );
    assert!(d.message.contains("`reveiw`"));
    set(&mut w, "/attributes/cancel/availableIn", json!(["nope"]));
    assert_has(
        &check(&w),
        "workflow.available-in.unknown-state",
        "/attributes/cancel/availableIn/0",
    );
    // Empty means every state.
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/sharedTransitions/0/availableIn",
        json!([]),
    );
    assert_clean(&check(&w));
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut w = workflow();
    set(&mut w, "/attributes/states/3/key", json!("draft"));
    remove(&mut w, "/attributes/states/0/transitions/1/rule");
    remove(&mut w, "/attributes/states/1/transitions/2/timer");
    set(
        &mut w,
        "/attributes/states/1/transitions/0/target",
        json!("$nowhere"),
    );
    set(
        &mut w,
        "/attributes/states/0/transitions/0/onExecutionTasks/0/task/version",
        json!("9"),
    );
    set(
        &mut w,
        "/attributes/states/1/onEntries/0/mapping",
        json!({"location": "./src/Notify.csx", "code": b64("using System;")}),
    );
    let d = check(&w);
    let mut codes: Vec<&str> = d.iter().map(|d| d.code).collect();
    codes.sort();
    codes.dedup();
    for expected in [
        "workflow.state.duplicate-key",
        "workflow.transition.missing-rule",
        "workflow.transition.missing-timer",
        "workflow.transition.unknown-target",
        "reference.unresolved",
        "script.csharp",
    ] {
        assert!(
            codes.contains(&expected),
            "{expected} missing from:\n{}",
            render(&d)
        );
    }
}
