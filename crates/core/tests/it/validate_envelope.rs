//! Envelope rules and the typed-model parse: each with a failing and a passing case.

use crate::validate_support;

use serde_json::json;
use validate_support::*;
use vnext_core::validate::{EmptyCatalog, parse_component, validate_component};

#[test]
fn key_must_be_lower_case_letters_digits_and_dashes() {
    let mut w = script_task();
    set(&mut w, "/key", json!("Notify_Task"));
    let d = assert_only(&check(&w), "envelope.key.invalid", "/key");
    assert!(d.message.contains("Notify_Task"), "{}", d.message);
    set(&mut w, "/key", json!("notify-task-2"));
    assert_clean(&validate_component(&w, &EmptyCatalog, &host()));
}

#[test]
fn domain_must_be_lower_case_letters_digits_and_dashes() {
    let mut w = script_task();
    set(&mut w, "/domain", json!("Shop Domain"));
    let d = assert_only(&check(&w), "envelope.domain.invalid", "/domain");
    assert!(d.message.contains("Shop Domain"));
    set(&mut w, "/domain", json!("shop-2"));
    assert_clean(&check(&w));
}

#[test]
fn version_must_be_semver_with_optional_label() {
    let mut w = script_task();
    for bad in ["1.0", "v1.0.0", "1.0.0-rc", "1.0.0+build"] {
        set(&mut w, "/version", json!(bad));
        let d = assert_only(&check(&w), "envelope.version.invalid", "/version");
        assert!(d.message.contains(bad));
    }
    for good in ["2.10.3", "1.0.0-rc.1"] {
        set(&mut w, "/version", json!(good));
        assert_clean(&check(&w));
    }
}

#[test]
fn flow_version_is_required_and_semver() {
    let mut w = script_task();
    set(&mut w, "/flowVersion", json!("one"));
    assert_only(&check(&w), "envelope.flow-version.invalid", "/flowVersion");
    remove(&mut w, "/flowVersion");
    let d = assert_only(&check(&w), "envelope.flow-version.invalid", "");
    assert!(d.message.contains("flowVersion"));
    set(&mut w, "/flowVersion", json!("1.2.0"));
    assert_clean(&check(&w));
}

#[test]
fn flow_must_be_a_known_component_flow() {
    let mut w = script_task();
    set(&mut w, "/flow", json!("sys-mappings"));
    let d = assert_only(&check(&w), "envelope.flow.unknown", "/flow");
    assert!(
        d.message.contains("sys-mappings") && d.message.contains("not supported"),
        "{}",
        d.message
    );
    set(&mut w, "/flow", json!("sys-tasks"));
    assert_clean(&check(&w));
}

#[test]
fn tags_must_be_present_and_non_empty_strings() {
    let mut w = script_task();
    set(&mut w, "/tags", json!([]));
    assert_only(&check(&w), "envelope.tags.missing", "");
    remove(&mut w, "/tags");
    assert_only(&check(&w), "envelope.tags.missing", "");
    set(&mut w, "/tags", json!(["ok", 7, " "]));
    let d = check(&w);
    assert_has(&d, "envelope.tags.invalid", "/tags/1");
    assert_has(&d, "envelope.tags.invalid", "/tags/2");
    assert_eq!(d.len(), 2, "{}", render(&d));
    set(&mut w, "/tags", json!("shop"));
    assert_only(&check(&w), "envelope.wrong-type", "/tags");
    set(&mut w, "/tags", json!(["shop", "billing"]));
    assert_clean(&check(&w));
}

#[test]
fn missing_and_mistyped_envelope_fields_are_all_reported() {
    let w = json!({"version": 3, "flow": "sys-tasks", "tags": ["x"], "flowVersion": "1.0.0"});
    let d = check(&w);
    let missing: Vec<_> = d
        .iter()
        .filter(|d| d.code == "envelope.missing-field")
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(missing.len(), 3, "key, domain, attributes: {}", render(&d));
    assert!(missing.iter().any(|m| m.contains("`key`")));
    assert!(missing.iter().any(|m| m.contains("`domain`")));
    assert!(missing.iter().any(|m| m.contains("`attributes`")));
    assert_has(&d, "envelope.wrong-type", "/version");
    assert_only(&check(&json!([1, 2])), "envelope.wrong-type", "");
}

#[test]
fn a_type_mismatch_points_at_the_offending_value() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/1/transitions/2/triggerType",
        json!(7),
    );
    let d = assert_only(
        &check(&w),
        "component.parse",
        "/attributes/states/1/transitions/2/triggerType",
    );
    assert!(d.message.contains('7'), "{}", d.message);
    assert_eq!(d.component.as_deref(), Some("sys-flows/order@1.0.0"));

    let mut w = workflow();
    remove(&mut w, "/attributes/states/2/stateType");
    let d = assert_only(&check(&w), "component.parse", "/attributes/states/2");
    assert!(d.message.contains("stateType"), "{}", d.message);

    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/0/transitions/0/schema",
        json!("order-payload"),
    );
    let d = assert_only(
        &check(&w),
        "component.parse",
        "/attributes/states/0/transitions/0/schema",
    );
    assert!(
        d.message.contains("\"ref\""),
        "explains the accepted shapes: {}",
        d.message
    );
}

#[test]
fn envelope_problems_and_attribute_rules_are_reported_together() {
    let mut w = workflow();
    set(&mut w, "/key", json!("Order"));
    set(&mut w, "/attributes/states/3/key", json!("draft"));
    let d = check(&w);
    assert_has(&d, "envelope.key.invalid", "/key");
    assert_has(
        &d,
        "workflow.state.duplicate-key",
        "/attributes/states/3/key",
    );
}

#[test]
fn parse_component_builds_the_typed_model_or_says_where_it_fails() {
    let component = parse_component(&workflow()).expect("parses");
    assert_eq!(component.identity(), ("order", "1.0.0", "shop"));
    let mut w = http_task();
    set(&mut w, "/attributes/type", json!("99"));
    let errors = parse_component(&w).expect_err("unknown task type");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].pointer, "/attributes/type");
    assert!(errors[0].message.contains("99"));
}
