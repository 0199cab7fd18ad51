//! Task and schema rules: supported task types, required configs, and JSON
//! Schemas that compile.

use crate::validate_support;

use serde_json::json;
use validate_support::*;

#[test]
fn unsupported_task_types_are_a_clear_error() {
    let mut t = http_task();
    set(&mut t, "/attributes/type", json!("4"));
    let d = assert_only(&check(&t), "task.type.unsupported", "/attributes/type");
    assert!(
        d.message.contains("\"4\"")
            && d.message.contains("dapr-pubsub")
            && d.message.contains("\"6\" http"),
        "{}",
        d.message
    );
    // Types that need a Dapr sidecar say why, and what to use instead.
    for (code, name) in [("2", "dapr-binding"), ("20", "dapr-conversation")] {
        let mut t = http_task();
        set(&mut t, "/attributes/type", json!(code));
        let d = assert_only(&check(&t), "task.type.unsupported", "/attributes/type");
        assert!(d.message.contains(name) && d.message.contains("sidecar") && d.message.contains("HTTP task"), "{}", d.message);
    }
    for supported in ["7", "11", "12", "13", "19"] {
        let mut t = script_task();
        set(&mut t, "/attributes/type", json!(supported));
        set(
            &mut t,
            "/attributes/config",
            json!({"domain": "shop", "flow": "order", "transitionName": "approve"}),
        );
        assert_clean(&check(&t));
    }
}

#[test]
fn http_tasks_need_url_and_method() {
    let mut t = http_task();
    remove(&mut t, "/attributes/config/url");
    remove(&mut t, "/attributes/config/method");
    let d = check(&t);
    assert_eq!(d.len(), 2, "{}", render(&d));
    assert!(
        d.iter()
            .all(|d| d.code == "task.config.missing-field" && d.pointer == "/attributes/config")
    );
    assert!(d[0].message.contains("`url`") && d[1].message.contains("`method`"));
    let mut t = http_task();
    set(&mut t, "/attributes/config/url", json!(""));
    assert_only(
        &check(&t),
        "task.config.missing-field",
        "/attributes/config/url",
    );
}

#[test]
fn http_task_config_fields_have_their_types() {
    let mut t = http_task();
    set(&mut t, "/attributes/config/method", json!("FETCH"));
    let d = assert_only(
        &check(&t),
        "task.config.invalid",
        "/attributes/config/method",
    );
    assert!(d.message.contains("FETCH"));
    let mut t = http_task();
    set(&mut t, "/attributes/config/timeoutSeconds", json!("ten"));
    assert_only(
        &check(&t),
        "task.config.invalid",
        "/attributes/config/timeoutSeconds",
    );
    let mut t = http_task();
    set(&mut t, "/attributes/config/url", json!(42));
    assert_only(&check(&t), "task.config.invalid", "/attributes/config/url");
}

#[test]
fn instance_tasks_need_domain_and_flow() {
    for code in ["11", "13", "19"] {
        let mut t = script_task();
        set(&mut t, "/attributes/type", json!(code));
        set(&mut t, "/attributes/config", json!({"domain": "shop"}));
        let d = assert_only(
            &check(&t),
            "task.config.missing-field",
            "/attributes/config",
        );
        assert!(d.message.contains("`flow`"), "{code}: {}", d.message);
        set(
            &mut t,
            "/attributes/config",
            json!({"domain": "shop", "flow": "order"}),
        );
        assert_clean(&check(&t));
    }
}

#[test]
fn direct_trigger_tasks_also_need_the_transition() {
    let mut t = script_task();
    set(&mut t, "/attributes/type", json!("12"));
    set(
        &mut t,
        "/attributes/config",
        json!({"domain": "shop", "flow": "order"}),
    );
    let d = assert_only(
        &check(&t),
        "task.config.missing-field",
        "/attributes/config",
    );
    assert!(d.message.contains("`transitionName`"));
}

#[test]
fn task_config_is_an_object() {
    let mut t = script_task();
    remove(&mut t, "/attributes/config");
    let d = assert_only(&check(&t), "task.config.invalid", "/attributes/config");
    assert!(d.message.contains("{}"));
    set(&mut t, "/attributes/config", json!([]));
    assert_only(&check(&t), "task.config.invalid", "/attributes/config");
}

#[test]
fn json_schemas_compile() {
    let mut s = schema_component();
    set(
        &mut s,
        "/attributes/schema/properties/amount/type",
        json!("money"),
    );
    let d = assert_only(
        &check(&s),
        "schema.compile",
        "/attributes/schema/properties/amount/type",
    );
    assert!(d.message.contains("money"), "{}", d.message);
    let mut s = schema_component();
    set(
        &mut s,
        "/attributes/schema/properties/amount/minimum",
        json!("zero"),
    );
    assert_only(
        &check(&s),
        "schema.compile",
        "/attributes/schema/properties/amount/minimum",
    );
    let mut s = schema_component();
    set(&mut s, "/attributes/schema", json!("not a schema"));
    assert_only(&check(&s), "schema.compile", "/attributes/schema");
}

#[test]
fn schemas_with_vocabulary_extensions_and_other_drafts_compile() {
    let mut s = schema_component();
    set(
        &mut s,
        "/attributes/schema/properties/amount/x-labels",
        json!({"en": "Amount"}),
    );
    set(
        &mut s,
        "/attributes/schema/properties/amount/x-masking",
        json!(true),
    );
    assert_clean(&check(&s));
    set(
        &mut s,
        "/attributes/schema/$schema",
        json!("http://json-schema.org/draft-07/schema#"),
    );
    assert_clean(&check(&s));
    remove(&mut s, "/attributes/schema/$schema");
    assert_clean(&check(&s));
}

#[test]
fn schemas_must_be_self_contained() {
    let mut s = schema_component();
    set(
        &mut s,
        "/attributes/schema/properties/customer",
        json!({"$ref": "https://example.invalid/customer.json"}),
    );
    let d = check(&s);
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!(d[0].code, "schema.compile");
}
