//! Shared fixtures for the validation tests: a small, fully valid package built
//! as JSON values, plus helpers to break one thing at a time.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::{Value, json};
use vnext_core::model::ComponentKind;
use vnext_core::script::ScriptHost;
use vnext_core::validate::{Diagnostic, PackageCatalog, validate_component};

pub fn host() -> ScriptHost {
    ScriptHost::new()
}

pub fn b64(source: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(source)
}

/// A B64 rhai script in the vNext `scriptCode` envelope.
pub fn rhai(name: &str, source: &str) -> Value {
    json!({"location": format!("./src/{name}.rhai"), "code": b64(source), "encoding": "B64"})
}

pub fn handler() -> Value {
    rhai("handler", "fn handler(ctx) { #{ approved: true } }")
}

pub fn rule() -> Value {
    rhai("rule", "fn handler(ctx) { ctx.instance.data.amount > 100 }")
}

pub fn task_mapping() -> Value {
    rhai(
        "task",
        "fn input(ctx) { #{ body: ctx.instance.data } }\nfn output(ctx) { #{ charged: ctx.response.is_success } }",
    )
}

pub fn reference(key: &str, flow: &str, version: &str) -> Value {
    json!({"key": key, "domain": "shop", "flow": flow, "version": version})
}

pub fn labels(text: &str) -> Value {
    json!([{"label": text, "language": "en-US"}])
}

fn envelope(key: &str, flow: &str, attributes: Value) -> Value {
    json!({
        "key": key, "version": "1.0.0", "domain": "shop", "flow": flow, "flowVersion": "1.0.0",
        "tags": ["shop"], "attributes": attributes
    })
}

pub fn schema_component() -> Value {
    envelope(
        "order-payload",
        "sys-schemas",
        json!({
            "type": "workflow",
            "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["amount"],
                "properties": {"amount": {"type": "number", "minimum": 0}}
            }
        }),
    )
}

pub fn http_task() -> Value {
    envelope(
        "charge",
        "sys-tasks",
        json!({
            "type": "6",
            "config": {"url": "http://127.0.0.1:9/charge/{id}", "method": "POST", "timeoutSeconds": 5}
        }),
    )
}

pub fn script_task() -> Value {
    envelope("notify", "sys-tasks", json!({"type": "7", "config": {}}))
}

pub fn view_component() -> Value {
    envelope(
        "order-view",
        "sys-views",
        json!({"type": 1, "content": {"title": "Order"}}),
    )
}

pub fn function_component() -> Value {
    envelope(
        "order-total",
        "sys-functions",
        json!({
            "scope": "I",
            "task": {"order": 1, "task": reference("notify", "sys-tasks", "1.0.0"), "mapping": task_mapping()}
        }),
    )
}

pub fn extension_component() -> Value {
    envelope(
        "order-ext",
        "sys-extensions",
        json!({
            "type": 1, "scope": 3,
            "task": {"order": 1, "task": reference("notify", "sys-tasks", "latest"), "mapping": task_mapping()}
        }),
    )
}

pub fn child_workflow() -> Value {
    envelope(
        "child-flow",
        "sys-flows",
        json!({
            "type": "S",
            "labels": labels("Child"),
            "startTransition": {"key": "start", "target": "done", "triggerType": 0, "versionStrategy": "None", "labels": labels("Start")},
            "states": [{"key": "done", "stateType": 3, "versionStrategy": "None", "labels": labels("Done")}]
        }),
    )
}

/// A workflow that uses every construct validation looks at, and is valid.
pub fn workflow() -> Value {
    envelope(
        "order",
        "sys-flows",
        json!({
            "type": "F",
            "labels": labels("Order"),
            "startTransition": {
                "key": "start", "target": "draft", "triggerType": 0, "versionStrategy": "Minor", "labels": labels("Start"),
                "schema": reference("order-payload", "sys-schemas", "1.0.0"),
                "mapping": handler()
            },
            "states": [
                {
                    "key": "draft", "stateType": 1, "versionStrategy": "Minor", "labels": labels("Draft"),
                    "view": {"view": reference("order-view", "sys-views", "latest")},
                    "transitions": [
                        {
                            "key": "submit", "target": "review", "triggerType": 0, "versionStrategy": "Minor", "labels": labels("Submit"),
                            "schema": reference("order-payload", "sys-schemas", "1"),
                            "view": {"view": reference("order-view", "sys-views", "1.0")},
                            "onExecutionTasks": [{"order": 1, "task": reference("charge", "sys-tasks", "1.0.0"), "mapping": task_mapping()}]
                        },
                        {"key": "auto-approve", "target": "approved", "triggerType": 1, "versionStrategy": "None", "labels": labels("Auto"), "rule": rule()},
                        {"key": "fallback", "target": "review", "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": labels("Default")}
                    ]
                },
                {
                    "key": "review", "stateType": 2, "versionStrategy": "Minor", "labels": labels("Review"),
                    "onEntries": [{"order": 1, "task": reference("notify", "sys-tasks", "1.0.0"), "mapping": rhai("notify", "fn output(ctx) { #{ notified: true } }")}],
                    "transitions": [
                        {"key": "approve", "target": "approved", "triggerType": 0, "versionStrategy": "Minor", "labels": labels("Approve")},
                        {"key": "to-child", "target": "child", "triggerType": 0, "versionStrategy": "None", "labels": labels("Child")},
                        {"key": "expire", "target": "approved", "triggerType": 2, "versionStrategy": "None", "labels": labels("Expire"), "timer": {"duration": "PT8S"}},
                        {"key": "remind", "target": "$self", "triggerType": 2, "versionStrategy": "None", "labels": labels("Remind"),
                         "timer": rhai("timer", "fn handler(ctx) { #{ duration: \"PT1H\" } }")}
                    ]
                },
                {
                    "key": "child", "stateType": 4, "versionStrategy": "None", "labels": labels("Child"),
                    "subFlow": {"type": "S", "process": reference("child-flow", "sys-flows", "1"),
                                "mapping": rhai("sub", "fn input(ctx) { #{} }\nfn output(ctx) { ctx.response.data }")},
                    "transitions": [{"key": "back", "target": "review", "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": labels("Back")}]
                },
                {"key": "approved", "stateType": 3, "versionStrategy": "None", "labels": labels("Approved")}
            ],
            "sharedTransitions": [
                {"key": "abort", "target": "approved", "triggerType": 0, "versionStrategy": "None", "labels": labels("Abort"), "availableIn": ["draft", {"state": "review"}]},
                {"key": "nightly", "target": "$self", "triggerType": 2, "versionStrategy": "None", "labels": labels("Nightly"),
                 "timer": {"cron": "0 2 * * *", "timezone": "Europe/Istanbul"}}
            ],
            "cancel": {"key": "cancel", "target": "approved", "triggerType": 0, "versionStrategy": "None", "labels": labels("Cancel"), "availableIn": ["review"]},
            "updateData": {"key": "update-data", "target": "$self", "triggerType": 0, "versionStrategy": "Patch", "labels": labels("Update"), "mapping": handler()},
            "timeout": {"key": "timeout", "target": "approved", "versionStrategy": "None", "timer": {"reset": "N", "duration": "P1D"}},
            "functions": [reference("order-total", "sys-functions", "1.0.0")],
            "extensions": [reference("order-ext", "sys-extensions", "1.0.0")],
            "schema": reference("order-payload", "sys-schemas", "latest"),
            "errorBoundary": {"onError": [{"action": 1, "errorCodes": ["Task:503"], "retryPolicy": {"initialDelay": "PT5S", "maxDelay": "PT1M"}}]}
        }),
    )
}

/// Every component of the valid package, with file paths as a package folder would have them.
pub fn package() -> Vec<(String, Value)> {
    vec![
        ("shop/Schemas/order-payload.json".into(), schema_component()),
        ("shop/Tasks/charge.json".into(), http_task()),
        ("shop/Tasks/notify.json".into(), script_task()),
        ("shop/Views/order-view.json".into(), view_component()),
        (
            "shop/Functions/order-total.json".into(),
            function_component(),
        ),
        (
            "shop/Extensions/order-ext.json".into(),
            extension_component(),
        ),
        ("shop/Workflows/child-flow.json".into(), child_workflow()),
        ("shop/Workflows/order.json".into(), workflow()),
    ]
}

/// The package's components as a catalog (what a store would know).
pub fn catalog() -> PackageCatalog {
    let mut catalog = PackageCatalog::new();
    for (_, value) in package() {
        let kind = ComponentKind::from_flow(value["flow"].as_str().unwrap()).unwrap();
        catalog.insert(
            kind,
            "shop",
            value["key"].as_str().unwrap(),
            value["version"].as_str().unwrap(),
        );
    }
    catalog
}

/// Validates one document against the package catalog.
pub fn check(value: &Value) -> Vec<Diagnostic> {
    validate_component(value, &catalog(), &host())
}

/// Sets the value at `pointer` (which must exist, or its parent must be an object).
pub fn set(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
        return;
    }
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    value
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no parent {parent}"))[key] = new;
}

/// Removes the member at `pointer`.
pub fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let parent = value
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no parent {parent}"));
    match parent {
        Value::Object(map) => {
            map.remove(key);
        }
        Value::Array(items) => {
            items.remove(key.parse::<usize>().unwrap());
        }
        _ => panic!("cannot remove from {parent}"),
    }
}

pub fn push(value: &mut Value, pointer: &str, item: Value) {
    value
        .pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("no array at {pointer}"))
        .push(item);
}

/// Asserts there are no diagnostics, printing them if there are.
#[track_caller]
pub fn assert_clean(diagnostics: &[Diagnostic]) {
    assert!(
        diagnostics.is_empty(),
        "expected no diagnostics, got:\n{}",
        render(diagnostics)
    );
}

/// Asserts that the only diagnostic is `code` at `pointer`, and returns it.
#[track_caller]
pub fn assert_only(diagnostics: &[Diagnostic], code: &str, pointer: &str) -> Diagnostic {
    assert!(
        diagnostics.len() == 1 && diagnostics[0].code == code && diagnostics[0].pointer == pointer,
        "expected exactly [{code}] at {pointer}, got:\n{}",
        render(diagnostics)
    );
    diagnostics[0].clone()
}

/// Asserts that some diagnostic is `code` at `pointer`, and returns it.
#[track_caller]
pub fn assert_has(diagnostics: &[Diagnostic], code: &str, pointer: &str) -> Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.code == code && d.pointer == pointer)
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "expected [{code}] at {pointer}, got:\n{}",
                render(diagnostics)
            )
        })
}

pub fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| format!("  {d}\n")).collect()
}
