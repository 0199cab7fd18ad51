//! The execution process dies while an HTTP task is in flight, with the three
//! services as processes (`vnext init`, `vnext app`, `vnext execution`) and a
//! lease of 2 s. The HTTP target holds the first calls until the process is
//! gone; afterwards it answers at once.
//!
//! In this deployment the app runs the pipeline and hands the HTTP call to the
//! execution service's invoke API. Killing the execution service breaks that
//! call: the app sees a failed task (`Task:connection`, naming the execution
//! service) and its error boundary decides; a retry policy resumes the instance
//! once an execution service runs again, no boundary faults it with an incident
//! (and `POST …/retry` completes it). When the transition was fired by a timer,
//! the execution service was also the app's caller; the app finishes the
//! transition anyway. When the app dies instead, the lease expires and the
//! execution service's lease recovery applies the task's retry policy, re-runs
//! a job's transition, or faults the instance keeping the client's body.
//! Whichever way, no instance stays busy.

use crate::e2e_support;

use std::time::Duration;

use e2e_support::*;
use serde_json::{Value, json};

const D: &str = "e2e";

const ENV: &[(&str, &str)] = &[
    ("VNEXT_RUNTIME__LEASE_SECONDS", "2"),
    ("VNEXT_EXECUTION__IDLE_POLL_SECONDS", "1"),
    ("VNEXT_EXECUTION__JOB_LOCK_SECONDS", "3"),
];

/// `begin` → `ready` –(`call`: manual, or scheduled after 1 s)→ `calling`, whose
/// HTTP task calls `<data.target>/block`, –(default)→ `done`.
fn relay(key: &str, timer: bool, boundary: Option<Value>) -> Value {
    let mapping = script(
        "./src/relay.rhai",
        r#"
fn input(ctx) { #{ url: ctx.instance.data.target + "/block" } }
fn output(ctx) { #{ relayed: #{ status: ctx.response.status_code, body: ctx.response.data } } }
"#,
    );
    let mut entry = json!({ "order": 1, "task": reference(D, "sys-tasks", "block-call"), "mapping": mapping });
    if let Some(b) = boundary {
        entry["errorBoundary"] = b;
    }
    let call = if timer { scheduled("call", "calling", json!({ "duration": "PT1S" })) } else { manual("call", "calling") };
    let mut calling = state("calling", 2, json!([automatic_default("relayed", "done")]));
    calling["onEntries"] = json!([entry]);
    workflow(D, key, "ready", json!([state("ready", 1, json!([call])), calling, final_state("done")]), json!({}))
}

/// As [`relay`] with a retry policy, but the call's state moves on to `rested`,
/// which is not final (its manual `finish` leads to `done`).
fn relay_rest(key: &str) -> Value {
    let mut w = relay(key, false, Some(retry_boundary()));
    let states = w["attributes"]["states"].as_array_mut().unwrap();
    states[1]["transitions"] = json!([automatic_default("relayed", "rested")]);
    states.push(state("rested", 2, json!([manual("finish", "done")])));
    w
}

fn retry_boundary() -> Value {
    json!({ "onError": [{ "action": 1,
        "retryPolicy": { "initialDelay": "PT0.5S", "maxRetries": 10, "backoffType": 0, "useJitter": false } }] })
}

fn components() -> Vec<Value> {
    let retry = retry_boundary();
    vec![
        http_task(D, "block-call", json!({ "url": "http://placeholder.invalid/", "method": "POST", "body": {}, "timeoutSeconds": 30 })),
        relay("relay-retry", false, Some(retry)),
        relay("relay-plain", false, None),
        relay("relay-timer", true, None),
        relay_rest("relay-rest"),
    ]
}

async fn start(client: &reqwest::Client, s: &Services, flow: &str, target: &Target) -> String {
    let api = instances_url(&s.app_url, D, flow);
    let (status, body) =
        send(client.post(format!("{api}/start?sync=true")).json(&json!({ "attributes": { "target": target.base } }))).await;
    assert_eq!(status, 200, "{body}\n{}", s.logs());
    assert_eq!(at(&body), ("ready", "A"), "{body}");
    format!("{api}/{}", body["id"].as_str().unwrap())
}

async fn incidents(client: &reqwest::Client, instance: &str) -> Vec<Value> {
    let (status, body) = send(client.get(format!("{instance}/incidents/active"))).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_execution_mid_call_resumes_or_faults_never_busy() {
    let mut s = Services::start(&components(), ENV).await;
    s.spawn_execution(true);
    let client = reqwest::Client::new();
    let target = Target::start().await;
    target.set_block_calls(2);

    let resumed = start(&client, &s, "relay-retry", &target).await;
    let faulted = start(&client, &s, "relay-plain", &target).await;
    // Both transitions run in the app and wait on the execution service's call to the target.
    let calls: Vec<_> = [&resumed, &faulted]
        .into_iter()
        .map(|i| {
            let request = client.patch(format!("{i}/transitions/call?sync=true")).json(&json!({ "attributes": {} }));
            tokio::spawn(send(request))
        })
        .collect();
    target.wait_blocked(2, Duration::from_secs(20)).await;
    s.kill_execution(0);

    // The app's calls fail at once; both requests are answered.
    for call in calls {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), call).await.expect("answered").unwrap();
        assert_eq!(status, 200, "{body}\n{}", s.logs());
    }
    // No boundary: faulted, with an incident that names the broken call.
    let f = poll(&client, &faulted, Duration::from_secs(10), "faults", |v| at(v).1 == "F").await;
    assert_eq!(at(&f).0, "ready", "{f}");
    let found = incidents(&client, &faulted).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["errorCode"], "Task:connection", "{found:?}");
    let message = found[0]["message"].as_str().unwrap();
    assert!(message.contains("block-call") && message.contains("execution service call"), "{message}");
    // The retry policy holds the other one for its retry job, which needs an execution service.
    let r = poll(&client, &resumed, Duration::from_secs(10), "waits for its retry", |v| at(v).1 == "B").await;
    assert_eq!(at(&r).0, "ready", "{r}");

    s.spawn_execution(true);
    let done = wait_at(&client, &resumed, "done", "C", Duration::from_secs(20)).await;
    assert_eq!(done["attributes"]["relayed"]["body"], json!({ "unblocked": true }), "{done}");
    assert_eq!(target.calls("block"), 3, "two held calls, then the retry");

    let (status, body) = send(client.post(format!("{faulted}/retry?sync=true")).json(&json!({}))).await;
    assert_eq!(status, 200, "{body}\n{}", s.logs());
    wait_at(&client, &faulted, "done", "C", Duration::from_secs(20)).await;
    assert!(incidents(&client, &faulted).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_execution_mid_timer_fired_call_faults_and_retry_completes() {
    let mut s = Services::start(&components(), ENV).await;
    s.spawn_execution(true);
    let client = reqwest::Client::new();
    let target = Target::start().await;
    target.set_block_calls(1);

    // The timer fires through the execution service into the app, whose HTTP
    // task goes back to the execution service: the dying process is both the
    // transition's caller and the task's runner.
    let i = start(&client, &s, "relay-timer", &target).await;
    target.wait_blocked(1, Duration::from_secs(20)).await;
    s.kill_execution(0);

    // The app sees the task fail and, with no boundary, faults the instance at
    // once (well within the lease).
    let f = poll(&client, &i, Duration::from_secs(10), "faults", |v| at(v).1 != "B").await;
    assert_eq!(at(&f), ("ready", "F"), "{f}\n{}", s.logs());
    let found = incidents(&client, &i).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["errorCode"], "Task:connection", "{found:?}");
    assert_eq!(found[0]["transition"], "call", "{found:?}");

    s.spawn_execution(true);
    let (status, body) = send(client.post(format!("{i}/retry?sync=true")).json(&json!({}))).await;
    assert_eq!(status, 200, "{body}\n{}", s.logs());
    let done = wait_at(&client, &i, "done", "C", Duration::from_secs(20)).await;
    assert_eq!(done["attributes"]["relayed"]["body"], json!({ "unblocked": true }), "{done}");
    assert_eq!(target.calls("block"), 2);
    let (_, history) = send(client.get(format!("{i}/transitions"))).await;
    let calls = history["transitions"].as_array().unwrap().iter().filter(|t| t["transitionId"] == "call").count();
    assert_eq!(calls, 1, "the timer's transition is applied once: {history}");
}

/// The app dies while its HTTP tasks are in flight: the instances stay busy
/// under their 2 s leases until the execution service's lease recovery (a scan
/// every 15 s) takes them over. A transition fired by a job (the timer) is run
/// again as that job and completes. A client's transition whose task has a
/// retry policy counts the lost call as a failed attempt and is retried with
/// the client's body: no incident, never `Lease:expired` on the instance. One
/// with no boundary faults with an incident saying its outcome is unknown,
/// which keeps the body: `retry` runs it with that body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_app_mid_call_is_recovered_after_the_lease() {
    let mut s = Services::start(&components(), ENV).await;
    s.spawn_execution(true);
    let client = reqwest::Client::new();
    let target = Target::start().await;
    target.set_block_calls(3);

    let by_client = start(&client, &s, "relay-plain", &target).await;
    let by_retry = start(&client, &s, "relay-retry", &target).await;
    let by_timer = start(&client, &s, "relay-timer", &target).await;
    let calls: Vec<_> = [(&by_client, "plain"), (&by_retry, "retried")]
        .into_iter()
        .map(|(i, note)| {
            let request = client.patch(format!("{i}/transitions/call?sync=true")).json(&json!({ "attributes": { "note": note } }));
            tokio::spawn(send(request))
        })
        .collect();
    target.wait_blocked(3, Duration::from_secs(20)).await;
    s.kill_app();
    for call in calls {
        let _ = call.await;
    }
    s.spawn_app();

    for i in [&by_client, &by_retry, &by_timer] {
        let (_, v) = send(client.get(i.as_str())).await;
        assert_eq!(at(&v), ("ready", "B"), "busy under the dead app's lease: {v}");
    }
    let done = wait_at(&client, &by_timer, "done", "C", Duration::from_secs(40)).await;
    assert_eq!(done["attributes"]["relayed"]["body"], json!({ "unblocked": true }), "{done}");
    let (_, history) = send(client.get(format!("{by_timer}/transitions"))).await;
    let calls: Vec<&Value> = history["transitions"].as_array().unwrap().iter().filter(|t| t["transitionId"] == "call").collect();
    assert_eq!(calls.len(), 1, "{history}");
    assert_eq!(calls[0]["origin"], "lease", "{history}");

    // The retry policy: the task's retry, with the client's body, and no incident.
    let retried = wait_at(&client, &by_retry, "done", "C", Duration::from_secs(40)).await;
    assert_eq!(retried["attributes"]["note"], "retried", "{retried}");
    assert_eq!(retried["attributes"]["relayed"]["body"], json!({ "unblocked": true }), "{retried}");
    let (status, all) = send(client.get(format!("{by_retry}/incidents"))).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["data"].as_array().map(Vec::len), Some(0), "never faulted: {all}");
    let (_, history) = send(client.get(format!("{by_retry}/transitions"))).await;
    let calls: Vec<&Value> = history["transitions"].as_array().unwrap().iter().filter(|t| t["transitionId"] == "call").collect();
    assert_eq!(calls.len(), 1, "applied once: {history}");
    assert_eq!((calls[0]["origin"].as_str(), calls[0]["body"]["note"].as_str()), (Some("retry"), Some("retried")), "{history}");
    let mut db = domain_db(&s.prefix.0, D).await;
    let id = by_retry.rsplit('/').next().unwrap();
    let attempts: Vec<(i32, String, Option<String>)> =
        sqlx::query_as("SELECT attempt, status, error->>'code' FROM relay_retry.task_runs WHERE instance_id = $1::uuid ORDER BY started_at")
            .bind(id)
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(attempts, vec![(1, "failed".into(), Some("Lease:expired".into())), (2, "succeeded".into(), None)]);

    // No boundary: faulted; the incident keeps the body, and retry uses it.
    let f = poll(&client, &by_client, Duration::from_secs(40), "faults", |v| at(v).1 != "B").await;
    assert_eq!(at(&f), ("ready", "F"), "{f}\n{}", s.logs());
    let found = incidents(&client, &by_client).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["errorCode"], "Lease:expired", "{found:?}");
    let (status, body) = send(client.post(format!("{by_client}/retry?sync=true")).json(&json!({}))).await;
    assert_eq!(status, 200, "{body}\n{}", s.logs());
    let done = wait_at(&client, &by_client, "done", "C", Duration::from_secs(20)).await;
    assert_eq!(done["attributes"]["note"], "plain", "retry ran with the original body: {done}");
    let (_, history) = send(client.get(format!("{by_client}/transitions"))).await;
    let call = history["transitions"].as_array().unwrap().iter().find(|t| t["transitionId"] == "call").cloned().unwrap_or_default();
    assert_eq!(call["body"], json!({ "note": "plain" }), "{history}");
}

/// A retry job owns its busy instance under a lease that ends 2 s after the
/// job is due. Here no execution service runs until that lease has expired,
/// and the retry job is held by a claim of a worker that died (what a process
/// killed right after claiming leaves behind; its lock runs 2 s more). The
/// restarted service's lease recovery re-runs the retried hop, which completes
/// into `rested`; when the dead worker's claim expires the retry job is claimed
/// again. The hop was done: the job must be stale, the instance left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_outliving_its_lease_runs_once() {
    let mut s = Services::start(&components(), ENV).await;
    let client = reqwest::Client::new();
    let target = Target::start().await;
    let i = start(&client, &s, "relay-rest", &target).await;
    // No execution service: the app's call fails and the boundary schedules a retry.
    let (status, body) = send(client.patch(format!("{i}/transitions/call?sync=true")).json(&json!({ "attributes": {} }))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(at(&body), ("ready", "B"), "{body}");
    let id = i.rsplit('/').next().unwrap().to_string();
    let mut db = domain_db(&s.prefix.0, D).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let expired: bool = sqlx::query_scalar("SELECT lease_until < now() FROM relay_rest.instances WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut db)
            .await
            .unwrap();
        if expired {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the retry's lease never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The retry job as a worker killed right after claiming it leaves it.
    let claimed = sqlx::query(
        "UPDATE sys_queues.jobs SET status = 'running', locked_by = 'killed-worker', locked_until = now() + interval '2 seconds',
                attempts = attempts + 1
          WHERE instance_id = $1::uuid AND kind = 'retry' AND status = 'pending'",
    )
    .bind(&id)
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(claimed.rows_affected(), 1);

    s.spawn_execution(true);
    // Settled: no job of the instance left to run (the claimed retry job
    // included), and the instance not busy.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let end = loop {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_queues.jobs WHERE instance_id = $1::uuid AND status IN ('pending', 'running')")
            .bind(&id)
            .fetch_one(&mut db)
            .await
            .unwrap();
        let (_, v) = send(client.get(i.as_str())).await;
        if open == 0 && at(&v).1 != "B" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "not settled: {open} open jobs, {v}\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let jobs: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT kind, status, last_error FROM sys_queues.jobs WHERE instance_id = $1::uuid ORDER BY created_at")
            .bind(&id)
            .fetch_all(&mut db)
            .await
            .unwrap();
    let (_, history) = send(client.get(format!("{i}/transitions"))).await;
    let found = incidents(&client, &i).await;
    assert_eq!(at(&end), ("rested", "A"), "jobs {jobs:?}; incidents {found:?}; history {history}");
    let calls = history["transitions"].as_array().unwrap().iter().filter(|t| t["transitionId"] == "call").count();
    assert_eq!(calls, 1, "{history}");
    assert_eq!(target.calls("block"), 1, "the retried call reached the target once; jobs {jobs:?}");
}
