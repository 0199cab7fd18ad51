//! `/openapi.json` and `/docs` on the running server: the document covers
//! exactly the routes the router serves, and the docs UI loads from the same
//! server.
//!
//! How "exactly" is checked, and why it cannot drift silently:
//! - The public router is built by `utoipa_axum::routes!`, which registers a
//!   handler's route and its document operation from the same annotation, so
//!   the two share one list by construction. What could bypass it is a plain
//!   `.route(…)` in an API module: [`no_route_bypasses_the_document`] looks
//!   for one in the sources (the internal listener's module is the one
//!   allowed, as it is not public).
//! - Document → router, on the live server: every documented (method, path)
//!   is called with sample values and must not be answered `route.not-found`
//!   or `route.method-not-allowed`; every other method on a documented path
//!   must be answered `route.method-not-allowed` (so the router serves no
//!   undocumented method on a documented path); unknown paths are
//!   `route.not-found`.

use crate::api_support;

use api_support::{TestApp, fixtures};
use reqwest::Method;
use serde_json::Value;
use vnext_init::keys::{self, NewKey};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A server with the fixture package published and an admin key (so keys are enforced).
async fn ready() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let request = NewKey::from_parts("admin", true, None, &[], Vec::new()).unwrap();
    let admin = keys::create(&app.init, &request).await.unwrap().1;
    (app, admin)
}

/// `template` with sample values for its parameters.
fn concrete(template: &str) -> String {
    template
        .replace("{domain}", fixtures::DOMAIN)
        .replace("{workflow}", fixtures::FLOW)
        .replace("{instance}", "no-such-instance")
        .replace("{transition}", "submit")
        .replace("{function}", "some-function")
        .replace("{flow}", "sys-flows")
        .replace("{key}", fixtures::FLOW)
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
}

/// The problem `code` of an answer, if it is a problem.
async fn problem_code(response: reqwest::Response) -> (u16, Option<String>) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().map(str::to_string))
}

#[tokio::test]
async fn the_document_and_the_router_list_the_same_routes() {
    let (app, admin) = ready().await;
    // No key needed for the document.
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 25, "only {} paths", paths.len());

    let mut checked = 0;
    for (template, item) in paths {
        assert!(template.starts_with('/'), "{template}");
        let url = app.url(&concrete(template));
        for method in METHODS {
            let documented = item.get(method).is_some();
            let request = app.client.request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &url).bearer_auth(&admin);
            // Bodies are irrelevant here: routing is decided before them.
            let (status, code) = problem_code(request.send().await.unwrap()).await;
            if documented {
                let no_route = matches!(code.as_deref(), Some("route.not-found" | "route.method-not-allowed"));
                assert!(!no_route, "{method} {template} is documented but the router answers {status} {code:?}");
                checked += 1;
                let operation = &item[method];
                assert!(operation["operationId"].is_string(), "{method} {template} has no operationId");
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/ProblemDetails", "{method} {template} {status}");
                        assert!(response["x-error-codes"].as_array().is_some_and(|c| !c.is_empty()), "{method} {template} {status}");
                    }
                }
            } else {
                assert_eq!(
                    (status, code.as_deref()),
                    (405, Some("route.method-not-allowed")),
                    "{method} {template} is not documented but the router does not refuse it"
                );
            }
        }
    }
    assert!(checked >= 28, "only {checked} operations checked");

    for unknown in ["/api/v1/nothing/here/at/all", "/api/v2/definitions/publish", "/openapi.yaml"] {
        let (status, code) = problem_code(app.client.get(app.url(unknown)).bearer_auth(&admin).send().await.unwrap()).await;
        assert_eq!((status, code.as_deref()), (404, Some("route.not-found")), "{unknown}");
    }
}

#[tokio::test]
async fn security_and_errors_are_declared() {
    let (app, _admin) = ready().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["apiKeyHeader"]["name"], "X-Api-Key", "{schemes}");
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    // Open operations declare no security; others do, with what they need.
    for (path, method) in [("/health", "get"), ("/ready", "get"), ("/openapi.json", "get")] {
        assert!(op(path, method)["security"].is_null(), "{path}");
        assert_eq!(op(path, method)["x-required-access"], "nothing");
    }
    let keys = op("/api/v1/admin/keys", "post");
    assert_eq!(keys["security"][0]["bearerAuth"], Value::Array(vec![]), "{keys}");
    assert_eq!(keys["x-required-access"], "an admin key");
    let start = op("/api/v1/{domain}/workflows/{workflow}/instances/start", "post");
    assert_eq!(start["x-required-access"], "`write` on the domain");
    assert!(start["responses"]["409"]["x-error-codes"].as_array().unwrap().contains(&"instance.busy".into()), "{start}");
    assert!(start["responses"]["401"]["x-error-codes"].as_array().unwrap().contains(&"auth.missing-key".into()));
    let problem = &doc["components"]["schemas"]["ProblemDetails"];
    let codes = problem["properties"]["code"]["enum"].as_array().unwrap();
    assert!(codes.contains(&"payload.invalid".into()) && codes.contains(&"internal".into()), "{problem}");
    for member in ["errorCode", "prefix", "code", "title", "status", "detail"] {
        assert!(problem["required"].as_array().unwrap().contains(&member.into()), "{member}");
    }
    for member in ["violations", "errors", "traceId", "instance"] {
        assert!(problem["properties"][member].is_object(), "{member}");
    }
}

#[tokio::test]
async fn docs_ui_and_its_assets_come_from_this_server() {
    let (app, _admin) = ready().await;
    // Open, like /health, even with keys enforced.
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere: {html}");
    // Every script and stylesheet the page names loads from the same server.
    let assets: Vec<&str> = html.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")).collect();
    assert!(assets.len() >= 2, "{html}");
    for asset in &assets {
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    // The initializer points the UI at this server's document.
    let init = app.get("/docs/swagger-initializer.js").await.text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    // `/docs` itself leads to the page.
    let redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = redirect.get(app.url("/docs")).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
}

#[test]
fn no_route_bypasses_the_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = vec![dir.clone()];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("internal.rs") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(".route("), "{} adds a route outside `routes!`: it would be served but not documented", path.display());
    }
    assert!(seen > 10, "read only {seen} files of {}", dir.display());
}
