//! Timers end to end, through the runtime as `vnext up` runs it (engine, job
//! scheduler and REST API in this process, real PostgreSQL): components
//! published and instances driven over the REST API; the job rows are read
//! from the domain database to show what was armed and cancelled.
//!
//! - `alarm`: `waiting` has a scheduled transition `ring` with the declarative
//!   timer `{"duration": "PT1S"}` to the final state `rang`.
//! - `snooze`: the same with a timer script whose duration comes from the
//!   instance data, and a manual `leave` to `away` (which has `back` to
//!   `waiting`): leaving cancels the armed timer, coming back arms a new one.
//! - `deadline`: a workflow `timeout` of 2 s fires `$timeout` to `timed-out`;
//!   finishing first cancels it.

use crate::api_support;
use crate::e2e_support;

use std::time::Duration;

use api_support::InProcess;
use chrono::{DateTime, Utc};
use e2e_support::*;
use serde_json::{Value, json};

const D: &str = "e2e";

fn components() -> Vec<Value> {
    let alarm = workflow(
        D,
        "alarm",
        "waiting",
        json!([
            state("waiting", 1, json!([scheduled("ring", "rang", json!({ "duration": "PT1S" }))])),
            final_state("rang"),
        ]),
        json!({}),
    );
    let timer = script("./src/snooze-timer.rhai", "fn handler(ctx) { #{ duration: ctx.instance.data.wait } }");
    let snooze = workflow(
        D,
        "snooze",
        "waiting",
        json!([
            state("waiting", 1, json!([scheduled("ring", "rang", timer), manual("leave", "away")])),
            state("away", 2, json!([manual("back", "waiting")])),
            final_state("rang"),
        ]),
        json!({}),
    );
    let deadline = workflow(
        D,
        "deadline",
        "working",
        json!([state("working", 1, json!([manual("finish", "finished")])), final_state("finished"), final_state("timed-out")]),
        json!({ "timeout": { "key": "too-slow", "target": "timed-out", "versionStrategy": "Patch", "timer": { "duration": "PT2S" } } }),
    );
    vec![alarm, snooze, deadline]
}

struct Setup {
    rt: InProcess,
}

impl Setup {
    async fn new() -> Setup {
        // The scheduler finds the domain (created by the first publish) within a second.
        let rt = InProcess::start_with(|c| c.execution.idle_poll_seconds = 1).await;
        publish(&rt.client, &rt.base, &components()).await;
        Setup { rt }
    }

    async fn start(&self, flow: &str, attributes: Value) -> (String, Value) {
        let api = instances_url(&self.rt.base, D, flow);
        let (status, body) = send(self.rt.client.post(format!("{api}/start?sync=true")).json(&json!({ "attributes": attributes }))).await;
        assert_eq!(status, 200, "{body}");
        (format!("{api}/{}", body["id"].as_str().unwrap()), body)
    }

    async fn go(&self, instance: &str, transition: &str) -> Value {
        let (status, body) =
            send(self.rt.client.patch(format!("{instance}/transitions/{transition}?sync=true")).json(&json!({ "attributes": {} }))).await;
        assert_eq!(status, 200, "{transition}: {body}");
        body
    }

    async fn get(&self, url: &str) -> Value {
        let (status, body) = send(self.rt.client.get(url)).await;
        assert_eq!(status, 200, "{url}: {body}");
        body
    }

    /// The transitions of an instance's history, in order.
    async fn history(&self, instance: &str) -> Vec<Value> {
        self.get(&format!("{instance}/transitions")).await["transitions"].as_array().unwrap().clone()
    }

    async fn db(&self) -> sqlx::PgConnection {
        domain_db(self.rt.prefix(), D).await
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("a timestamp: {v}")).parse().unwrap()
}

fn keys(history: &[Value]) -> Vec<&str> {
    history.iter().map(|t| t["transitionId"].as_str().unwrap()).collect()
}

fn id_of(instance: &str) -> &str {
    instance.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_timer_fires_its_transition() {
    let s = Setup::new().await;
    let (i, started) = s.start("alarm", json!({})).await;
    assert_eq!(at(&started), ("waiting", "A"), "{started}");
    let created = time(&started["metadata"]["createdAt"]);

    // The armed timer is visible, due one second after the instance entered `waiting`.
    let state = s.get(&format!("{i}/functions/state")).await;
    let armed: Vec<&Value> = state["transitions"].as_array().unwrap().iter().filter(|t| t["kind"] == "scheduled").collect();
    assert_eq!(armed.len(), 1, "{state}");
    assert_eq!(armed[0]["name"], "ring", "{state}");
    let due = time(&armed[0]["executeAtUtc"]);
    let delay = due - created;
    assert!(delay >= chrono::Duration::milliseconds(900) && delay <= chrono::Duration::milliseconds(1500), "due {delay} after creation");

    let rang = wait_at(&s.rt.client, &i, "rang", "C", Duration::from_secs(15)).await;
    let history = s.history(&i).await;
    assert_eq!(keys(&history), ["begin", "ring"], "{history:?}");
    assert_eq!(history[1]["origin"], "timer", "{history:?}");
    assert!(time(&history[1]["startedAt"]) >= due, "fired no earlier than due: {history:?}");
    assert!(time(&rang["metadata"]["completedAt"]) >= due);

    let mut db = s.db().await;
    assert_eq!(jobs_of(&mut db, id_of(&i), "timer").await, [("ring".to_string(), "done".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_state_cancels_its_timer() {
    let s = Setup::new().await;
    let (a, _) = s.start("snooze", json!({ "wait": "PT2S" })).await;
    let left = s.go(&a, "leave").await;
    assert_eq!(at(&left), ("away", "A"), "{left}");

    // The timer armed for `waiting` is cancelled in the transaction that left it.
    let mut db = s.db().await;
    assert_eq!(jobs_of(&mut db, id_of(&a), "timer").await, [("ring".to_string(), "cancelled".to_string())]);
    let state = s.get(&format!("{a}/functions/state")).await;
    assert!(
        state["transitions"].as_array().unwrap().iter().all(|t| t["kind"] != "scheduled"),
        "no armed timer in `away`: {state}"
    );

    // A control instance armed later than `a` was fires: by then `a`'s timer was long due.
    let (b, _) = s.start("snooze", json!({ "wait": "PT2S" })).await;
    wait_at(&s.rt.client, &b, "rang", "C", Duration::from_secs(15)).await;
    let still = s.get(&a).await;
    assert_eq!(at(&still), ("away", "A"), "the cancelled timer never fired: {still}");
    assert_eq!(keys(&s.history(&a).await), ["begin", "leave"]);

    // Coming back arms a new timer, which fires once.
    let back = s.go(&a, "back").await;
    assert_eq!(at(&back), ("waiting", "A"), "{back}");
    let returned = time(&back["metadata"]["modifiedAt"]);
    assert_eq!(
        jobs_of(&mut db, id_of(&a), "timer").await,
        [("ring".to_string(), "cancelled".to_string()), ("ring".to_string(), "pending".to_string())]
    );
    wait_at(&s.rt.client, &a, "rang", "C", Duration::from_secs(15)).await;
    let history = s.history(&a).await;
    assert_eq!(keys(&history), ["begin", "leave", "back", "ring"], "{history:?}");
    assert!(time(&history[3]["startedAt"]) >= returned + chrono::Duration::seconds(2), "the new timer's own delay: {history:?}");
    assert_eq!(
        jobs_of(&mut db, id_of(&a), "timer").await,
        [("ring".to_string(), "cancelled".to_string()), ("ring".to_string(), "done".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_timeout_fires_to_its_target() {
    let s = Setup::new().await;
    let (late, started) = s.start("deadline", json!({})).await;
    let created = time(&started["metadata"]["createdAt"]);
    let state = s.get(&format!("{late}/functions/state")).await;
    let armed: Vec<&Value> = state["transitions"].as_array().unwrap().iter().filter(|t| t["kind"] == "$timeout").collect();
    assert_eq!(armed.len(), 1, "{state}");
    let due = time(&armed[0]["executeAtUtc"]);
    // Stored with microsecond precision.
    let delay = due - created;
    assert!((delay - chrono::Duration::seconds(2)).num_microseconds().unwrap().abs() <= 1, "due {delay} after creation: {state}");

    // One that finishes in time has its timeout cancelled.
    let (on_time, _) = s.start("deadline", json!({})).await;
    let finished = s.go(&on_time, "finish").await;
    assert_eq!(at(&finished), ("finished", "C"), "{finished}");
    let mut db = s.db().await;
    assert_eq!(jobs_of(&mut db, id_of(&on_time), "timeout").await, [("$timeout".to_string(), "cancelled".to_string())]);

    let timed_out = wait_at(&s.rt.client, &late, "timed-out", "C", Duration::from_secs(15)).await;
    assert!(time(&timed_out["metadata"]["completedAt"]) >= due, "{timed_out}");
    let history = s.history(&late).await;
    assert_eq!(keys(&history), ["begin", "$timeout"], "{history:?}");
    assert_eq!(history[1]["origin"], "timeout", "{history:?}");
    assert_eq!(history[1]["fromState"], "working", "{history:?}");
    assert_eq!(history[1]["toState"], "timed-out", "{history:?}");
    assert_eq!(jobs_of(&mut db, id_of(&late), "timeout").await, [("$timeout".to_string(), "done".to_string())]);
    assert_eq!(keys(&s.history(&on_time).await), ["begin", "finish"]);
}
