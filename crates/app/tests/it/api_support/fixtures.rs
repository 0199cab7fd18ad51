//! A small component package for API tests, in domain [`DOMAIN`]: workflow
//! `order` with a start schema, an approval schema and a view.
//!
//! ```text
//! create (schema order-start) ─▶ draft (view order-view, loadData)
//!   draft ── submit ──▶ review
//!   review ── approve (schema order-approval) ──▶ done (final)
//!   review ── expire (scheduled, PT1H) ──▶ done
//!   comment (shared, $self, in draft and review)
//!   cancel ──▶ cancelled (final);  update (updateData, in draft)
//! ```

#![allow(dead_code)]

use serde_json::{Value, json};

pub const DOMAIN: &str = "shop";
pub const FLOW: &str = "order";

fn reference(flow: &str, key: &str) -> Value {
    json!({ "key": key, "domain": DOMAIN, "flow": flow, "version": "1.0.0" })
}

fn label(text: &str) -> Value {
    json!([{ "label": text, "language": "en-US" }])
}

pub fn start_schema() -> Value {
    json!({
        "key": "order-start", "version": "1.0.0", "domain": DOMAIN, "flow": "sys-schemas",
        "flowVersion": "1.0.0", "tags": ["test"],
        "attributes": {
            "type": "workflow",
            "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["amount"],
                "properties": { "amount": { "type": "number" }, "customer": { "type": "object" } }
            }
        }
    })
}

pub fn approval_schema() -> Value {
    json!({
        "key": "order-approval", "version": "1.0.0", "domain": DOMAIN, "flow": "sys-schemas",
        "flowVersion": "1.0.0", "tags": ["test"],
        "attributes": {
            "type": "workflow",
            "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["approver"],
                "properties": { "approver": { "type": "string", "minLength": 1 } }
            }
        }
    })
}

pub fn view() -> Value {
    json!({
        "key": "order-view", "version": "1.0.0", "domain": DOMAIN, "flow": "sys-views",
        "flowVersion": "1.0.0", "tags": ["test"],
        "attributes": { "type": 1, "content": { "title": "Order", "fields": ["amount", "customer"] } }
    })
}

fn manual(key: &str, target: &str) -> Value {
    json!({ "key": key, "target": target, "triggerType": 0, "versionStrategy": "Minor", "labels": label(key) })
}

/// Version `version` of the workflow (the title of `draft` differs per version).
pub fn workflow_version(version: &str) -> Value {
    let mut approve = manual("approve", "done");
    approve["schema"] = reference("sys-schemas", "order-approval");
    let mut start = manual("create", "draft");
    start["schema"] = reference("sys-schemas", "order-start");
    let mut comment = manual("comment", "$self");
    comment["availableIn"] = json!(["draft", "review"]);
    let mut update = manual("update", "$self");
    update["availableIn"] = json!(["draft"]);
    let cancel = manual("cancel", "cancelled");
    let expire = json!({
        "key": "expire", "target": "done", "triggerType": 2, "versionStrategy": "None",
        "labels": label("expire"), "timer": { "duration": "PT1H" }
    });
    json!({
        "key": FLOW, "version": version, "domain": DOMAIN, "flow": "sys-flows", "flowVersion": "1.0.0",
        "tags": ["test"],
        "attributes": {
            "type": "F",
            "labels": label(&format!("Order {version}")),
            "startTransition": start,
            "sharedTransitions": [comment],
            "cancel": cancel,
            "updateData": update,
            "states": [
                {
                    "key": "draft", "stateType": 1, "versionStrategy": "None", "labels": label("Draft"),
                    "view": { "view": reference("sys-views", "order-view"), "loadData": true },
                    "transitions": [manual("submit", "review")]
                },
                {
                    "key": "review", "stateType": 2, "versionStrategy": "None", "labels": label("Review"),
                    "transitions": [approve, expire]
                },
                { "key": "done", "stateType": 3, "subType": 1, "versionStrategy": "None", "labels": label("Done"), "transitions": [] },
                { "key": "cancelled", "stateType": 3, "subType": 3, "versionStrategy": "None", "labels": label("Cancelled"), "transitions": [] }
            ]
        }
    })
}

pub fn workflow() -> Value {
    workflow_version("1.0.0")
}

/// Every component, in publish order.
pub fn package() -> Vec<Value> {
    vec![start_schema(), approval_schema(), view(), workflow()]
}

/// Workflow `loop`: `ping` and `pong` hand over to each other by default
/// automatic transitions forever; every start runs past the chain depth cap.
pub fn loop_workflow() -> Value {
    let auto = |key: &str, target: &str| {
        json!({ "key": key, "target": target, "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": label(key) })
    };
    json!({
        "key": "loop", "version": "1.0.0", "domain": DOMAIN, "flow": "sys-flows", "flowVersion": "1.0.0",
        "tags": ["test"],
        "attributes": {
            "type": "F",
            "labels": label("Loop"),
            "startTransition": manual("begin", "ping"),
            "states": [
                { "key": "ping", "stateType": 1, "versionStrategy": "None", "labels": label("Ping"), "transitions": [auto("to-pong", "pong")] },
                { "key": "pong", "stateType": 2, "versionStrategy": "None", "labels": label("Pong"), "transitions": [auto("to-ping", "ping")] },
                { "key": "never", "stateType": 3, "versionStrategy": "None", "labels": label("Never"), "transitions": [] }
            ]
        }
    })
}

/// Workflow `fragile`: transition `explode` has a mapping that throws.
pub fn fragile_workflow() -> Value {
    let mut explode = manual("explode", "end");
    explode["mapping"] = json!({
        "location": "./src/explode.rhai",
        "code": "fn handler(ctx) { throw \"the mapping refused: \" + ctx.body.reason; }",
        "encoding": "NAT"
    });
    json!({
        "key": "fragile", "version": "1.0.0", "domain": DOMAIN, "flow": "sys-flows", "flowVersion": "1.0.0",
        "tags": ["test"],
        "attributes": {
            "type": "F",
            "labels": label("Fragile"),
            "startTransition": manual("begin", "ready"),
            "states": [
                { "key": "ready", "stateType": 1, "versionStrategy": "None", "labels": label("Ready"), "transitions": [explode] },
                { "key": "end", "stateType": 3, "versionStrategy": "None", "labels": label("End"), "transitions": [] }
            ]
        }
    })
}

/// Workflow `flow` in [`DOMAIN`] with HTTP task `remote`: `begin` ─▶ idle,
/// `call` ─▶ calling (its entry runs `remote`), `finish` ─▶ end. The test
/// server's executor fails every I/O task, so entering `calling` fails the
/// task: it faults the instance, or with `boundary` (the entry's
/// `errorBoundary`) is handled as the boundary says.
pub fn failing_http_package(flow: &str, boundary: Option<Value>) -> Vec<Value> {
    let task = json!({"key": "remote", "version": "1.0.0", "domain": DOMAIN, "flow": "sys-tasks", "flowVersion": "1.0.0",
        "tags": ["test"], "attributes": {"type": "6", "config": {"url": "http://127.0.0.1:9/x", "method": "POST"}}});
    let manual = |key: &str, target: &str| json!({"key": key, "target": target, "triggerType": 0, "versionStrategy": "None", "labels": label("x")});
    let mut entry = json!({"order": 1, "task": reference("sys-tasks", "remote")});
    if let Some(boundary) = boundary {
        entry["errorBoundary"] = boundary;
    }
    let workflow = json!({"key": flow, "version": "1.0.0", "domain": DOMAIN, "flow": "sys-flows", "flowVersion": "1.0.0",
        "tags": ["test"], "attributes": {
            "type": "F", "labels": label("x"), "startTransition": manual("begin", "idle"),
            "states": [
                {"key": "idle", "stateType": 1, "versionStrategy": "None", "labels": label("x"), "transitions": [manual("call", "calling")]},
                {"key": "calling", "stateType": 2, "versionStrategy": "None", "labels": label("x"), "onEntries": [entry],
                 "transitions": [manual("finish", "end")]},
                {"key": "end", "stateType": 3, "versionStrategy": "None", "labels": label("x"), "transitions": []}
            ]
        }});
    vec![task, workflow]
}
