//! Custom functions through the whole runtime (real executor, real PostgreSQL,
//! a local HTTP target on port 0): scope I on an instance, scope D on the
//! domain, verbs, `inputSchema`, task order and mappings, `output`,
//! `outputSchema`, `rawResponse`, `cache`, and a failing task.

use crate::api_support;
use crate::e2e_support;

use api_support::InProcess;
use e2e_support::*;
use serde_json::{Value, json};

const D: &str = "fx";

/// An HTTP task entry of `order` calling `<data.target>/<route>` with the
/// request body; its output mapping keeps what came back under `key`.
fn call(order: i64, task: &str, route: &str, key: &str) -> Value {
    let source = format!(
        r#"
fn input(ctx) {{ #{{ url: ctx.instance.data.target + "/{route}", body: ctx.body }} }}
fn output(ctx) {{ #{{ {key}: ctx.response.data }} }}
"#
    );
    json!({ "order": order, "task": reference(D, "sys-tasks", task), "mapping": script(&format!("./src/{task}.rhai"), &source) })
}

fn function(key: &str, attributes: Value) -> Value {
    component(D, "sys-functions", key, attributes)
}

fn components() -> Vec<Value> {
    let task = |key: &str, method: &str| {
        http_task(D, key, json!({ "url": "http://placeholder.invalid/", "method": method,
            "headers": { "content-type": "application/json" }, "timeoutSeconds": 5 }))
    };
    // The domain function has no instance: its URL comes from the request.
    let domain_call = json!({ "order": 1, "task": reference(D, "sys-tasks", "ok-call"),
        "mapping": script("./src/ping.rhai", "fn input(ctx) { #{ url: ctx.query.target + \"/ok\" } }\nfn output(ctx) { #{ pinged: ctx.response.data.answer } }") });
    // Order 2 sends what order 1 answered: it can only run after it.
    let after_first = json!({ "order": 2, "task": reference(D, "sys-tasks", "ok-again"),
        "mapping": script("./src/again.rhai", "fn input(ctx) { #{ url: ctx.instance.data.target + \"/ok\", body: ctx.responses[\"ok-call\"].data } }") });
    let output = script("./src/quote.rhai", r#"
fn output(ctx) {
    #{ answer: ctx.responses["ok-call"].data.answer, second_saw: ctx.responses["ok-again"].data.received.answer,
       amount: ctx.body.amount, state: ctx.instance.state }
}
"#);
    // `idle` shows `vip-view` (with the data) to VIP orders, `plain-view` to the others.
    let mut idle = state("idle", 1, json!([manual("finish", "done")]));
    idle["view"] = json!({
        "rules": [{ "rule": script("./src/vip.rhai", "fn handler(ctx) { ctx.instance.data.vip == true }"),
                    "view": reference(D, "sys-views", "vip-view"), "loadData": true }],
        "default": { "view": reference(D, "sys-views", "plain-view") }
    });
    let flow = workflow(
        D,
        "orders",
        "idle",
        json!([idle, final_state("done")]),
        json!({ "functions": [
            reference(D, "sys-functions", "quote"),
            reference(D, "sys-functions", "cached"),
            reference(D, "sys-functions", "broken"),
            reference(D, "sys-functions", "failing"),
            reference(D, "sys-functions", "ping"),
        ], "extensions": [reference(D, "sys-extensions", "defined"), reference(D, "sys-extensions", "defined-asked")] }),
    );
    vec![
        task("ok-call", "POST"),
        task("ok-again", "POST"),
        task("missing-call", "GET"),
        function("quote", json!({
            "scope": "I", "verbs": ["POST"],
            "inputSchema": { "type": "object", "required": ["amount"], "properties": { "amount": { "type": "number" } } },
            "onExecutionTasks": [after_first, call(1, "ok-call", "ok", "first")],
            "output": output,
        })),
        function("cached", json!({
            "scope": "F", "rawResponse": true, "cache": { "ttlInSeconds": 300 },
            "onExecutionTasks": [call(1, "ok-call", "ok", "first")],
        })),
        function("broken", json!({
            "scope": "I",
            "outputSchema": { "type": "object", "required": ["missing"] },
            "onExecutionTasks": [call(1, "ok-call", "ok", "first")],
        })),
        function("failing", json!({ "scope": "I", "onExecutionTasks": [call(1, "missing-call", "missing", "first")] })),
        function("ping", json!({ "scope": "D", "verbs": ["GET"], "onExecutionTasks": [domain_call] })),
        component(D, "sys-views", "vip-view", json!({ "type": 1, "content": { "title": "VIP order" } })),
        component(D, "sys-views", "plain-view", json!({ "type": 3, "content": "# Order" })),
        extension("global", 1, 3, call(1, "ok-call", "ok", "answer")),
        extension("asked", 2, 1, json!({ "order": 1, "task": reference(D, "sys-tasks", "ok-call"),
            "mapping": script("./src/asked.rhai", "fn input(ctx) { #{ url: ctx.instance.data.target + \"/ok\" } }") })),
        extension("defined", 3, 3, call(1, "ok-call", "ok", "answer")),
        extension("defined-asked", 4, 2, call(1, "ok-call", "ok", "answer")),
        extension("broken", 1, 1, call(1, "missing-call", "missing", "answer")),
        flow,
    ]
}

fn extension(key: &str, extension_type: i64, scope: i64, task: Value) -> Value {
    component(D, "sys-extensions", key, json!({ "type": extension_type, "scope": scope, "task": task }))
}

struct Setup {
    rt: InProcess,
    target: Target,
    instance: String,
}

impl Setup {
    async fn new() -> Setup {
        let rt = InProcess::start().await;
        let target = Target::start().await;
        publish(&rt.client, &rt.base, &components()).await;
        let api = instances_url(&rt.base, D, "orders");
        let (status, body) =
            send(rt.client.post(format!("{api}/start?sync=true")).json(&json!({ "attributes": { "target": target.base } }))).await;
        assert_eq!(status, 200, "{body}");
        let instance = format!("{api}/{}", body["id"].as_str().unwrap());
        Setup { rt, target, instance }
    }

    fn function(&self, name: &str) -> String {
        format!("{}/functions/{name}", self.instance)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_function_runs_its_tasks_in_order_and_shapes_its_answer() {
    let s = Setup::new().await;
    let (status, body) = send(s.rt.client.post(s.function("quote")).json(&json!({ "amount": 5 }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({ "answer": 42, "second_saw": 42, "amount": 5, "state": "idle" }), "{body}");
    assert_eq!(s.target.calls("ok"), 2);

    // The request body reached the task (its input mapping sent it on).
    let (_, cached) = send(s.rt.client.get(s.function("cached"))).await;
    assert_eq!(cached["received"], json!({}), "{cached}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_schema_verbs_and_unknown_names_are_refused_before_anything_runs() {
    let s = Setup::new().await;
    let (status, body) = send(s.rt.client.post(s.function("quote")).json(&json!({ "amount": "five" }))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "payload.invalid", "{body}");
    assert_eq!(body["violations"][0]["pointer"], "/amount", "{body}");

    let (status, body) = send(s.rt.client.delete(s.function("quote"))).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["code"], "function.verb-not-allowed", "{body}");
    assert_eq!(body["verbs"], json!(["POST"]), "{body}");

    let (status, body) = send(s.rt.client.get(s.function("nothing"))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "function.not-found", "{body}");
    assert_eq!(s.target.calls("ok"), 0, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_responses_are_cached_for_their_lifetime() {
    let s = Setup::new().await;
    let (status, first) = send(s.rt.client.get(s.function("cached"))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["answer"], 42, "raw: the target's body as it came: {first}");
    let (status, again) = send(s.rt.client.get(s.function("cached"))).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(s.target.calls("ok"), 1, "the second call was answered from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_and_a_wrong_answer_are_bad_gateway() {
    let s = Setup::new().await;
    let (status, body) = send(s.rt.client.get(s.function("failing"))).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "function.task-failed", "{body}");
    assert_eq!(body["task"], "missing-call", "{body}");
    assert_eq!(body["taskError"]["statusCode"], 404, "{body}");

    let (status, body) = send(s.rt.client.get(s.function("broken"))).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "function.output-invalid", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_function_runs_on_the_domain_route_only() {
    let s = Setup::new().await;
    let url = format!("{}/api/v1/{D}/functions/ping", s.rt.base);
    let (status, body) = send(s.rt.client.get(&url).query(&[("target", s.target.base.as_str())])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({ "pinged": 42 }), "{body}");

    let (status, body) = send(s.rt.client.get(s.function("ping"))).await;
    assert_eq!(status, 404, "scope D is not served on an instance: {body}");
    let (status, body) = send(s.rt.client.get(format!("{}/api/v1/{D}/functions/quote", s.rt.base))).await;
    assert_eq!(status, 404, "scope I is not served on the domain: {body}");
    assert_eq!(body["code"], "function.not-found", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_fill_their_slots_by_type_and_scope() {
    let s = Setup::new().await;
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();

    let (status, body) = send(s.rt.client.get(&s.instance)).await;
    assert_eq!(status, 200, "a failing extension never fails the read: {body}");
    let ext = &body["extensions"];
    assert_eq!(keys(ext), ["broken", "defined", "global"], "{body}");
    assert_eq!(ext["global"]["answer"]["answer"], 42, "{body}");
    assert_eq!(ext["defined"]["answer"]["answer"], 42, "{body}");
    assert_eq!(ext["broken"]["error"]["code"], "Task:404", "{body}");

    let (_, body) = send(s.rt.client.get(format!("{}?extensions=asked", s.instance))).await;
    assert_eq!(keys(&body["extensions"]), ["asked", "broken", "defined", "global"], "{body}");
    assert_eq!(body["extensions"]["asked"]["answer"], 42, "no mapping: the task's body as it came: {body}");

    let list = s.instance.rsplit_once('/').unwrap().0;
    let (status, body) = send(s.rt.client.get(format!("{list}?extensions=defined-asked,asked"))).await;
    assert_eq!(status, 200, "{body}");
    let item = &body["items"][0]["extensions"];
    assert_eq!(keys(item), ["defined", "defined-asked", "global"], "list reads run scopes 2 and 3: {body}");
    assert_eq!(item["defined-asked"]["answer"]["answer"], 42, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_is_chosen_by_the_first_matching_rule_else_the_default() {
    let s = Setup::new().await;
    let (status, view) = send(s.rt.client.get(s.function("view"))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["key"].as_str(), view["type"].as_str()), (Some("plain-view"), Some("Markdown")), "{view}");
    assert_eq!(view["content"], "# Order", "{view}");
    assert!(view.get("data").is_none(), "{view}");
    let (_, st) = send(s.rt.client.get(s.function("state"))).await;
    assert_eq!(st["view"]["loadData"], false, "{st}");

    let api = instances_url(&s.rt.base, D, "orders");
    let attributes = json!({ "target": s.target.base, "vip": true });
    let (status, body) = send(s.rt.client.post(format!("{api}/start?sync=true")).json(&json!({ "attributes": attributes }))).await;
    assert_eq!(status, 200, "{body}");
    let (status, view) = send(s.rt.client.get(format!("{api}/{}/functions/view", body["id"].as_str().unwrap()))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["key"], "vip-view", "{view}");
    assert_eq!(view["content"], json!({ "title": "VIP order" }), "{view}");
    assert_eq!(view["data"]["vip"], true, "loadData of the rule: {view}");
    let (_, st) = send(s.rt.client.get(format!("{api}/{}/functions/state", body["id"].as_str().unwrap()))).await;
    assert_eq!((st["view"]["hasView"].as_bool(), st["view"]["loadData"].as_bool()), (Some(true), Some(true)), "{st}");
}
