//! The components each scenario publishes: small workflows written for measuring.

use serde_json::{Value, json};

fn envelope(domain: &str, flow: &str, key: &str, attributes: Value) -> Value {
    json!({
        "key": key, "version": "1.0.0", "domain": domain, "flow": flow,
        "flowVersion": "1.0.0", "tags": ["bench"], "attributes": attributes
    })
}

fn labels(text: &str) -> Value {
    json!([{ "label": text, "language": "en-US" }])
}

fn script(source: &str) -> Value {
    json!({ "location": "./src/bench.rhai", "code": source, "encoding": "NAT" })
}

fn reference(domain: &str, flow: &str, key: &str) -> Value {
    json!({ "key": key, "domain": domain, "flow": flow, "version": "1.0.0" })
}

fn state(key: &str, state_type: u8, transitions: Value) -> Value {
    json!({ "key": key, "stateType": state_type, "versionStrategy": "None", "labels": labels(key), "transitions": transitions })
}

fn transition(key: &str, target: &str, trigger: u8) -> Value {
    json!({ "key": key, "target": target, "triggerType": trigger, "versionStrategy": "None", "labels": labels(key) })
}

fn workflow(domain: &str, key: &str, start_target: &str, states: Value) -> Value {
    envelope(domain, "sys-flows", key, json!({
        "type": "F",
        "labels": labels(key),
        "startTransition": transition("start", start_target, 0),
        "states": states,
    }))
}

/// Two states in a loop: `to-pong` and `to-ping`, manual, no tasks.
pub fn loop_flow(domain: &str, key: &str) -> Value {
    workflow(domain, key, "ping", json!([
        state("ping", 1, json!([transition("to-pong", "pong", 0)])),
        state("pong", 2, json!([transition("to-ping", "ping", 0)])),
    ]))
}

/// A script task: the work happens in the entry's mapping.
pub fn script_task(domain: &str, key: &str) -> Value {
    envelope(domain, "sys-tasks", key, json!({ "type": "7", "config": {} }))
}

/// An HTTP task whose URL comes from the input mapping.
pub fn http_task(domain: &str, key: &str) -> Value {
    envelope(domain, "sys-tasks", key, json!({
        "type": "6",
        "config": { "url": "http://127.0.0.1:1/", "method": "POST", "timeoutSeconds": 10 }
    }))
}

fn rule(source: &str) -> Value {
    script(&format!("fn handler(ctx) {{ {source} }}"))
}

fn auto(key: &str, target: &str, condition: Option<&str>) -> Value {
    let mut t = transition(key, target, 1);
    match condition {
        Some(c) => t["rule"] = rule(c),
        None => t["triggerKind"] = json!(10),
    }
    t
}

fn task_entry(domain: &str, task: &str, mapping: &str) -> Value {
    json!({ "order": 1, "task": reference(domain, "sys-tasks", task), "mapping": script(mapping) })
}

/// Start → final through five states, two script tasks and rule-based automatic
/// transitions (each state also has a default that the data never takes).
pub fn chain_flow(domain: &str, key: &str, task: &str) -> Value {
    let mut a = state("fee", 2, json!([auto("to-total", "total", Some("ctx.instance.data.fee > 0")), auto("fee-missing", "rejected", None)]));
    a["onEntries"] = json!([task_entry(domain, task, "fn output(ctx) { #{ fee: ctx.instance.data.amount / 100 + 1 } }")]);
    let mut b = state("total", 2, json!([auto("to-review", "review", Some("ctx.instance.data.total > ctx.instance.data.amount")), auto("total-wrong", "rejected", None)]));
    b["onEntries"] = json!([task_entry(domain, task, "fn output(ctx) { #{ total: ctx.instance.data.amount + ctx.instance.data.fee } }")]);
    workflow(domain, key, "received", json!([
        state("received", 1, json!([auto("to-fee", "fee", Some("ctx.instance.data.amount > 0")), auto("no-amount", "rejected", None)])),
        a,
        b,
        state("review", 2, json!([auto("approve", "approved", Some("ctx.instance.data.total < 1000000")), auto("too-large", "rejected", None)])),
        state("approved", 3, json!([])),
        state("rejected", 3, json!([])),
    ]))
}

/// One state whose scheduled transition fires at the instance's `fireAt`.
pub fn timer_flow(domain: &str, key: &str) -> Value {
    let mut fire = transition("fire", "fired", 2);
    fire["timer"] = script("fn handler(ctx) { #{ at: ctx.instance.data.fireAt } }");
    workflow(domain, key, "waiting", json!([
        state("waiting", 1, json!([fire])),
        state("fired", 3, json!([])),
    ]))
}

/// The loop of [`loop_flow`] where `to-pong` calls an HTTP endpoint first.
pub fn http_loop_flow(domain: &str, key: &str, task: &str) -> Value {
    let mut call = transition("to-pong", "pong", 0);
    call["onExecutionTasks"] = json!([task_entry(domain, task,
        "fn input(ctx) { #{ url: ctx.instance.data.target } }\nfn output(ctx) { #{ lastStatus: ctx.response.status_code } }")]);
    workflow(domain, key, "ping", json!([
        state("ping", 1, json!([call])),
        state("pong", 2, json!([transition("to-ping", "ping", 0)])),
    ]))
}

/// A JSON object of about `bytes` bytes.
pub fn payload(bytes: usize, seed: usize) -> Value {
    let filler = "x".repeat(bytes.saturating_sub(64));
    json!({ "seq": seed, "note": filler, "tags": ["a", "b"] })
}
