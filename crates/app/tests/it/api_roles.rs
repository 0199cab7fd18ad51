//! The workflow model's `roles` and `queryRoles` for API keys with roles,
//! plus the domain cap and reserved domain names.
//!
//! Workflow `ticket` (domain `shop`):
//! ```text
//! create (roles: clerk) ─▶ open          queryRoles (workflow): clerk, auditor
//!   open ── approve (roles: manager; intern denied) ──▶ approved
//!   approved (queryRoles: manager) ── close ──▶ closed (final)
//!   note (shared, $self; roles: clerk, manager; in `open`, and in
//!         `approved` for managers only)
//! ```

use crate::api_support;

use api_support::{TestApp, expect_problem, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use vnext_init::keys::{self, NewKey};

const BASE: &str = "/api/v1/shop/workflows/ticket/instances";

fn grants(pairs: &[(&str, &str)]) -> Value {
    json!(pairs.iter().map(|(role, grant)| json!({ "role": role, "grant": grant })).collect::<Vec<_>>())
}

pub fn ticket() -> Value {
    let label = |t: &str| json!([{ "label": t, "language": "en-US" }]);
    let manual = |key: &str, target: &str, roles: Value| {
        json!({ "key": key, "target": target, "triggerType": 0, "versionStrategy": "None", "labels": label(key), "roles": roles })
    };
    let mut note = manual("note", "$self", grants(&[("clerk", "allow"), ("manager", "allow")]));
    note["availableIn"] = json!(["open", { "state": "approved", "roles": grants(&[("manager", "allow")]) }]);
    json!({
        "key": "ticket", "version": "1.0.0", "domain": "shop", "flow": "sys-flows", "flowVersion": "1.0.0", "tags": ["test"],
        "attributes": {
            "type": "F", "labels": label("Ticket"),
            "startTransition": manual("create", "open", grants(&[("clerk", "allow")])),
            "queryRoles": grants(&[("clerk", "allow"), ("auditor", "allow")]),
            "sharedTransitions": [note],
            "states": [
                { "key": "open", "stateType": 1, "versionStrategy": "None", "labels": label("Open"),
                  "transitions": [manual("approve", "approved", grants(&[("manager", "allow"), ("intern", "deny")]))] },
                { "key": "approved", "stateType": 2, "versionStrategy": "None", "labels": label("Approved"),
                  "queryRoles": grants(&[("manager", "allow")]),
                  "transitions": [manual("close", "closed", json!([]))] },
                { "key": "closed", "stateType": 3, "versionStrategy": "None", "labels": label("Closed"), "transitions": [] }
            ]
        }
    })
}

async fn key(app: &TestApp, name: &str, admin: bool, roles: &[&str]) -> String {
    let grants: Vec<String> = if admin { vec![] } else { vec!["read".into(), "write".into()] };
    let domain = (!admin).then_some("shop");
    let request = NewKey::from_parts(name, admin, domain, &grants, roles.iter().map(ToString::to_string).collect()).unwrap();
    keys::create(&app.init, &request).await.unwrap().1
}

async fn call(app: &TestApp, method: Method, path: impl AsRef<str>, key: impl AsRef<str>, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path.as_ref())).bearer_auth(key.as_ref());
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn denied(response: reqwest::Response) -> Value {
    expect_problem(response, 403, "auth.role-denied").await
}

#[tokio::test]
async fn transition_roles_and_query_roles_for_keys_with_roles() {
    let app = TestApp::spawn().await;
    app.provision("shop").await;
    assert_eq!(app.publish(&ticket()).await.status(), 201);
    let admin = key(&app, "admin", true, &[]).await;
    let clerk = key(&app, "clerk", false, &["clerk"]).await;
    let manager = key(&app, "manager", false, &["manager"]).await;
    let intern_manager = key(&app, "intern-manager", false, &["manager", "intern"]).await;
    let lead = key(&app, "lead", false, &["clerk", "manager"]).await;
    let nobody = key(&app, "nobody", false, &[]).await;
    let start = |k: &str, name: &str| call(&app, Method::POST, format!("{BASE}/start?sync=true"), k.to_string(), Some(json!({ "key": name.to_string(), "attributes": {} })));

    // Start: the start transition's roles.
    for k in [&manager, &nobody] {
        let problem = denied(start(k, "t-x").await).await;
        assert_eq!(problem["transition"], "create", "{problem}");
    }
    json_of(start(&clerk, "t-1").await, 200).await;
    json_of(start(&clerk, "t-2").await, 200).await;

    // A transition's roles: deny wins over allow; no match denies; async too.
    let approve = |k: &str, id: &str, sync: bool| call(&app, Method::PATCH, format!("{BASE}/{id}/transitions/approve?sync={sync}"), k.to_string(), Some(json!({})));
    denied(approve(&clerk, "t-1", true).await).await;
    denied(approve(&intern_manager, "t-1", true).await).await;
    denied(approve(&clerk, "t-1", false).await).await;
    let approved = json_of(approve(&manager, "t-1", true).await, 200).await;
    assert_eq!(approved["metadata"]["currentState"], "approved", "{approved}");

    // queryRoles: the state's list replaces the workflow's.
    let get = |k: &str, path: String| call(&app, Method::GET, path, k.to_string(), None);
    for path in [format!("{BASE}/t-1"), format!("{BASE}/t-1/functions/state"), format!("{BASE}/t-1/functions/data"), format!("{BASE}/t-1/transitions"), format!("{BASE}/t-1/incidents")] {
        denied(get(&clerk, path.clone()).await).await;
        assert_eq!(get(&manager, path.clone()).await.status(), 200, "{path}");
        assert_eq!(get(&admin, path).await.status(), 200, "an admin key is not bound by roles");
    }
    denied(get(&manager, format!("{BASE}/t-2")).await).await;
    assert_eq!(get(&clerk, format!("{BASE}/t-2")).await.status(), 200);

    // Lists leave out what the caller may not read; counts agree.
    let ids = |page: Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap_or_default().to_string()).collect()
    };
    let page = json_of(get(&clerk, BASE.to_string()).await, 200).await;
    assert_eq!((ids(page.clone()), page["links"]["next"].clone()), (vec!["t-2".to_string()], json!("")), "{page}");
    let page = json_of(get(&manager, BASE.to_string()).await, 200).await;
    assert_eq!(ids(page), ["t-1"]);
    let page = json_of(get(&admin, BASE.to_string()).await, 200).await;
    assert_eq!(ids(page).len(), 2);

    // functions/authorize answers the same gates: 200 allowed, 403 not.
    let authorize = |k: &str, id: &str, q: &str| call(&app, Method::GET, format!("{BASE}/{id}/functions/authorize?{q}"), k.to_string(), None);
    let r = authorize(&lead, "t-2", "transitionKey=approve").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "allowed": true }));
    let r = authorize(&clerk, "t-2", "transitionKey=approve").await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "allowed": false }));
    let r = authorize(&clerk, "t-1", "queryRoles=true").await;
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()), (403, json!({ "allowed": false })));
    assert_eq!(authorize(&manager, "t-1", "queryRoles=true").await.status(), 200);
    expect_problem(authorize(&manager, "t-1", "queryRoles=true&transitionKey=approve").await, 400, "request.invalid-parameter").await;
    expect_problem(authorize(&manager, "t-1", "").await, 400, "request.invalid-parameter").await;

    // The state function offers only what the caller's roles may run.
    let offered = |state: Value| -> Vec<String> {
        state["transitions"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    let state = json_of(get(&clerk, format!("{BASE}/t-2/functions/state")).await, 200).await;
    assert!(offered(state.clone()).contains(&"note".to_string()) && !offered(state).contains(&"approve".to_string()));
    let state = json_of(get(&lead, format!("{BASE}/t-2/functions/state")).await, 200).await;
    assert!(offered(state).contains(&"approve".to_string()));

    // An availableIn entry narrows a shared transition in its state.
    let note = |k: &str, id: &str| call(&app, Method::PATCH, format!("{BASE}/{id}/transitions/note?sync=true"), k.to_string(), Some(json!({})));
    assert_eq!(note(&clerk, "t-2").await.status(), 200);
    let problem = denied(note(&clerk, "t-1").await).await;
    assert_eq!(problem["transition"], "note");
    assert_eq!(note(&lead, "t-1").await.status(), 200);
    // An empty list restricts nothing; the admin is not bound by roles.
    assert_eq!(call(&app, Method::PATCH, format!("{BASE}/t-1/transitions/close?sync=true"), &manager, Some(json!({}))).await.status(), 200);
    assert_eq!(approve(&admin, "t-2", true).await.status(), 200);
}

fn schema_in(domain: &str) -> Value {
    let mut schema = fixtures::start_schema();
    schema["domain"] = json!(domain);
    schema
}

#[tokio::test]
async fn each_key_provisions_at_most_its_cap_of_domains() {
    let app = TestApp::spawn_with(|c| c.app.max_domains_per_key = 2).await;
    let first = key(&app, "first", true, &[]).await;
    let second = key(&app, "second", true, &[]).await;
    let publish = |k: &str, domain: &str| call(&app, Method::POST, "/api/v1/definitions/publish", k.to_string(), Some(schema_in(domain)));
    assert_eq!(publish(&first, "cap-a").await.status(), 201);
    assert_eq!(publish(&first, "cap-b").await.status(), 201);
    let problem = expect_problem(publish(&first, "cap-c").await, 403, "domain.cap-reached").await;
    assert_eq!((problem["limit"].clone(), problem["provisioned"].clone()), (json!(2), json!(2)), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("app.max_domains_per_key"), "{problem}");
    let registered: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM vnext_control.domains WHERE domain = 'cap-c')")
        .fetch_one(app.init.control())
        .await
        .unwrap();
    assert!(!registered, "nothing of the refused domain is registered");
    // Its own domains stay open to it; another key has a cap of its own.
    let mut again = schema_in("cap-a");
    again["version"] = json!("1.0.1");
    assert_eq!(call(&app, Method::POST, "/api/v1/definitions/publish", &first, Some(again)).await.status(), 201);
    assert_eq!(publish(&second, "cap-c").await.status(), 201);
    let by: Vec<(String, Option<String>)> = sqlx::query_as("SELECT domain, provisioned_by FROM vnext_control.domains ORDER BY domain")
        .fetch_all(app.init.control())
        .await
        .unwrap();
    assert!(by.iter().all(|(_, b)| b.as_deref().is_some_and(|b| b.starts_with("key:"))), "{by:?}");
}

#[tokio::test]
async fn domains_named_like_routes_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = key(&app, "admin", true, &[]).await;
    for name in vnext_core::ident::RESERVED_DOMAINS {
        let r = call(&app, Method::POST, "/api/v1/definitions/publish", &admin, Some(schema_in(name))).await;
        let problem = expect_problem(r, 422, "domain.reserved").await;
        assert_eq!(problem["violations"][0]["pointer"], "/domain", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(name), "{problem}");
    }
    let domains: i64 = sqlx::query_scalar("SELECT count(*) FROM vnext_control.domains").fetch_one(app.init.control()).await.unwrap_or(0);
    assert_eq!(domains, 0);
    let refused = NewKey::from_parts("k", false, Some("admin"), &["read".into()], vec![]).unwrap_err();
    assert!(refused.contains("reserved"), "{refused}");
}
