//! The audit log: one row for every call of every mutating route the API
//! serves (publish, start, transition with `cancel`, retry, key create and
//! revoke; the endpoint table of docs/api.md), refused and failed calls
//! included, none for reads and validate; rows readable per domain and in
//! the control log; the tables refuse UPDATE, DELETE and TRUNCATE; no secret
//! (key, authorization header, body) in any row.

use crate::api_support;

use api_support::{TestApp, expect_problem, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use vnext_init::keys::{self, NewKey};

const BASE: &str = "/api/v1/shop/workflows/order/instances";
/// Sent in bodies; must never reach a row.
const MARKER: &str = "body-marker-7f3c91";

async fn key(app: &TestApp, name: &str, admin: bool, domain: Option<&str>, grants: &[&str]) -> String {
    let grants: Vec<String> = grants.iter().map(ToString::to_string).collect();
    let request = NewKey::from_parts(name, admin, domain, &grants, vec!["clerk".into()]).unwrap();
    keys::create(&app.init, &request).await.unwrap().1
}

/// A call with `key`; returns the answer's status, its request id and body.
async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>, body: Option<&Value>) -> (u16, String, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, id, body)
}

async fn domain_pool(app: &TestApp) -> PgPool {
    app.init.domain(&vnext_core::ident::DomainName::new(fixtures::DOMAIN).unwrap()).await.unwrap()
}

/// Every row of a log as JSON text, for searching.
async fn dump(pool: &PgPool, table: &str) -> String {
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT row_to_json(a)::text FROM {table} a ORDER BY id")))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.join("\n")
}

fn find<'a>(items: &'a [Value], trace_id: &str) -> &'a Value {
    let found: Vec<&Value> = items.iter().filter(|r| r["traceId"] == trace_id).collect();
    assert_eq!(found.len(), 1, "one row for trace {trace_id}: {items:#?}");
    found[0]
}

#[tokio::test]
async fn every_mutating_call_writes_one_row_with_its_outcome_and_no_secret() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let admin = key(&app, "admin", true, None, &[]).await;
    let reader = key(&app, "reader", false, Some("shop"), &["read"]).await;
    let publisher = key(&app, "publisher", false, Some("fresh"), &["publish"]).await;

    // Key management through the admin API: created, then used.
    let (status, create_trace, created) = call(
        &app,
        Method::POST,
        "/api/v1/admin/keys",
        Some(&admin),
        Some(&json!({ "name": "writer", "domain": "shop", "grants": ["write", "read"], "roles": ["clerk"] })),
    )
    .await;
    assert_eq!(status, 201);
    let writer = created["secret"].as_str().unwrap().to_string();
    let writer_id = created["id"].as_str().unwrap().to_string();

    let body = json!({ "attributes": { "amount": 3, "customer": { "note": MARKER } } });
    let (status, start_trace, started) = call(&app, Method::POST, &format!("{BASE}/start?sync=true"), Some(&writer), Some(&body)).await;
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let submit = format!("{BASE}/{id}/transitions/submit?sync=true");
    let (status, submit_trace, _) = call(&app, Method::PATCH, &submit, Some(&writer), Some(&json!({ "note": MARKER }))).await;
    assert_eq!(status, 200);
    // Failed and refused calls are rows too.
    let approve = format!("{BASE}/{id}/transitions/approve?sync=true");
    let (status, invalid_trace, _) = call(&app, Method::PATCH, &approve, Some(&writer), Some(&json!({ "approver": 5 }))).await;
    assert_eq!(status, 422);
    let (status, cancel_trace, _) = call(&app, Method::PATCH, &format!("{BASE}/{id}/transitions/cancel?sync=true"), Some(&writer), Some(&json!({}))).await;
    assert_eq!(status, 200);
    let (status, retry_trace, _) = call(&app, Method::POST, &format!("{BASE}/{id}/retry?sync=true"), Some(&writer), Some(&json!({}))).await;
    assert_eq!(status, 400);
    let (status, forbidden_trace, _) = call(&app, Method::POST, &format!("{BASE}/start?sync=true"), Some(&reader), Some(&body)).await;
    assert_eq!(status, 403);
    let (status, publish_trace, _) = call(&app, Method::POST, "/api/v1/definitions/publish", Some(&admin), Some(&fixtures::workflow_version("1.1.0"))).await;
    assert_eq!(status, 201);
    let mut fresh = fixtures::start_schema();
    fresh["domain"] = json!("fresh");
    let (status, unknown_domain_trace, _) = call(&app, Method::POST, "/api/v1/definitions/publish", Some(&publisher), Some(&fresh)).await;
    assert_eq!(status, 404);

    // Not audited: reads, validate, calls without a credential (by default).
    for path in [BASE.to_string(), format!("{BASE}/{id}"), format!("{BASE}/{id}/transitions"), "/api/v1/admin/keys".into()] {
        assert_eq!(call(&app, Method::GET, &path, Some(&admin), None).await.0, 200, "{path}");
    }
    assert_eq!(call(&app, Method::POST, "/api/v1/definitions/validate", Some(&admin), Some(&fixtures::workflow())).await.0, 200);
    assert_eq!(call(&app, Method::POST, &format!("{BASE}/start"), None, Some(&body)).await.0, 401);

    let (status, revoke_trace, _) = call(&app, Method::DELETE, &format!("/api/v1/admin/keys/{writer_id}"), Some(&admin), None).await;
    assert_eq!(status, 204);

    // The domain's log, read with `read` on the domain, newest first.
    let (status, _, log) = call(&app, Method::GET, "/api/v1/shop/audit", Some(&reader), None).await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap().clone();
    let fixtures_published = fixtures::package().len();
    assert_eq!(items.len(), fixtures_published + 7, "{items:#?}");
    assert!(items.windows(2).all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()), "newest first");
    assert!(items[items.len() - fixtures_published..].iter().all(|r| r["action"] == "definition.publish" && r["caller"] == "open"));

    let start = find(&items, &start_trace);
    assert_eq!(start["action"], "instance.start");
    assert_eq!(start["outcome"], "ok");
    assert_eq!(start["status"], 200);
    assert_eq!(start["keyId"], writer_id);
    assert_eq!(start["caller"], format!("key:{writer_id}"));
    assert_eq!(start["roles"], json!(["clerk"]));
    assert_eq!(start["domain"], "shop");
    assert_eq!(start["method"], "POST");
    assert_eq!(start["route"], "/api/v1/{domain}/workflows/{workflow}/instances/start");
    assert_eq!(start["target"], json!({ "workflow": "order", "instanceId": id }));
    assert!(start["at"].is_string() && start["durationMs"].as_f64().unwrap() > 0.0);

    for (trace, transition, status, outcome) in
        [(&submit_trace, "submit", 200, "ok"), (&invalid_trace, "approve", 422, "payload.invalid"), (&cancel_trace, "cancel", 200, "ok")]
    {
        let row = find(&items, trace);
        assert_eq!(row["action"], "instance.transition");
        assert_eq!(row["target"]["transition"], transition);
        assert_eq!(row["target"]["instance"], id.as_str());
        assert_eq!(row["status"], status);
        assert!(row["outcome"].as_str().unwrap().ends_with(outcome), "{row}");
    }
    let retry = find(&items, &retry_trace);
    assert_eq!(retry["action"], "instance.retry");
    assert!(retry["outcome"].as_str().unwrap().ends_with("instance.not-faulted"), "{retry}");
    let refused = find(&items, &forbidden_trace);
    assert_eq!((refused["action"].as_str(), refused["status"].as_u64()), (Some("instance.start"), Some(403)));
    assert!(refused["outcome"].as_str().unwrap().ends_with("auth.forbidden"), "{refused}");
    assert!(refused["caller"].as_str().unwrap().starts_with("key:"));
    let publish = find(&items, &publish_trace);
    assert_eq!(publish["action"], "definition.publish");
    assert_eq!(publish["target"], json!({ "flow": "sys-flows", "key": "order", "version": "1.1.0" }));

    // Filters and pages.
    let (_, _, only) = call(&app, Method::GET, &format!("/api/v1/shop/audit?action=instance.transition&instance={id}"), Some(&admin), None).await;
    assert_eq!(only["items"].as_array().unwrap().len(), 3, "{only}");
    let (_, _, first) = call(&app, Method::GET, "/api/v1/shop/audit?limit=2", Some(&admin), None).await;
    let before = first["nextBefore"].as_i64().unwrap();
    let (_, _, second) = call(&app, Method::GET, &format!("/api/v1/shop/audit?limit=2&before={before}"), Some(&admin), None).await;
    assert!(second["items"][0]["id"].as_i64().unwrap() < before);
    let (status, _, _) = call(&app, Method::GET, "/api/v1/shop/audit?before=x", Some(&admin), None).await;
    assert_eq!(status, 400);

    // The control log: key management and the publish into a domain that does not exist.
    let (status, _, denied) = call(&app, Method::GET, "/api/v1/admin/audit", Some(&reader), None).await;
    assert_eq!(status, 403, "{denied}");
    let (status, _, control) = call(&app, Method::GET, "/api/v1/admin/audit", Some(&admin), None).await;
    assert_eq!(status, 200);
    let control = control["items"].as_array().unwrap().clone();
    assert_eq!(control.len(), 3, "{control:#?}");
    let create = find(&control, &create_trace);
    assert_eq!((create["action"].as_str(), create["status"].as_u64()), (Some("key.create"), Some(201)));
    assert_eq!(create["target"]["keyId"], writer_id);
    let revoke = find(&control, &revoke_trace);
    assert_eq!(revoke["action"], "key.revoke");
    assert_eq!(revoke["target"]["keyId"], writer_id);
    let unknown = find(&control, &unknown_domain_trace);
    assert_eq!(unknown["domain"], "fresh");
    assert!(unknown["outcome"].as_str().unwrap().ends_with("domain.not-found"), "{unknown}");
    let (_, _, by_domain) = call(&app, Method::GET, "/api/v1/admin/audit?domain=fresh", Some(&admin), None).await;
    assert_eq!(by_domain["items"].as_array().unwrap().len(), 1);

    // No secret in any stored row: key plaintext, authorization header, bodies.
    let stored = format!("{}\n{}", dump(&domain_pool(&app).await, "sys_audit.audit_log").await, dump(app.init.control(), "vnext_control.audit_log").await);
    for secret in [&admin, &reader, &writer, &publisher] {
        assert!(!stored.contains(&secret[4..]), "a key's secret is in the audit log");
    }
    for needle in [MARKER, "vnk_", "Bearer", "bearer", "authorization", "amount", "approver"] {
        assert!(!stored.contains(needle), "`{needle}` is in the audit log:\n{stored}");
    }
}

#[tokio::test]
async fn the_audit_logs_refuse_update_delete_and_truncate() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let domain = domain_pool(&app).await;
    let key = key(&app, "admin", true, None, &[]).await;
    let (status, _, _) = call(&app, Method::POST, "/api/v1/admin/keys", Some(&key), Some(&json!({ "name": "x", "scope": "admin" }))).await;
    assert_eq!(status, 201);
    // The domain log as the runtime's own role (the domain role owns the table)
    // and the control log as the control database's user.
    for (pool, table) in [(&domain, "sys_audit.audit_log"), (app.init.control(), "vnext_control.audit_log")] {
        let before = dump(pool, table).await;
        assert!(!before.is_empty(), "{table} has rows");
        for statement in
            [format!("UPDATE {table} SET outcome = 'ok'"), format!("DELETE FROM {table}"), format!("TRUNCATE {table}")]
        {
            let error = sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(pool).await.unwrap_err();
            let code = error.as_database_error().and_then(|e| e.code()).map(|c| c.to_string());
            assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
        }
        assert_eq!(dump(pool, table).await, before, "{table} unchanged");
    }
    // Appending stays possible.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_audit.audit_log").fetch_one(&domain).await.unwrap();
    assert_eq!(n as usize, fixtures::package().len());
}

#[tokio::test]
async fn calls_refused_without_a_credential_are_rows_only_when_configured() {
    let app = TestApp::spawn_with(|c| c.audit.record_unauthenticated = true).await;
    app.publish_fixtures().await;
    let admin = key(&app, "admin", true, None, &[]).await;
    let (status, trace, _) = call(&app, Method::POST, &format!("{BASE}/start"), Some("vnk_0000"), Some(&json!({ "amount": 1 }))).await;
    assert_eq!(status, 401);
    let (_, _, log) = call(&app, Method::GET, "/api/v1/shop/audit?action=instance.start", Some(&admin), None).await;
    let row = find(log["items"].as_array().unwrap(), &trace);
    assert_eq!(row["caller"], "anonymous");
    assert!(row["keyId"].is_null());
    assert!(row["outcome"].as_str().unwrap().ends_with("auth.invalid-key"), "{row}");

    let off = TestApp::spawn_with(|c| c.audit.enabled = false).await;
    off.publish_fixtures().await;
    let pool = domain_pool(&off).await;
    assert_eq!(dump(&pool, "sys_audit.audit_log").await, "", "audit.enabled = false writes nothing");
    expect_problem(off.get("/api/v1/shop/audit?limit=0").await, 400, "request.invalid-parameter").await;
}
