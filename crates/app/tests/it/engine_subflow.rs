//! SubFlow states: a parent starts a child and parks until it completes.
//! Children without I/O start and finish inside the parent's transaction;
//! children with I/O start through a job; transitions sent to a parked parent
//! go to its child (except cancel, exit and updateData); a child's fault
//! leaves the parent parked with an incident; cancelling a parked parent
//! cancels its child through a job.

use crate::engine_support;

use engine_support::*;
use serde_json::{json, Value};
use uuid::Uuid;
use vnext_app::engine::{EngineError, InstanceStatus, Outcome, RetryRequest};
use vnext_core::traits::{TaskError, TaskResponse, TriggerOrigin, TriggerOutcome, TriggerRequest};

fn flow_ref(key: &str) -> Value {
    json!({"key": key, "domain": DOMAIN, "flow": "sys-flows", "version": "1.0.0"})
}

fn subflow_state(key: &str, child: &str, mapping: Option<&str>, transitions: Value) -> Value {
    let mut sf = json!({"type": "S", "process": flow_ref(child)});
    if let Some(m) = mapping {
        sf["mapping"] = nat(m);
    }
    json!({"key": key, "stateType": 4, "versionStrategy": "Minor", "labels": label(), "subFlow": sf, "transitions": transitions})
}

fn auto(key: &str, target: &str) -> Value {
    json!({"key": key, "target": target, "triggerType": 1, "triggerKind": 10, "versionStrategy": "None", "labels": label()})
}

fn rule(key: &str, target: &str, src: &str) -> Value {
    json!({"key": key, "target": target, "triggerType": 1, "versionStrategy": "None", "labels": label(), "rule": nat(src)})
}

fn cancel_exit() -> Value {
    json!({
        "cancel": {"key": "cancel", "target": "cancelled", "triggerType": 0, "versionStrategy": "None", "labels": label()},
        "exit": {"key": "exit", "target": "$self", "triggerType": 0, "versionStrategy": "None", "labels": label()},
        "updateData": {"key": "update", "target": "$self", "triggerType": 0, "versionStrategy": "Patch", "labels": label()}
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// The transactions that wrote these rows (`xmin`): one means one commit.
async fn writers(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(DISTINCT x) FROM ({sql}) w"))).fetch_one(&env.pool).await.unwrap()
}

async fn one<T>(env: &TestEnv, sql: &str, id: Uuid) -> T
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).bind(id).fetch_one(&env.pool).await.unwrap()
}

#[tokio::test]
async fn a_child_without_io_starts_and_completes_inside_the_parents_commit() {
    let env = TestEnv::new().await;
    let child = workflow("kyc-check", "1.0.0", json!({
        "type": "S", "labels": label(),
        "startTransition": start_transition("check"),
        "states": [
            state("check", 1, json!([rule("ok", "passed", "fn handler(ctx) { ctx.instance.data.customer == \"ada\" }"), auto("no", "failed")])),
            state("passed", 3, json!([])),
            state("failed", 3, json!([])),
        ]
    }));
    let parent = workflow("onboard", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("form"),
        "states": [
            state("form", 1, json!([manual("submit", "kyc")])),
            subflow_state("kyc", "kyc-check",
                Some("fn input(ctx) { #{ customer: ctx.instance.data.name } } fn output(ctx) { #{ kyc: #{ result: ctx.response.data, by: ctx.instance.state } } }"),
                json!([rule("good", "approved", "fn handler(ctx) { ctx.instance.data.kyc.result.customer == \"ada\" }"), auto("bad", "rejected")])),
            state("approved", 3, json!([])),
            state("rejected", 3, json!([])),
        ]
    }));
    env.publish(&[child, parent]).await;
    let s = env.start("onboard", json!({"name": "ada"})).await;
    let done = env.transition("onboard", s.id, "submit", json!({})).await;
    assert_eq!((done.status, done.current_state.as_str()), (InstanceStatus::Completed, "approved"));
    assert_eq!(done.data, json!({"name": "ada", "kyc": {"result": {"customer": "ada"}, "by": "kyc"}}));

    let (child_id, state, status, parent_id, data): (Uuid, String, String, Uuid, Value) = one(
        &env,
        "SELECT id, current_state, status::text, parent_instance_id, data FROM kyc_check.instances WHERE parent_instance_id = $1",
        s.id,
    )
    .await;
    assert_eq!((state.as_str(), status.as_str(), parent_id), ("passed", "C", s.id));
    assert_eq!(data, json!({"customer": "ada"}), "the child started with the input mapping's body");
    let (completed, outcome): (bool, Option<String>) =
        one(&env, "SELECT completed, outcome FROM onboard.correlations WHERE child_instance_id = $1", child_id).await;
    assert_eq!((completed, outcome.as_deref()), (true, Some("completed")));
    let hops: Vec<(String, String)> = sqlx::query_as("SELECT transition_key, origin FROM onboard.transitions WHERE instance_id = $1 ORDER BY seq")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let hops: Vec<(&str, &str)> = hops.iter().map(|(k, o)| (k.as_str(), o.as_str())).collect();
    assert_eq!(hops, [("start", "api"), ("submit", "api"), ("$subflow", "subflow"), ("good", "auto")]);
    let child_hops: Vec<String> = sqlx::query_scalar("SELECT origin FROM kyc_check.transitions WHERE instance_id = $1 ORDER BY seq")
        .bind(child_id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(child_hops, ["subflow", "auto"]);

    // Parent, child, their history, the correlation and the events: one commit.
    let n = writers(&env, &format!(
        "SELECT xmin::text AS x FROM onboard.instances WHERE id = '{p}' \
         UNION ALL SELECT xmin::text FROM onboard.transitions WHERE instance_id = '{p}' AND seq > 1 \
         UNION ALL SELECT xmin::text FROM onboard.correlations \
         UNION ALL SELECT xmin::text FROM kyc_check.instances \
         UNION ALL SELECT xmin::text FROM kyc_check.transitions \
         UNION ALL SELECT xmin::text FROM sys_queues.outbox WHERE instance_id IN ('{p}', '{c}') AND payload->>'transition' <> 'start'",
        p = s.id, c = child_id
    )).await;
    assert_eq!(n, 1, "a pure subflow commits once with its parent");
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT flow, event_type FROM sys_queues.outbox WHERE instance_id IN ($1, $2) ORDER BY id",
    )
    .bind(s.id)
    .bind(child_id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let events: Vec<(&str, &str)> = events.iter().map(|(f, e)| (f.as_str(), e.as_str())).collect();
    assert_eq!(events, [
        ("onboard", "instance.state-changed"),   // start → form
        ("kyc-check", "instance.state-changed"), // child: start → passed
        ("kyc-check", "instance.completed"),
        ("onboard", "instance.state-changed"),   // form → approved
        ("onboard", "instance.completed"),
    ]);
    let change: Value = sqlx::query_scalar("SELECT payload FROM sys_queues.outbox WHERE instance_id = $1 AND event_type = 'instance.state-changed' ORDER BY id DESC LIMIT 1")
        .bind(s.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!((change["fromState"].as_str(), change["toState"].as_str()), (Some("form"), Some("approved")));
    assert_eq!(change["via"], json!(["kyc"]));
    assert_eq!(change["transitions"], json!(["submit", "$subflow", "good"]));
    env.cleanup().await;
}

/// Claims the pending cascade-cancel job of `child` as the scheduler would and fires it.
async fn fire_cascade(env: &TestEnv, child: Uuid) {
    let (job, flow, key, body): (Uuid, String, String, Value) = sqlx::query_as(
        "UPDATE sys_queues.jobs SET status = 'running' WHERE instance_id = $1 AND kind = 'async' AND status = 'pending' \
         AND body->>'origin' = 'parent-ended' RETURNING id, flow, transition_key, body",
    )
    .bind(child)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let out = env
        .engine
        .trigger()
        .trigger(TriggerRequest {
            domain: env.domain.to_string(),
            flow,
            instance_id: child,
            transition: key,
            origin: TriggerOrigin::Async,
            armed_state: None,
            body,
            job_id: job,
            attempt: 1,
        })
        .await;
    assert!(out.is_ok(), "{out:?}");
}

fn order_flows() -> Vec<Value> {
    let child = workflow("pay-flow", "1.0.0", with(json!({
        "type": "S", "labels": label(),
        "startTransition": start_transition("pending"),
        "states": [
            state("pending", 1, json!([manual("confirm", "paid")])),
            state("paid", 3, json!([])),
            state("cancelled", 3, json!([])),
        ]
    }), cancel_exit()));
    let parent = workflow("order", "1.0.0", with(json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("cart"),
        "states": [
            state("cart", 1, json!([manual("pay", "payment")])),
            subflow_state("payment", "pay-flow", None, json!([
                {"key": "remind", "target": "cart", "triggerType": 2, "versionStrategy": "None", "labels": label(), "timer": {"duration": "PT1H"}},
                manual("ship", "shipped")
            ])),
            state("shipped", 3, json!([])),
            state("cancelled", 3, json!([])),
        ]
    }), cancel_exit()));
    vec![child, parent]
}

#[tokio::test]
async fn a_parked_parent_forwards_transitions_and_resumes_when_its_child_completes() {
    let env = TestEnv::new().await;
    env.publish(&order_flows()).await;
    let s = env.start("order", json!({"item": "book"})).await;
    let parked = env.transition("order", s.id, "pay", json!({"amount": 5})).await;
    assert_eq!((parked.status, parked.current_state.as_str()), (InstanceStatus::Busy, "payment"));
    let (parked_on, lease_until, lease_token): (Option<Uuid>, Option<chrono::DateTime<chrono::Utc>>, Option<Uuid>) =
        one(&env, "SELECT parked_on, lease_until, lease_token FROM \"order\".instances WHERE id = $1", s.id).await;
    assert!(parked_on.is_some() && lease_until.is_none() && lease_token.is_none(), "parked: busy without a lease");
    let (child_id, child_state, child_data): (Uuid, String, Value) =
        one(&env, "SELECT id, current_state, data FROM pay_flow.instances WHERE parent_instance_id = $1", s.id).await;
    assert_eq!(child_state, "pending");
    assert_eq!(child_data, json!({"item": "book", "amount": 5}), "without a mapping the child starts with the parent's data");
    let timers: i64 = env.scalar("SELECT count(*) FROM sys_queues.jobs WHERE instance_id = $1 AND kind = 'timer'", s.id).await;
    assert_eq!(timers, 0, "a parked parent's timers wait for the resume");

    // Lease recovery leaves a parked parent alone.
    let job = Uuid::now_v7();
    sqlx::query("INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, due_at, status) VALUES ($1, 'lease', 'order', $2, 'pay', now(), 'running')")
        .bind(job)
        .bind(s.id)
        .execute(&env.pool)
        .await
        .unwrap();
    let lease = TriggerRequest {
        domain: env.domain.to_string(),
        flow: "order".into(),
        instance_id: s.id,
        transition: "pay".into(),
        origin: TriggerOrigin::Lease,
        armed_state: None,
        body: Value::Null,
        job_id: job,
        attempt: 1,
    };
    assert_eq!(env.engine.trigger().trigger(lease).await.unwrap(), TriggerOutcome::Stale);

    // updateData writes the parent's data only; it stays parked.
    let updated = env.transition("order", s.id, "update", json!({"note": "gift"})).await;
    assert_eq!((updated.status, updated.current_state.as_str()), (InstanceStatus::Busy, "payment"));
    assert_eq!(updated.data["note"], "gift");
    let child_data: Value = env.scalar("SELECT data FROM pay_flow.instances WHERE id = $1", child_id).await;
    assert!(child_data.get("note").is_none());

    // Anything else goes to the child: errors name the child's state.
    let err = env.engine.transition(env.transition_req("order", s.id, "pay", json!({}))).await.unwrap_err();
    assert!(matches!(&err, EngineError::UnknownTransition { state, .. } if state == "pending"), "{err:?}");
    let err = env.engine.retry(RetryRequest { domain: env.domain.clone(), flow: env.flow("order"), instance: vnext_app::engine::InstanceRef::Id(s.id), sync: true }).await.unwrap_err();
    assert!(matches!(err, EngineError::Busy { .. }), "{err:?}");

    // The child completes; the parent resumes before the answer.
    let resumed = env.transition("order", s.id, "confirm", json!({"card": "visa"})).await;
    assert_eq!((resumed.status, resumed.current_state.as_str()), (InstanceStatus::Active, "payment"));
    assert_eq!(resumed.data["pay-flow"], json!({"item": "book", "amount": 5, "card": "visa"}), "the child's data under its workflow key");
    assert_eq!(resumed.data["note"], "gift");
    let (child_status, child_state): (String, String) = one(&env, "SELECT status::text, current_state FROM pay_flow.instances WHERE id = $1", child_id).await;
    assert_eq!((child_status.as_str(), child_state.as_str()), ("C", "paid"));
    let (completed, outcome): (bool, Option<String>) =
        one(&env, "SELECT completed, outcome FROM \"order\".correlations WHERE child_instance_id = $1", child_id).await;
    assert_eq!((completed, outcome.as_deref()), (true, Some("completed")));
    let (parked_on,): (Option<Uuid>,) = one(&env, "SELECT parked_on FROM \"order\".instances WHERE id = $1", s.id).await;
    assert!(parked_on.is_none());
    let resume_jobs: Vec<String> = sqlx::query_scalar("SELECT status FROM sys_queues.jobs WHERE instance_id = $1 AND transition_key = '$subflow'")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(resume_jobs, ["done"], "the resume ran once, as a job");
    let timers: Vec<(String, String)> = sqlx::query_as("SELECT transition_key, status FROM sys_queues.jobs WHERE instance_id = $1 AND kind = 'timer'")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(timers, [("remind".to_string(), "pending".to_string())], "scheduled transitions armed after the resume");
    let done = env.transition("order", s.id, "ship", json!({})).await;
    assert_eq!(done.status, InstanceStatus::Completed);

    // A second order: cancel is taken by the parked parent itself; its child is
    // cancelled through a job, in its own run.
    let s = env.start("order", json!({})).await;
    env.transition("order", s.id, "pay", json!({})).await;
    let cancelled = env.transition("order", s.id, "cancel", json!({})).await;
    assert_eq!((cancelled.status, cancelled.current_state.as_str()), (InstanceStatus::Completed, "cancelled"));
    let child_id: Uuid = env.scalar("SELECT id FROM pay_flow.instances WHERE parent_instance_id = $1", s.id).await;
    let outcome: Option<String> = env.scalar("SELECT outcome FROM \"order\".correlations WHERE child_instance_id = $1", child_id).await;
    assert_eq!(outcome.as_deref(), Some("canceled"));
    let event: String = env.scalar("SELECT event_type FROM sys_queues.outbox WHERE instance_id = $1 ORDER BY id DESC LIMIT 1", s.id).await;
    assert_eq!(event, "instance.canceled");
    fire_cascade(&env, child_id).await;
    let (child_status, child_state): (String, String) = one(&env, "SELECT status::text, current_state FROM pay_flow.instances WHERE id = $1", child_id).await;
    assert_eq!((child_status.as_str(), child_state.as_str()), ("C", "cancelled"), "the child ran its own cancel");
    let (status, incident): (String, bool) = one(&env, "SELECT status::text, has_incident FROM \"order\".instances WHERE id = $1", s.id).await;
    assert_eq!((status.as_str(), incident), ("C", false), "the ended parent is not told about the cascade");

    // A third: the child is cancelled on its own; the parent stays parked with an incident.
    let s = env.start("order", json!({})).await;
    env.transition("order", s.id, "pay", json!({})).await;
    let child_id: Uuid = env.scalar("SELECT id FROM pay_flow.instances WHERE parent_instance_id = $1", s.id).await;
    env.transition("pay-flow", child_id, "cancel", json!({})).await;
    let (status, incident): (String, bool) = one(&env, "SELECT status::text, has_incident FROM \"order\".instances WHERE id = $1", s.id).await;
    assert_eq!((status.as_str(), incident), ("B", true));
    let code: String = env.scalar("SELECT error_code FROM \"order\".incidents WHERE instance_id = $1", s.id).await;
    assert_eq!(code, "SubFlow:canceled");
    let outcome: Option<String> = env.scalar("SELECT outcome FROM \"order\".correlations WHERE child_instance_id = $1", child_id).await;
    assert_eq!(outcome.as_deref(), Some("canceled"));
    let err = env.engine.transition(env.transition_req("order", s.id, "confirm", json!({}))).await.unwrap_err();
    assert!(matches!(err, EngineError::Finished { .. }), "forwarded to a finished child: {err:?}");
    let ended = env.transition("order", s.id, "exit", json!({})).await;
    assert_eq!((ended.status, ended.has_incident), (InstanceStatus::Completed, false));
    env.cleanup().await;
}

fn io_flows() -> Vec<Value> {
    let child = workflow("remote-check", "1.0.0", json!({
        "type": "S", "labels": label(),
        "startTransition": start_transition("calling"),
        "states": [
            {"key": "calling", "stateType": 1, "versionStrategy": "None", "labels": label(),
             "onEntries": [{"order": 1, "task": task_ref("remote"), "mapping": nat("fn output(ctx) { #{ score: ctx.response.data.score } }")}],
             "transitions": [auto("next", "checked")]},
            state("checked", 3, json!([])),
        ]
    }));
    let parent = workflow("app", "1.0.0", json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("begin"),
        "states": [
            state("begin", 1, json!([auto("go", "checking")])),
            subflow_state("checking", "remote-check", None, json!([auto("on", "end")])),
            state("end", 3, json!([])),
        ]
    }));
    vec![http_task("remote"), child, parent]
}

fn score(env: &TestEnv, ok: bool) {
    env.executor.set(move |_| {
        Box::pin(async move {
            if ok {
                TaskResponse { status_code: Some(200), is_success: true, data: json!({"score": 7}), ..Default::default() }
            } else {
                TaskResponse { status_code: Some(500), is_success: false, error: Some(TaskError::new("Task:500", "scoring is down", false)), ..Default::default() }
            }
        })
    });
}

#[tokio::test]
async fn a_child_with_io_starts_through_a_job_and_resumes_its_parent() {
    let env = TestEnv::new().await;
    env.publish(&io_flows()).await;
    score(&env, true);
    let s = env.start("app", json!({"applicant": 1})).await;
    assert_eq!((s.status, s.current_state.as_str()), (InstanceStatus::Completed, "end"), "child started, called out, completed and resumed the parent");
    assert_eq!(s.data, json!({"applicant": 1, "remote-check": {"applicant": 1, "score": 7}}));
    let child: Uuid = env.scalar("SELECT id FROM remote_check.instances WHERE parent_instance_id = $1", s.id).await;
    let calls = env.executor.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].instance_id, child);
    let jobs: Vec<(String, String)> = sqlx::query_as("SELECT transition_key, status FROM sys_queues.jobs WHERE kind = 'async' ORDER BY created_at")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(jobs, [("start".to_string(), "done".to_string()), ("$subflow".to_string(), "done".to_string())]);
    let origins: Vec<String> = sqlx::query_scalar("SELECT origin FROM app.transitions WHERE instance_id = $1 ORDER BY seq")
        .bind(s.id)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(origins, ["api", "auto", "subflow", "auto"]);
    env.cleanup().await;
}

#[tokio::test]
async fn a_faulted_child_leaves_its_parent_parked_with_an_incident_until_a_retry_completes_it() {
    let env = TestEnv::new().await;
    env.publish(&io_flows()).await;
    score(&env, false);
    let s = env.start("app", json!({})).await;
    assert_eq!((s.status, s.current_state.as_str(), s.has_incident), (InstanceStatus::Busy, "checking", true));
    let (child, child_status): (Uuid, String) = one(&env, "SELECT id, status::text FROM remote_check.instances WHERE parent_instance_id = $1", s.id).await;
    assert_eq!(child_status, "F");
    let (code, message): (String, String) = one(&env, "SELECT error_code, message FROM app.incidents WHERE instance_id = $1 AND NOT resolved", s.id).await;
    assert_eq!(code, "SubFlow:faulted");
    assert!(message.contains("scoring is down") && message.contains(&child.to_string()), "{message}");
    let event: String = env.scalar("SELECT event_type FROM sys_queues.outbox WHERE instance_id = $1 ORDER BY id DESC LIMIT 1", child).await;
    assert_eq!(event, "instance.faulted");

    score(&env, true);
    let retried = vnext_app::engine::InstanceRef::Id(child);
    let c = match env.engine.retry(RetryRequest { domain: env.domain.clone(), flow: env.flow("remote-check"), instance: retried, sync: true }).await.unwrap() {
        Outcome::Done(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(c.status, InstanceStatus::Completed);
    let (status, state, incident): (String, String, bool) = one(&env, "SELECT status::text, current_state, has_incident FROM app.instances WHERE id = $1", s.id).await;
    assert_eq!((status.as_str(), state.as_str(), incident), ("C", "end", false), "the parent resumed and its incident is resolved");
    let open: i64 = env.scalar("SELECT count(*) FROM app.incidents WHERE instance_id = $1 AND NOT resolved", s.id).await;
    assert_eq!(open, 0);
    env.cleanup().await;
}

#[tokio::test]
async fn subflows_the_runtime_cannot_start_are_refused_clearly() {
    let env = TestEnv::new().await;
    let mut cross = order_flows();
    cross[1]["attributes"]["states"][1]["subFlow"]["process"]["domain"] = json!("payments");
    env.publish(&cross).await;
    let s = env.start("order", json!({})).await;
    let err = env.engine.transition(env.transition_req("order", s.id, "pay", json!({}))).await.unwrap_err();
    match &err {
        EngineError::Unsupported { message } => assert!(message.contains("cross-domain") && message.contains("payments"), "{message}"),
        other => panic!("{other:?}"),
    }
    let (state, status): (String, String) = one(&env, "SELECT current_state, status::text FROM \"order\".instances WHERE id = $1", s.id).await;
    assert_eq!((state.as_str(), status.as_str()), ("cart", "A"), "nothing changed");

    let mut missing = order_flows();
    missing[1]["version"] = json!("2.0.0");
    missing[1]["attributes"]["states"][1]["subFlow"]["process"]["key"] = json!("nowhere");
    env.publish(&missing[1..]).await;
    let s = env.start("order", json!({})).await;
    let err = env.engine.transition(env.transition_req("order", s.id, "pay", json!({}))).await.unwrap_err();
    assert!(matches!(&err, EngineError::Definition { message } if message.contains("nowhere")), "{err:?}");
    env.cleanup().await;
}

fn chain_flows() -> Vec<Value> {
    let leaf = workflow("leaf-flow", "1.0.0", with(json!({
        "type": "S", "labels": label(),
        "startTransition": start_transition("pending"),
        "states": [
            state("pending", 1, json!([
                {"key": "remind", "target": "pending", "triggerType": 2, "versionStrategy": "None", "labels": label(), "timer": {"duration": "PT1H"}},
                manual("confirm", "done")
            ])),
            state("done", 3, json!([])),
            state("cancelled", 3, json!([])),
        ]
    }), cancel_exit()));
    let mid = workflow("mid-flow", "1.0.0", with(json!({
        "type": "S", "labels": label(),
        "startTransition": start_transition("idle"),
        "states": [
            state("idle", 1, json!([manual("go", "waiting")])),
            subflow_state("waiting", "leaf-flow", None, json!([manual("finish", "done")])),
            state("done", 3, json!([])),
            state("cancelled", 3, json!([])),
        ]
    }), cancel_exit()));
    let top = workflow("top-flow", "1.0.0", with(json!({
        "type": "F", "labels": label(),
        "startTransition": start_transition("cart"),
        "states": [
            state("cart", 1, json!([manual("pay", "payment")])),
            subflow_state("payment", "mid-flow", None, json!([manual("ship", "shipped")])),
            state("shipped", 3, json!([])),
            state("cancelled", 3, json!([])),
        ]
    }), cancel_exit()));
    vec![leaf, mid, top]
}

#[tokio::test]
async fn cancelling_the_top_of_a_three_level_chain_cancels_every_open_child() {
    let env = TestEnv::new().await;
    env.publish(&chain_flows()).await;
    let s = env.start("top-flow", json!({})).await;
    env.transition("top-flow", s.id, "pay", json!({})).await;
    // Forwarded to the middle instance, which parks on a leaf.
    env.transition("top-flow", s.id, "go", json!({})).await;
    let mid: Uuid = env.scalar("SELECT id FROM mid_flow.instances WHERE parent_instance_id = $1", s.id).await;
    let leaf: Uuid = env.scalar("SELECT id FROM leaf_flow.instances WHERE parent_instance_id = $1", mid).await;
    let (status,): (String,) = one(&env, "SELECT status::text FROM mid_flow.instances WHERE id = $1", mid).await;
    assert_eq!(status, "B", "the middle instance is parked on its leaf");

    let top = env.transition("top-flow", s.id, "cancel", json!({})).await;
    assert_eq!((top.status, top.current_state.as_str()), (InstanceStatus::Completed, "cancelled"));
    fire_cascade(&env, mid).await;
    let (status, state): (String, String) = one(&env, "SELECT status::text, current_state FROM mid_flow.instances WHERE id = $1", mid).await;
    assert_eq!((status.as_str(), state.as_str()), ("C", "cancelled"));
    let outcome: Option<String> = env.scalar("SELECT outcome FROM mid_flow.correlations WHERE child_instance_id = $1", leaf).await;
    assert_eq!(outcome.as_deref(), Some("canceled"));
    fire_cascade(&env, leaf).await;
    let (status, state): (String, String) = one(&env, "SELECT status::text, current_state FROM leaf_flow.instances WHERE id = $1", leaf).await;
    assert_eq!((status.as_str(), state.as_str()), ("C", "cancelled"));
    let timers: i64 = env
        .scalar("SELECT count(*) FROM sys_queues.jobs WHERE instance_id = $1 AND kind = 'timer' AND status = 'pending'", leaf)
        .await;
    assert_eq!(timers, 0, "the leaf's timers went with its cancel");
    env.cleanup().await;
}
