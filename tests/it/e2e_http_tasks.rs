//! HTTP tasks through the whole runtime, as `vnext up` runs it (engine with
//! in-process task runners, job scheduler, REST API on port 0, real
//! PostgreSQL), against a local HTTP target. Components are published and
//! instances driven over the REST API only.
//!
//! Workflow `calls`: from `idle`, one manual transition per scenario enters a
//! state whose `onEntries` HTTP task calls one route of the target (the input
//! mapping sets the URL from the instance data, the output mapping stores what
//! came back); each such state moves on to `done` by its default automatic
//! transition.

use crate::api_support;
use crate::e2e_support;

use std::time::{Duration, Instant};

use api_support::InProcess;
use e2e_support::*;
use serde_json::{Value, json};

const D: &str = "e2e";

/// A state `name` entered by `call-<name>` whose HTTP task `<name>-call` calls
/// `<data[base_field]>/<route>`; the output mapping stores status, success and
/// the response body under `name` in the instance data.
fn call_state(name: &str, base_field: &str, route: &str, boundary: Option<Value>) -> Value {
    let source = format!(
        r#"
fn input(ctx) {{
    #{{ url: ctx.instance.data.{base_field} + "/{route}", body: #{{ order: ctx.instance.data.order }} }}
}}
fn output(ctx) {{
    #{{ {key}: #{{ status: ctx.response.status_code, success: ctx.response.is_success, body: ctx.response.data }} }}
}}
"#,
        key = name.replace('-', "_"),
    );
    let mut entry = json!({
        "order": 1,
        "task": reference(D, "sys-tasks", &format!("{name}-call")),
        "mapping": script(&format!("./src/{name}.rhai"), &source),
    });
    if let Some(b) = boundary {
        entry["errorBoundary"] = b;
    }
    let mut s = state(name, 2, json!([automatic_default(&format!("{name}-done"), "done")]));
    s["onEntries"] = json!([entry]);
    s
}

fn retry_boundary(max_retries: u32) -> Value {
    json!({ "onError": [{
        "action": 1,
        "retryPolicy": { "initialDelay": "PT0.2S", "maxRetries": max_retries, "backoffType": 0, "useJitter": false }
    }] })
}

fn components() -> Vec<Value> {
    let task = |name: &str, extra: Value| {
        let mut config = json!({ "url": "http://placeholder.invalid/", "method": "POST",
            "headers": { "content-type": "application/json" }, "body": {}, "timeoutSeconds": 5 });
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        http_task(D, &format!("{name}-call"), config)
    };
    let names = ["ok", "missing", "flaky", "down", "slow", "refused", "held"];
    let mut out: Vec<Value> = vec![
        task("ok", json!({})),
        task("missing", json!({ "method": "GET", "acceptedStatusCodes": ["404"] })),
        task("flaky", json!({})),
        task("down", json!({})),
        task("slow", json!({ "timeoutSeconds": 1 })),
        task("refused", json!({})),
        task("held", json!({ "timeoutSeconds": 30 })),
    ];
    let idle = state("idle", 1, Value::Array(names.iter().map(|n| manual(&format!("call-{n}"), n)).collect()));
    let states = json!([
        idle,
        call_state("ok", "target", "ok", None),
        call_state("missing", "target", "missing", None),
        call_state("flaky", "target", "flaky", Some(retry_boundary(3))),
        call_state("down", "target", "down", Some(retry_boundary(2))),
        call_state("slow", "target", "slow", None),
        call_state("refused", "refused", "nothing", None),
        call_state("held", "target", "block", None),
        final_state("done"),
    ]);
    out.push(workflow(D, "calls", "idle", states, json!({})));
    out
}

struct Setup {
    rt: InProcess,
    target: Target,
    api: String,
}

impl Setup {
    async fn new() -> Setup {
        Setup::with_lease(60).await
    }

    async fn with_lease(seconds: u64) -> Setup {
        // Retry jobs run on the scheduler, which finds the new domain within a second.
        let rt = InProcess::start_with(|c| {
            c.execution.idle_poll_seconds = 1;
            c.runtime.lease_seconds = seconds;
        })
        .await;
        publish(&rt.client, &rt.base, &components()).await;
        let target = Target::start().await;
        let api = instances_url(&rt.base, D, "calls");
        Setup { rt, target, api }
    }

    /// Starts an instance resting in `idle`; returns its URL.
    async fn start(&self) -> String {
        let attributes = json!({ "target": self.target.base, "refused": refused_url(), "order": { "id": "o-1", "amount": 10 } });
        let (status, body) = send(self.rt.client.post(format!("{}/start?sync=true", self.api)).json(&json!({ "attributes": attributes }))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(at(&body), ("idle", "A"), "{body}");
        format!("{}/{}", self.api, body["id"].as_str().unwrap())
    }

    /// Runs `transition` with `sync=true`; returns status and body.
    async fn go(&self, instance: &str, transition: &str) -> (u16, Value) {
        send(self.rt.client.patch(format!("{instance}/transitions/{transition}?sync=true")).json(&json!({ "attributes": {} }))).await
    }

    async fn incidents(&self, instance: &str, active: bool) -> Vec<Value> {
        let path = if active { "incidents/active" } else { "incidents" };
        let (status, body) = send(self.rt.client.get(format!("{instance}/{path}"))).await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_merges_the_output_mapping_into_the_data() {
    let s = Setup::new().await;
    let i = s.start().await;
    let (status, body) = s.go(&i, "call-ok").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(at(&body), ("done", "C"), "{body}");
    let data = &body["attributes"];
    assert_eq!(data["ok"]["status"], 200, "{data}");
    assert_eq!(data["ok"]["success"], true, "{data}");
    assert_eq!(data["ok"]["body"]["answer"], 42, "{data}");
    // The input mapping's body reached the target, and came back in the response.
    assert_eq!(data["ok"]["body"]["received"], json!({ "order": { "id": "o-1", "amount": 10 } }), "{data}");
    // Merged, not replaced: the start data is still there.
    assert_eq!(data["order"]["id"], "o-1", "{data}");
    assert_eq!(s.target.calls("ok"), 1);

    // The history records the task run with its request and response.
    let (_, history) = send(s.rt.client.get(format!("{i}/transitions"))).await;
    let runs: Vec<&Value> = history["transitions"].as_array().unwrap().iter().flat_map(|t| t["tasks"].as_array().unwrap()).collect();
    assert_eq!(runs.len(), 1, "{history}");
    assert_eq!(runs[0]["taskKey"], "ok-call");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["response"]["statusCode"], 200, "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_404_is_a_success() {
    let s = Setup::new().await;
    let i = s.start().await;
    let (status, body) = s.go(&i, "call-missing").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(at(&body), ("done", "C"), "{body}");
    let data = &body["attributes"];
    assert_eq!(data["missing"], json!({ "status": 404, "success": true, "body": { "error": "no such customer" } }), "{data}");
    assert!(s.incidents(&i, false).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_by_the_error_boundary_until_it_succeeds() {
    let s = Setup::new().await;
    s.target.set_flaky_failures(2);
    let i = s.start().await;
    let (status, body) = s.go(&i, "call-flaky").await;
    assert_eq!(status, 200, "{body}");
    // The failed attempt is not applied: the instance waits for its retry job.
    assert_ne!(at(&body).0, "done", "{body}");

    let done = wait_at(&s.rt.client, &i, "done", "C", Duration::from_secs(20)).await;
    assert_eq!(done["attributes"]["flaky"], json!({ "status": 200, "success": true, "body": { "attempt": 3 } }), "{done}");
    assert_eq!(s.target.calls("flaky"), 3, "two failures, one success");
    assert!(s.incidents(&i, false).await.is_empty(), "a retry that succeeds leaves no incident");

    // Every attempt is recorded; the successful one belongs to the transition.
    let (_, history) = send(s.rt.client.get(format!("{i}/transitions"))).await;
    let mut attempts: Vec<(i64, String)> = history["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["tasks"].as_array().unwrap().iter())
        .chain(history["otherTaskRuns"].as_array().into_iter().flatten())
        .map(|r| (r["attempt"].as_i64().unwrap(), r["status"].as_str().unwrap().to_string()))
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![(1, "failed".into()), (2, "failed".into()), (3, "succeeded".into())],
        "{history}"
    );
    let flaky_hops: Vec<&Value> = history["transitions"].as_array().unwrap().iter().filter(|t| t["transitionId"] == "call-flaky").collect();
    assert_eq!(flaky_hops.len(), 1, "the transition is applied once: {history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_exhausted_fault_with_an_incident_and_a_retry_completes() {
    let s = Setup::new().await;
    let i = s.start().await;
    let (status, body) = s.go(&i, "call-down").await;
    assert_eq!(status, 200, "{body}");

    let faulted = poll(&s.rt.client, &i, Duration::from_secs(20), "instance faults", |v| at(v).1 == "F").await;
    assert_eq!(at(&faulted), ("idle", "F"), "the failed hop is undone: {faulted}");
    assert_eq!(faulted["metadata"]["incident"]["hasActiveIncident"], true, "{faulted}");
    assert_eq!(s.target.calls("down"), 3, "one attempt and two retries");

    let incidents = s.incidents(&i, true).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident["errorCode"], "Task:500", "{incident}");
    assert_eq!(incident["statusCode"], 500, "{incident}");
    assert_eq!(incident["task"], "down-call", "{incident}");
    assert_eq!(incident["transition"], "call-down", "{incident}");
    let message = incident["message"].as_str().unwrap();
    assert!(message.contains("down-call") && message.contains("500") && message.contains("exhausted"), "{message}");

    // A faulted instance takes no transitions.
    let (status, body) = s.go(&i, "call-ok").await;
    assert_eq!(status, 409, "{body}");

    s.target.recover();
    let (status, body) = send(s.rt.client.post(format!("{i}/retry?sync=true")).json(&json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let done = wait_at(&s.rt.client, &i, "done", "C", Duration::from_secs(20)).await;
    assert_eq!(done["attributes"]["down"], json!({ "status": 200, "success": true, "body": { "recovered": true } }), "{done}");
    assert_eq!(done["metadata"]["incident"]["hasActiveIncident"], false, "{done}");
    assert!(s.incidents(&i, true).await.is_empty(), "the incident is resolved");
    let all = s.incidents(&i, false).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["resolved"], true, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_timeout_faults_with_an_incident_naming_it() {
    let s = Setup::new().await;
    let i = s.start().await;
    let t0 = Instant::now();
    let (status, body) = s.go(&i, "call-slow").await;
    let took = t0.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(took < Duration::from_secs(10), "timeoutSeconds 1 cut the 30 s call short, took {took:?}");
    let faulted = poll(&s.rt.client, &i, Duration::from_secs(10), "instance faults", |v| at(v).1 == "F").await;
    assert_eq!(at(&faulted).0, "idle", "{faulted}");
    let incidents = s.incidents(&i, true).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["errorCode"], "Task:timeout", "{incidents:?}");
    let message = incidents[0]["message"].as_str().unwrap();
    assert!(message.contains("slow-call") && message.contains("timed out after 1 s"), "{message}");
    assert_eq!(s.target.calls("slow"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_faults_with_an_incident_naming_it() {
    let s = Setup::new().await;
    let i = s.start().await;
    let (status, body) = s.go(&i, "call-refused").await;
    assert_eq!(status, 200, "{body}");
    let faulted = poll(&s.rt.client, &i, Duration::from_secs(10), "instance faults", |v| at(v).1 == "F").await;
    assert_eq!(at(&faulted).0, "idle", "{faulted}");
    let incidents = s.incidents(&i, true).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["errorCode"], "Task:connection", "{incidents:?}");
    let message = incidents[0]["message"].as_str().unwrap();
    assert!(message.contains("refused-call") && message.contains("could not connect"), "{message}");
}

/// A client that hangs up while its `sync=true` transition waits on an HTTP
/// task must not cancel the transition: the work was accepted, the task's
/// outcome is committed when it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_does_not_cancel_its_transition() {
    let s = Setup::with_lease(2).await;
    s.target.set_block_calls(1);
    let i = s.start().await;
    let request = s.rt.client.patch(format!("{i}/transitions/call-held?sync=true")).json(&json!({ "attributes": {} }));
    let call = tokio::spawn(send(request));
    s.target.wait_blocked(1, Duration::from_secs(20)).await;
    call.abort();
    let _ = call.await;
    // If the server gave the run up with its caller, the task's call to the
    // target is dropped too: the target sees it hang up.
    let abandoned = s.target.wait_abandoned(1, Duration::from_secs(2)).await;
    s.target.release();
    let end = poll(&s.rt.client, &i, Duration::from_secs(30), "the transition ends", |v| matches!(at(v).1, "C" | "F")).await;
    let incidents = s.incidents(&i, false).await;
    assert_eq!(
        at(&end),
        ("done", "C"),
        "the transition was cancelled with its client (task call abandoned: {abandoned}); incidents: {incidents:?}"
    );
    assert_eq!(end["attributes"]["held"]["body"], json!({ "unblocked": false }), "{end}");
    assert!(!abandoned, "the task's call was abandoned");
}
