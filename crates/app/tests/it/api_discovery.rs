//! Discovery: the domains a caller may see, a domain's workflows (versions,
//! schema, instance counts), its components, a workflow's summary; paged like
//! the instance list; unknown names are 404 problems, bad parameters 400.

use crate::api_support;

use api_support::{TestApp, expect_problem, fixtures};
use serde_json::{Value, json};
use vnext_init::keys::{self, NewKey};

async fn key(app: &TestApp, name: &str, admin: bool, domain: Option<&str>, grants: &[&str]) -> String {
    let grants: Vec<String> = grants.iter().map(ToString::to_string).collect();
    let request = NewKey::from_parts(name, admin, domain, &grants, Vec::new()).unwrap();
    keys::create(&app.init, &request).await.unwrap().1
}

async fn get_json(app: &TestApp, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn ok_json(app: &TestApp, path: &str) -> Value {
    let (status, body) = get_json(app, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn item<'a>(body: &'a Value, field: &str, value: &str) -> &'a Value {
    let items = body["items"].as_array().expect("items");
    items.iter().find(|i| i[field] == value).unwrap_or_else(|| panic!("no item with {field} = {value}: {body}"))
}

async fn start(app: &TestApp, key: &str) {
    let r = app.post_json("/api/v1/shop/workflows/order/instances/start?sync=true", &json!({ "key": key, "attributes": { "amount": 5 } })).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn workflows_show_versions_schema_and_instance_counts() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let r = app.publish(&fixtures::workflow_version("1.1.0")).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let body = ok_json(&app, "/api/v1/shop/workflows").await;
    let order = item(&body, "key", "order");
    assert_eq!(order["versions"], json!(["1.0.0", "1.1.0"]));
    assert_eq!(order["latest"], "1.1.0");
    assert_eq!(order["schemaExists"], false, "no instance started yet: {order}");
    assert!(order["instances"].as_object().unwrap().values().all(|n| n == 0), "{order}");

    for k in ["d-1", "d-2", "d-3"] {
        start(&app, k).await;
    }
    let r = app.client.patch(app.url("/api/v1/shop/workflows/order/instances/d-3/transitions/cancel?sync=true")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // What each instance says of itself, tallied by status letter.
    let mut expected = serde_json::Map::new();
    for letter in ["A", "B", "C", "F", "P"] {
        expected.insert(letter.into(), json!(0));
    }
    for k in ["d-1", "d-2", "d-3"] {
        let instance = ok_json(&app, &format!("/api/v1/shop/workflows/order/instances/{k}")).await;
        let letter = instance["metadata"]["status"].as_str().unwrap().to_string();
        let n = expected[&letter].as_i64().unwrap();
        expected.insert(letter, json!(n + 1));
    }
    assert_eq!(expected["A"], 2, "two started instances stay active: {expected:?}");

    let body = ok_json(&app, "/api/v1/shop/workflows").await;
    let order = item(&body, "key", "order");
    assert_eq!(order["schemaExists"], true, "{order}");
    assert_eq!(order["instances"], Value::Object(expected), "{order}");
}

#[tokio::test]
async fn components_list_every_version_and_filter_by_kind() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;

    let all = ok_json(&app, "/api/v1/shop/components?pageSize=100").await;
    let items = all["items"].as_array().unwrap();
    let published = fixtures::package();
    assert_eq!(items.len(), published.len(), "{all}");
    for component in &published {
        let found = items.iter().find(|i| i["key"] == component["key"] && i["flow"] == component["flow"]);
        let found = found.unwrap_or_else(|| panic!("{} missing: {all}", component["key"]));
        assert_eq!(found["version"], component["version"]);
        assert!(found["publishedAt"].as_str().is_some_and(|t| t.contains('T')), "{found}");
    }

    let schemas = ok_json(&app, "/api/v1/shop/components?kind=sys-schemas").await;
    let keys: Vec<&str> = schemas["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["order-approval", "order-start"], "{schemas}");
    assert!(schemas["items"].as_array().unwrap().iter().all(|i| i["flow"] == "sys-schemas"));
    let tasks = ok_json(&app, "/api/v1/shop/components?kind=sys-tasks").await;
    assert_eq!(tasks["items"], json!([]));

    let problem = expect_problem(app.get("/api/v1/shop/components?kind=gadgets").await, 400, "request.invalid-parameter").await;
    assert!(problem["detail"].as_str().unwrap().contains("`kind`"), "{problem}");
    assert_eq!(problem["parameter"], "kind");
}

#[tokio::test]
async fn summary_describes_a_version() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let r = app.publish(&fixtures::workflow_version("1.1.0")).await;
    assert_eq!(r.status(), 201);

    let latest = ok_json(&app, "/api/v1/shop/workflows/order").await;
    assert_eq!(latest["version"], "1.1.0");
    assert_eq!(latest["versions"], json!(["1.0.0", "1.1.0"]));
    assert_eq!(latest["startTransition"], json!({ "key": "create", "from": null, "target": "draft", "triggerType": "manual", "scope": "start" }));
    let states: Vec<(String, String)> =
        latest["states"].as_array().unwrap().iter().map(|s| (s["key"].as_str().unwrap().into(), s["type"].as_str().unwrap().into())).collect();
    let expected: Vec<(String, String)> =
        [("draft", "initial"), ("review", "intermediate"), ("done", "finish"), ("cancelled", "finish")].iter().map(|(a, b)| ((*a).into(), (*b).into())).collect();
    assert_eq!(states, expected);
    let transitions = latest["transitions"].as_array().unwrap();
    let expire = transitions.iter().find(|t| t["key"] == "expire").expect("expire");
    assert_eq!(expire["from"], "review");
    assert_eq!(expire["target"], "done");
    assert_eq!(expire["triggerType"], "scheduled");
    let comment = transitions.iter().find(|t| t["key"] == "comment").expect("comment");
    assert_eq!(comment["scope"], "shared");
    assert_eq!(comment["availableIn"], json!(["draft", "review"]));
    assert!(transitions.iter().any(|t| t["key"] == "cancel" && t["scope"] == "cancel" && t["target"] == "cancelled"));
    // The fixture workflow runs no task.
    assert_eq!(latest["tasks"], json!([]));

    let older = ok_json(&app, "/api/v1/shop/workflows/order?version=1.0.0").await;
    assert_eq!(older["version"], "1.0.0");
    expect_problem(app.get("/api/v1/shop/workflows/order?version=banana").await, 400, "request.invalid-parameter").await;
    expect_problem(app.get("/api/v1/shop/workflows/order?version=7.0.0").await, 404, "workflow.version-not-found").await;

    // A workflow whose state runs a task lists it once, as referenced.
    for component in fixtures::failing_http_package("probe", None) {
        let r = app.publish(&component).await;
        assert!(r.status().is_success(), "publish {}: {}", component["key"], r.text().await.unwrap());
    }
    let probe = ok_json(&app, "/api/v1/shop/workflows/probe").await;
    assert_eq!(probe["tasks"], json!([{"key": "remote", "domain": "shop", "flow": "sys-tasks", "version": "1.0.0"}]), "{probe}");
}

#[tokio::test]
async fn lists_page_and_unknown_names_are_404() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let r = app.publish(&fixtures::loop_workflow()).await;
    assert_eq!(r.status(), 201);

    let first = ok_json(&app, "/api/v1/shop/workflows?pageSize=1").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["links"]["next"], "/api/v1/shop/workflows?page=2&pageSize=1");
    assert_eq!(first["links"]["prev"], "");
    let second = ok_json(&app, first["links"]["next"].as_str().unwrap()).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["links"]["next"], "");
    assert_ne!(first["items"][0]["key"], second["items"][0]["key"]);

    let components = ok_json(&app, "/api/v1/shop/components?kind=sys-flows&pageSize=1").await;
    assert_eq!(components["links"]["next"], "/api/v1/shop/components?page=2&pageSize=1&kind=sys-flows");
    expect_problem(app.get("/api/v1/shop/workflows?pageSize=101").await, 400, "request.invalid-parameter").await;

    expect_problem(app.get("/api/v1/nowhere/workflows").await, 404, "domain.not-found").await;
    expect_problem(app.get("/api/v1/nowhere/components").await, 404, "domain.not-found").await;
    expect_problem(app.get("/api/v1/shop/workflows/nothing").await, 404, "workflow.not-found").await;
    // Reserved names are never domains: these paths answer 404, and the
    // fixed routes beside them keep working.
    expect_problem(app.get("/api/v1/definitions/workflows").await, 404, "domain.not-found").await;
    expect_problem(app.get("/api/v1/admin/workflows").await, 404, "domain.not-found").await;
    assert_eq!(app.get("/api/v1/definitions/re-initialize").await.status(), 200);
}

#[tokio::test]
async fn domains_are_listed_as_the_caller_may_see_them() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    app.provision("depot").await;

    // Open development run: every domain.
    let open = ok_json(&app, "/api/v1/domains").await;
    let names: Vec<&str> = open["items"].as_array().unwrap().iter().map(|d| d["domain"].as_str().unwrap()).collect();
    assert_eq!(names, ["depot", "shop"]);
    let shop = item(&open, "domain", "shop");
    assert_eq!(shop["status"], "active");
    assert_eq!(shop["database"], format!("{}shop", app.prefix));
    assert_eq!(shop["server"], "127.0.0.1:5432");
    assert_eq!(shop["flowCount"], 1);
    assert_eq!(item(&open, "domain", "depot")["flowCount"], 0);
    assert!(!open.to_string().contains("postgres@"), "no credentials: {open}");

    let paged = ok_json(&app, "/api/v1/domains?pageSize=1").await;
    assert_eq!(paged["links"]["next"], "/api/v1/domains?page=2&pageSize=1");

    let admin = key(&app, "admin", true, None, &[]).await;
    let reader = key(&app, "reader", false, Some("shop"), &["read"]).await;
    let writer = key(&app, "writer", false, Some("shop"), &["write"]).await;

    let (status, body) = get_json(&app, "/api/v1/domains", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().unwrap().len(), 2, "{body}");
    let (status, body) = get_json(&app, "/api/v1/domains", Some(&reader)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["items"].as_array().unwrap().iter().map(|d| d["domain"].as_str().unwrap()).collect();
    assert_eq!(names, ["shop"]);
    let (status, body) = get_json(&app, "/api/v1/domains", Some(&writer)).await;
    assert_eq!((status, body["items"].clone()), (200, json!([])), "no `read`, nothing listed");
    let (status, _) = get_json(&app, "/api/v1/domains", None).await;
    assert_eq!(status, 401);

    // Domain reads need `read` on that domain.
    let (status, body) = get_json(&app, "/api/v1/shop/workflows", Some(&reader)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get_json(&app, "/api/v1/depot/workflows", Some(&reader)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = get_json(&app, "/api/v1/shop/components", Some(&writer)).await;
    assert_eq!(status, 403, "{body}");

    // A domain whose server does not answer (a closed loopback port) leaves
    // its count out; the others are still listed.
    sqlx::query("INSERT INTO vnext_control.domains (domain, database, server_url, status) VALUES ('ghost', $1, 'postgres://postgres@127.0.0.1:9/x', 'active')")
        .bind(format!("{}ghost", app.prefix))
        .execute(app.init.control())
        .await
        .unwrap();
    let (status, body) = get_json(&app, "/api/v1/domains", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let ghost = item(&body, "domain", "ghost");
    assert_eq!((ghost["server"].as_str(), ghost["flowCount"].is_null()), (Some("127.0.0.1:9"), true), "{ghost}");
    assert_eq!(item(&body, "domain", "shop")["flowCount"], 1);
}
