//! Read endpoints over rows seeded straight into a flow schema: lists with
//! filters, paging and sort; ETag and 304; data at a past version; history;
//! the state, view and schema functions; incidents.

use crate::api_support;

use std::collections::BTreeSet;

use api_support::seed::{self, Seed};
use api_support::{TestApp, expect_problem, fixtures};
use serde_json::{Value, json};

const LIST: &str = "/api/v1/shop/workflows/order/instances";

async fn list(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let r = app.client.get(app.url(LIST)).query(query).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{query:?}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn keys(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap().to_string()).collect()
}

/// Items on the page (the engine's list has no totals: callers ask for a page
/// large enough to hold every match).
fn total(page: &Value) -> i64 {
    page["items"].as_array().unwrap().len() as i64
}

#[tokio::test]
async fn list_filters_on_status_state_and_data() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    seed::orders(&pool).await;

    let cases: &[(&str, i64)] = &[
        (r#"{"attributes":{"amount":{"gt":1000}}}"#, 14),
        (r#"{"attributes":{"amount":{"gt":"1000"}}}"#, 14),
        ("attributes=amount=gt:1000", 14),
        (r#"{"attributes":{"amount":{"ge":1000,"le":1500}}}"#, 6),
        (r#"{"attributes":{"amount":{"eq":0}}}"#, 1),
        (r#"{"attributes":{"amount":{"in":[100,200,"300"]}}}"#, 3),
        (r#"{"status":{"eq":"C"}}"#, 5),
        (r#"{"status":{"eq":"Completed"}}"#, 5),
        (r#"{"status":{"ne":"C"}}"#, 20),
        ("status=eq:A", 20),
        (r#"{"currentState":{"in":["review"]}}"#, 10),
        ("currentState=in:review,done", 15),
        (r#"{"attributes":{"customer":{"tier":{"eq":"gold"}}}}"#, 9),
        (r#"{"attributes":{"customer.tier":{"eq":"gold"}}}"#, 9),
        (r#"{"attributes":{"customer.name":{"like":"customer 1"}}}"#, 11),
        (r#"{"key":{"like":"o-2*"}}"#, 5),
        (r#"{"or":[{"status":{"eq":"C"}},{"attributes":{"amount":{"lt":300}}}]}"#, 7),
        (r#"{"createdAt":{"gt":"2026-01-01T00:20:00Z"}}"#, 4),
        (r#"{"attributes":{"missing":{"eq":"x"}}}"#, 0),
    ];
    for (filter, expected) in cases {
        let page = list(&app, &[("filter", filter), ("pageSize", "100")]).await;
        assert_eq!(total(&page), *expected, "filter {filter}");
    }
    // Two filter parameters are AND-ed.
    let page = list(&app, &[("filter", "status=eq:A"), ("filter", r#"{"currentState":{"eq":"review"}}"#), ("pageSize", "100")]).await;
    assert_eq!(total(&page), 10);
    // `not`, and the OData-like form refused.
    let page = list(&app, &[("filter", r#"{"not":{"status":{"eq":"C"}}}"#), ("pageSize", "100")]).await;
    assert_eq!(total(&page), 20);
    let r = app.client.get(app.url(LIST)).query(&[("filter", "status eq 'A'")]).send().await.unwrap();
    expect_problem(r, 400, "request.invalid-filter").await;
}

#[tokio::test]
async fn list_pages_and_sorts() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    seed::orders(&pool).await;

    // Default: newest first, 10 a page, with links to the neighbours.
    let page = list(&app, &[]).await;
    assert_eq!(keys(&page).len(), 10);
    assert_eq!(page["links"]["self"], format!("{LIST}?page=1&pageSize=10"));
    assert_eq!(page["links"]["first"], format!("{LIST}?page=1&pageSize=10"));
    assert_eq!(page["links"]["next"], format!("{LIST}?page=2&pageSize=10"));
    assert_eq!(page["links"]["prev"], "");
    assert_eq!(keys(&page)[0], "o-24");
    let last = list(&app, &[("pageSize", "10"), ("page", "3")]).await;
    assert_eq!(keys(&last).len(), 5);
    assert_eq!(last["links"]["next"], "");
    assert_eq!(last["links"]["prev"], format!("{LIST}?page=2&pageSize=10"));
    assert_eq!(list(&app, &[("pageSize", "10"), ("page", "4")]).await["items"], json!([]));
    let r = app.client.get(app.url(LIST)).query(&[("pageSize", "101")]).send().await.unwrap();
    expect_problem(r, 400, "request.invalid-parameter").await;

    // Every instance exactly once across pages, in the asked order.
    let mut seen = Vec::new();
    for p in 1..=4 {
        let page = list(&app, &[("pageSize", "7"), ("page", &p.to_string()), ("sort", "attributes.amount:asc")]).await;
        seen.extend(keys(&page));
    }
    let expected: Vec<String> = (0..25).map(|i| format!("o-{i:02}")).collect();
    assert_eq!(seen, expected);

    assert_eq!(keys(&list(&app, &[("sort", "-attributes.amount")]).await)[0], "o-24");
    assert_eq!(keys(&list(&app, &[("sort", "key desc")]).await)[0], "o-24");
    assert_eq!(keys(&list(&app, &[("sort", "createdAt")]).await)[0], "o-00");
    assert_eq!(keys(&list(&app, &[("orderBy", r#"{"field":"key","direction":"asc"}"#)]).await)[0], "o-00");
    let by_tier = list(&app, &[("sort", "attributes.customer.tier:asc,key:asc"), ("pageSize", "100")]).await;
    assert_eq!(keys(&by_tier)[0], "o-00", "gold before silver, then by key");
    assert_eq!(keys(&by_tier)[9], "o-01");

    // List items are full envelopes.
    let item = &list(&app, &[("filter", r#"{"key":{"eq":"o-05"}}"#)]).await["items"][0];
    assert_eq!(item["metadata"]["status"], "C");
    assert_eq!(item["metadata"]["currentState"], "done");
    assert_eq!(item["attributes"]["amount"], 500);
    assert_eq!(item["flow"], "order");
    assert_eq!(item["domain"], "shop");
}

#[tokio::test]
async fn list_of_a_workflow_without_instances_is_empty() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let page = list(&app, &[]).await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["links"]["next"], "");
    expect_problem(app.get("/api/v1/shop/workflows/unpublished/instances").await, 404, "workflow.not-found").await;
}

#[tokio::test]
async fn get_instance_with_etag_and_304() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    let s = Seed::new("k-1", "draft", json!({ "amount": 5 }));
    s.insert(&pool).await;

    for path in [format!("{LIST}/{}", s.id), format!("{LIST}/k-1")] {
        let r = app.get(&path).await;
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(etag, format!("\"{}\"", s.etag));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], s.id.to_string());
        assert_eq!(body["key"], "k-1");
        assert_eq!(body["eTag"], etag);
        assert!(body.get("entityEtag").is_some_and(Value::is_string), "{body}");
        assert_eq!(body["flowVersion"], "1.0.0");
        assert_eq!(body["metadata"]["currentState"], "draft");
        assert_eq!(body["metadata"]["status"], "A");
        assert_eq!(body["metadata"]["dataVersion"], "1.0.0");
        assert_eq!(body["metadata"]["incident"]["hasActiveIncident"], false);
        assert_eq!(body["attributes"], json!({ "amount": 5 }));

        let r = app.client.get(app.url(&path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        assert!(r.bytes().await.unwrap().is_empty());
        let r = app.client.get(app.url(&path)).header("if-none-match", "\"stale\"").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let body = expect_problem(app.get(&format!("{LIST}/nobody")).await, 404, "instance.not-found").await;
    assert!(body["detail"].as_str().unwrap().contains("nobody"), "{body}");
    expect_problem(app.get(&format!("{LIST}/{}", uuid::Uuid::new_v4())).await, 404, "instance.not-found").await;
}

#[tokio::test]
async fn data_at_past_versions_and_history() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    let mut s = Seed::new("k-2", "review", json!({ "amount": 30, "note": "third" }));
    s.data_version = "1.2.0".into();
    s.data_version_no = 3;
    s.insert(&pool).await;
    let t1 = seed::transition(&pool, s.id, 1, "create", None, "draft", Some(("1.0.0", 1, json!({ "amount": 10 })))).await;
    seed::transition(&pool, s.id, 2, "comment", Some("draft"), "draft", Some(("1.1.0", 2, json!({ "amount": 20 })))).await;
    seed::transition(&pool, s.id, 3, "submit", Some("draft"), "review", Some(("1.2.0", 3, s.data.clone()))).await;
    sqlx::query(
        "INSERT INTO \"order\".task_runs (id, instance_id, transition_id, task_key, task_version, task_type, phase,
             task_order, status, request, response, started_at, finished_at, duration_ms)
         VALUES ($1, $2, $3, 'score', '1.0.0', '7', 'entry', 1, 'succeeded', '{}', '{\"score\": 7}', now(), now(), 2.0)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(s.id)
    .bind(t1)
    .execute(&pool)
    .await
    .unwrap();

    let data = |q: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("{LIST}/k-2/functions/data{q}")).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, now) = data("").await;
    assert_eq!(status, 200);
    assert_eq!(now["data"], s.data);
    assert_eq!(now["dataVersion"], "1.2.0");
    assert_eq!(now["isLatest"], true);
    assert_eq!(now["eTag"], format!("\"{}\"", s.etag));
    let (_, first) = data("?version=1.0.0").await;
    assert_eq!(first["data"], json!({ "amount": 10 }));
    assert_eq!(first["dataVersionNo"], 1);
    assert_eq!(first["isLatest"], false);
    let (_, second) = data("?version=2").await;
    assert_eq!(second["data"], json!({ "amount": 20 }));
    assert_eq!(second["dataVersion"], "1.1.0");
    let (_, current) = data("?version=1.2.0").await;
    assert_eq!(current["isLatest"], true);
    let r = app.get(&format!("{LIST}/k-2/functions/data?version=9.9.9")).await;
    expect_problem(r, 404, "data-version.not-found").await;
    let r = app.get(&format!("{LIST}/k-2/functions/data?version=latest-ish")).await;
    expect_problem(r, 400, "request.invalid-parameter").await;

    let history: Value = app.get(&format!("{LIST}/k-2/transitions")).await.json().await.unwrap();
    let rows = history["transitions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().map(|r| r["transitionId"].as_str().unwrap()).collect::<Vec<_>>(), ["create", "comment", "submit"]);
    assert_eq!(rows[2]["fromState"], "draft");
    assert_eq!(rows[2]["toState"], "review");
    assert_eq!(rows[0]["tasks"][0]["taskKey"], "score");
    assert_eq!(rows[0]["tasks"][0]["response"], json!({ "score": 7 }));
    assert_eq!(rows[1]["tasks"], json!([]));
}

#[tokio::test]
async fn state_function_lists_transitions_by_kind_and_armed_timers() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    let draft = Seed::new("d-1", "draft", json!({}));
    draft.insert(&pool).await;
    let review = Seed::new("r-1", "review", json!({}));
    review.insert(&pool).await;
    let mut done = Seed::new("c-1", "done", json!({}));
    done.status = "C";
    done.insert(&pool).await;
    let due = chrono::Utc::now() + chrono::Duration::hours(1);
    sqlx::query(
        "INSERT INTO sys_queues.jobs (id, kind, flow, instance_id, transition_key, armed_state, due_at)
         VALUES ($1, 'timer', 'order', $2, 'expire', 'review', $3)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(review.id)
    .bind(due)
    .execute(&pool)
    .await
    .unwrap();

    let kinds = |v: &Value| -> BTreeSet<(String, String)> {
        v["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_string(), t["kind"].as_str().unwrap().to_string()))
            .collect()
    };
    let set = |items: &[(&str, &str)]| items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<BTreeSet<_>>();

    let r = app.get(&format!("{LIST}/d-1/functions/state")).await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "draft");
    assert_eq!(v["status"], "A");
    assert_eq!(v["view"]["hasView"], true);
    assert_eq!(v["view"]["loadData"], true);
    assert_eq!(
        kinds(&v),
        set(&[("submit", "stateTransition"), ("comment", "sharedTransition"), ("cancel", "cancel"), ("update", "updateData")])
    );
    let submit = v["transitions"].as_array().unwrap().iter().find(|t| t["name"] == "submit").unwrap();
    assert_eq!(submit["href"], format!("/api/v1/shop/workflows/order/instances/{}/transitions/submit", draft.id));
    assert_eq!(submit["schema"]["hasSchema"], false);
    let r = app.client.get(app.url(&format!("{LIST}/d-1/functions/state"))).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(r.status(), 304);

    let v: Value = app.get(&format!("{LIST}/r-1/functions/state")).await.json().await.unwrap();
    assert_eq!(
        kinds(&v),
        set(&[("approve", "stateTransition"), ("comment", "sharedTransition"), ("cancel", "cancel"), ("expire", "scheduled")])
    );
    let expire = v["transitions"].as_array().unwrap().iter().find(|t| t["name"] == "expire").unwrap();
    let at: chrono::DateTime<chrono::Utc> = expire["executeAtUtc"].as_str().unwrap().parse().unwrap();
    assert!((at - due).num_milliseconds().abs() < 1000, "{at} vs {due}");
    let approve = v["transitions"].as_array().unwrap().iter().find(|t| t["name"] == "approve").unwrap();
    assert_eq!(approve["schema"]["hasSchema"], true);

    let v: Value = app.get(&format!("{LIST}/c-1/functions/state")).await.json().await.unwrap();
    assert_eq!(v["transitions"], json!([]));
}

#[tokio::test]
async fn view_and_schema_functions() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    Seed::new("d-1", "draft", json!({ "amount": 7 })).insert(&pool).await;
    Seed::new("r-1", "review", json!({})).insert(&pool).await;

    let v: Value = app.get(&format!("{LIST}/d-1/functions/view")).await.json().await.unwrap();
    assert_eq!(v["key"], "order-view");
    assert_eq!(v["content"], fixtures::view()["attributes"]["content"]);
    assert_eq!(v["loadData"], true);
    assert_eq!(v["data"], json!({ "amount": 7 }));
    assert_eq!(v["label"], "");
    assert!(v["type"].is_string(), "the type's name: {v}");
    expect_problem(app.get(&format!("{LIST}/r-1/functions/view")).await, 404, "view.not-found").await;
    expect_problem(app.get(&format!("{LIST}/r-1/functions/view?transition=nope")).await, 404, "transition.not-found").await;

    let v: Value = app.get(&format!("{LIST}/r-1/functions/schema?transition=approve")).await.json().await.unwrap();
    assert_eq!(v["key"], "order-approval");
    assert_eq!(v["schema"], fixtures::approval_schema()["attributes"]["schema"]);
    let v: Value = app.get(&format!("{LIST}/r-1/functions/schema?transition=create")).await.json().await.unwrap();
    assert_eq!(v["key"], "order-start");
    expect_problem(app.get(&format!("{LIST}/r-1/functions/schema?transition=submit")).await, 404, "schema.not-found").await;
    expect_problem(app.get(&format!("{LIST}/r-1/functions/schema")).await, 404, "schema.not-found").await;
    expect_problem(app.get(&format!("{LIST}/r-1/functions/schema?transition=nope")).await, 404, "transition.not-found").await;
    expect_problem(app.get(&format!("{LIST}/r-1/functions/other")).await, 404, "function.not-found").await;
    // The engine's parameter name.
    let v: Value = app.get(&format!("{LIST}/r-1/functions/schema?transitionKey=approve")).await.json().await.unwrap();
    assert_eq!(v["key"], "order-approval");
    assert_eq!(v["transitionKey"], "approve");
    assert!(v["eTag"].as_str().is_some_and(|e| e.starts_with('"')), "{v}");
}

#[tokio::test]
async fn incidents_newest_first_and_active_only() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    let s = Seed::new("f-1", "review", json!({}));
    s.insert(&pool).await;
    for (i, resolved) in [(1, true), (2, false)] {
        sqlx::query(
            "INSERT INTO \"order\".incidents (id, instance_id, state, transition_key, task_key, error_code, message,
                 status_code, resolved, created_at)
             VALUES ($1, $2, 'review', 'approve', 'notify', 'Task:503', $3, 503, $4, now() + make_interval(secs => $5))",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(s.id)
        .bind(format!("failure {i}"))
        .bind(resolved)
        .bind(f64::from(i))
        .execute(&pool)
        .await
        .unwrap();
    }
    let all: Value = app.get(&format!("{LIST}/f-1/incidents")).await.json().await.unwrap();
    assert_eq!(all["pagination"]["totalCount"], 2);
    assert_eq!(all["data"][0]["message"], "failure 2");
    assert_eq!(all["data"][0]["errorCode"], "Task:503");
    assert_eq!(all["data"][1]["resolved"], true);
    let active: Value = app.get(&format!("{LIST}/f-1/incidents/active")).await.json().await.unwrap();
    assert_eq!(active["pagination"]["totalCount"], 1);
    assert_eq!(active["data"][0]["message"], "failure 2");
    expect_problem(app.get(&format!("{LIST}/nobody/incidents")).await, 404, "instance.not-found").await;
}
