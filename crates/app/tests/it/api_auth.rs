//! API keys at the edge: missing, invalid and revoked keys, each grant allowed
//! and denied, admin-only provisioning, the admin API, and the control-database
//! take-over through publish refused with nothing changed.

use crate::api_support;

use api_support::{TestApp, expect_problem, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use vnext_init::keys::{self, NewKey};

const BASE: &str = "/api/v1/shop/workflows/order/instances";

/// The fixtures published while the API is still open, then an admin key:
/// from then on every request needs a key.
async fn ready() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let admin = key(&app, "admin", true, None, &[]).await;
    (app, admin)
}

async fn key(app: &TestApp, name: &str, admin: bool, domain: Option<&str>, grants: &[&str]) -> String {
    let grants: Vec<String> = grants.iter().map(ToString::to_string).collect();
    let request = NewKey::from_parts(name, admin, domain, &grants, vec!["clerk".into()]).unwrap();
    keys::create(&app.init, &request).await.unwrap().1
}

async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>, body: Option<&Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

async fn start(app: &TestApp, key: &str) -> reqwest::Response {
    call(app, Method::POST, &format!("{BASE}/start?sync=true"), Some(key), Some(&json!({ "amount": 3 }))).await
}

async fn forbidden(response: reqwest::Response, grant: &str) {
    let body = expect_problem(response, 403, "auth.forbidden").await;
    assert_eq!(body["missingGrant"], grant, "{body}");
}

#[tokio::test]
async fn open_until_a_key_exists_then_missing_and_invalid_keys_are_401() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    assert_eq!(app.get(BASE).await.status(), 200, "loopback without keys runs open");
    let admin = key(&app, "admin", true, None, &[]).await;

    let r = app.get(BASE).await;
    assert_eq!(r.headers()["www-authenticate"].to_str().unwrap(), "Bearer realm=\"vnext\"");
    expect_problem(r, 401, "auth.missing-key").await;
    let r = call(&app, Method::GET, BASE, Some("vnk_0000"), None).await;
    assert!(r.headers().contains_key("www-authenticate"));
    expect_problem(r, 401, "auth.invalid-key").await;
    expect_problem(app.get("/metrics").await, 401, "auth.missing-key").await;
    expect_problem(app.get("/no/such/route").await, 401, "auth.missing-key").await;
    expect_problem(app.post_json("/api/v1/definitions/publish", &fixtures::workflow()).await, 401, "auth.missing-key").await;

    // Liveness and readiness stay open; the internal endpoint keeps its own secret.
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    expect_problem(app.post_json("/api/v1/internal/trigger", &json!({})).await, 401, "auth.missing-key").await;
    let internal = app.client.post(format!("{}/api/v1/internal/trigger", app.internal_base)).json(&json!({})).send().await.unwrap();
    expect_problem(internal, 401, "auth.unauthorized").await;

    assert_eq!(call(&app, Method::GET, BASE, Some(&admin), None).await.status(), 200);
    assert_eq!(call(&app, Method::GET, "/metrics", Some(&admin), None).await.status(), 200);
    let by_header = app.client.get(app.url(BASE)).header("x-api-key", &admin).send().await.unwrap();
    assert_eq!(by_header.status(), 200);
}

#[tokio::test]
async fn each_grant_is_allowed_and_denied() {
    let (app, admin) = ready().await;
    let read = key(&app, "reader", false, Some("shop"), &["read"]).await;
    let write = key(&app, "writer", false, Some("shop"), &["write"]).await;
    let publish = key(&app, "publisher", false, Some("shop"), &["publish"]).await;
    let elsewhere = key(&app, "other", false, Some("elsewhere"), &["publish", "write", "read"]).await;

    // write: start and transition.
    forbidden(start(&app, &read).await, "write").await;
    forbidden(start(&app, &elsewhere).await, "write").await;
    let r = start(&app, &write).await;
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let submit = format!("{BASE}/{id}/transitions/submit?sync=true");
    forbidden(call(&app, Method::PATCH, &submit, Some(&read), Some(&json!({}))).await, "write").await;
    assert_eq!(call(&app, Method::PATCH, &submit, Some(&write), Some(&json!({}))).await.status(), 200);

    // read: instances, history, functions, definitions.
    for path in [
        format!("{BASE}/{id}"),
        format!("{BASE}/{id}/transitions"),
        format!("{BASE}/{id}/functions/state"),
        "/api/v1/shop/definitions/sys-flows/order".to_string(),
    ] {
        forbidden(call(&app, Method::GET, &path, Some(&write), None).await, "read").await;
        forbidden(call(&app, Method::GET, &path, Some(&elsewhere), None).await, "read").await;
        assert_eq!(call(&app, Method::GET, &path, Some(&read), None).await.status(), 200, "{path}");
        assert_eq!(call(&app, Method::GET, &path, Some(&admin), None).await.status(), 200, "{path}");
    }

    // publish into the existing domain.
    let next = fixtures::workflow_version("1.1.0");
    for denied in [&read, &write, &elsewhere] {
        forbidden(call(&app, Method::POST, "/api/v1/definitions/publish", Some(denied), Some(&next)).await, "publish").await;
    }
    assert_eq!(call(&app, Method::POST, "/api/v1/definitions/publish", Some(&publish), Some(&next)).await.status(), 201);

    // Key management is admin only.
    for denied in [&read, &write, &publish] {
        forbidden(call(&app, Method::GET, "/api/v1/admin/keys", Some(denied), None).await, "admin").await;
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let (app, admin) = ready().await;
    let body = json!({ "name": "ci", "domain": "shop", "grants": ["read", "write"], "roles": ["ops"] });
    let r = call(&app, Method::POST, "/api/v1/admin/keys", Some(&admin), Some(&body)).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("vnk_") && secret.len() == 68, "{secret}");
    assert_eq!(created["grants"], json!(["write", "read"]));
    assert_eq!(created["roles"], json!(["ops"]));
    assert_eq!(call(&app, Method::GET, BASE, Some(&secret), None).await.status(), 200);

    let listed = call(&app, Method::GET, "/api/v1/admin/keys", Some(&admin), None).await.text().await.unwrap();
    assert!(listed.contains("\"ci\"") && !listed.contains(&secret[4..]), "{listed}");

    let id = created["id"].as_str().unwrap();
    let r = call(&app, Method::DELETE, &format!("/api/v1/admin/keys/{id}"), Some(&admin), None).await;
    assert_eq!(r.status(), 204);
    expect_problem(call(&app, Method::GET, BASE, Some(&secret), None).await, 401, "auth.invalid-key").await;
    expect_problem(call(&app, Method::DELETE, &format!("/api/v1/admin/keys/{}", uuid::Uuid::nil()), Some(&admin), None).await, 404, "key.not-found").await;
    expect_problem(call(&app, Method::DELETE, "/api/v1/admin/keys/nope", Some(&admin), None).await, 400, "request.invalid-parameter").await;

    // Revoked in the control database directly (as `vnext keys revoke` does): refused at once too.
    let other = key(&app, "direct", false, Some("shop"), &["read"]).await;
    assert_eq!(call(&app, Method::GET, BASE, Some(&other), None).await.status(), 200);
    let all = keys::list(app.init.control()).await.unwrap();
    let direct = all.iter().find(|k| k.name == "direct").unwrap();
    assert!(keys::revoke(app.init.control(), direct.id).await.unwrap());
    expect_problem(call(&app, Method::GET, BASE, Some(&other), None).await, 401, "auth.invalid-key").await;

    // Bad requests name the field.
    let bad = json!({ "name": "x", "domain": "shop", "grants": ["delete"] });
    let problem = expect_problem(call(&app, Method::POST, "/api/v1/admin/keys", Some(&admin), Some(&bad)).await, 400, "request.invalid-body").await;
    assert!(problem["detail"].as_str().unwrap().contains("delete"), "{problem}");
    let both = json!({ "name": "x", "scope": "admin", "domain": "shop" });
    expect_problem(call(&app, Method::POST, "/api/v1/admin/keys", Some(&admin), Some(&both)).await, 400, "request.invalid-body").await;
}

fn schema_in(domain: &str) -> Value {
    let mut schema = fixtures::start_schema();
    schema["domain"] = json!(domain);
    schema
}

async fn database_exists(app: &TestApp, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(app.init.control())
        .await
        .unwrap()
}

#[tokio::test]
async fn only_an_admin_key_provisions_a_new_domain() {
    let (app, admin) = ready().await;
    let publisher = key(&app, "fresh-publisher", false, Some("fresh"), &["publish", "read"]).await;
    let database = format!("{}fresh", app.prefix);

    let r = call(&app, Method::POST, "/api/v1/definitions/publish", Some(&publisher), Some(&schema_in("fresh"))).await;
    let problem = expect_problem(r, 404, "domain.not-found").await;
    assert!(problem["detail"].as_str().unwrap().contains("admin"), "{problem}");
    assert!(!database_exists(&app, &database).await, "nothing was created");

    let r = call(&app, Method::POST, "/api/v1/definitions/publish", Some(&admin), Some(&schema_in("fresh"))).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert!(database_exists(&app, &database).await);

    // Once it exists, the domain key publishes into it.
    let mut again = schema_in("fresh");
    again["version"] = json!("1.0.1");
    assert_eq!(call(&app, Method::POST, "/api/v1/definitions/publish", Some(&publisher), Some(&again)).await.status(), 201);
}

#[tokio::test]
async fn publishing_into_the_control_database_or_a_foreign_one_is_refused_and_changes_nothing() {
    // Open loopback development: the reproduced attack needed no key at all.
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let control = format!("{}control", app.prefix);
    let owner = |db: String| {
        let pool = app.init.control().clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1")
                .bind(db)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let before_owner = owner(control.clone()).await;
    let snapshot = || async {
        let schemas: Vec<String> = sqlx::query_scalar("SELECT nspname::text FROM pg_namespace ORDER BY 1").fetch_all(app.init.control()).await.unwrap();
        let domains: Vec<String> = sqlx::query_scalar("SELECT domain FROM vnext_control.domains ORDER BY 1").fetch_all(app.init.control()).await.unwrap();
        let rollouts: i64 = sqlx::query_scalar("SELECT count(*) FROM vnext_control.rollouts").fetch_one(app.init.control()).await.unwrap();
        (schemas, domains, rollouts)
    };
    let before = snapshot().await;

    let problem = expect_problem(app.publish(&schema_in("control")).await, 409, "domain.database-taken").await;
    assert!(problem["detail"].as_str().unwrap().contains("control database"), "{problem}");
    assert_eq!(owner(control.clone()).await, before_owner);
    let role: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1").bind(&control).fetch_one(app.init.control()).await.unwrap();
    assert_eq!(role, 0, "no role named like the control database");
    assert_eq!(snapshot().await, before, "no schema, registry row or rollout record");

    // A database the registry does not own is not adopted either.
    let stray = format!("{}stray", app.prefix);
    vnext_testkit::db::create_database(api_support::ADMIN_URL, &stray).await;
    let before_owner = owner(stray.clone()).await;
    let problem = expect_problem(app.publish(&schema_in("stray")).await, 409, "domain.database-taken").await;
    assert!(problem["detail"].as_str().unwrap().contains("not a domain database"), "{problem}");
    assert_eq!(owner(stray).await, before_owner);
    assert_eq!(snapshot().await, before);
}

#[tokio::test]
async fn no_key_secret_is_stored() {
    let (app, admin) = ready().await;
    let reader = key(&app, "reader", false, Some("shop"), &["read"]).await;
    assert_eq!(call(&app, Method::GET, BASE, Some(&reader), None).await.status(), 200);
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT t::text FROM vnext_control.api_keys t").fetch_all(app.init.control()).await.unwrap();
    assert_eq!(rows.len(), 2);
    let text = rows.join("\n");
    for secret in [&admin, &reader] {
        assert!(!text.contains(&secret[4..]), "a secret is stored: {text}");
        assert!(text.contains(&keys::secret_hash(secret)), "its hash is: {text}");
    }
}
