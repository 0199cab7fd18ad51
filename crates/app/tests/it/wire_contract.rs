//! The engine's wire format, operation by operation: each answer is checked
//! against a table of field names, JSON types and presence rules (always,
//! omitted when absent, never sent), over the sample package (`flows/demo`),
//! sync and async. Nulls are never sent; every member name is camelCase.

use crate::api_support;

use std::path::Path;
use std::time::{Duration, Instant};

use api_support::seed::Seed;
use api_support::{TestApp, expect_problem};
use serde_json::{Value, json};

/// JSON type of a field.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Uuid,
    Num,
    Bool,
    Obj,
    Arr,
    Any,
    /// ISO-8601 with a zone.
    Time,
    /// A status code: one of `A B C F P`.
    Code,
    /// An RFC 7232 quoted ETag.
    Quoted,
    /// One of the given strings.
    OneOf(&'static [&'static str]),
}

/// Presence rule of a field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Is {
    Always,
    /// Omitted when there is nothing to say, never null.
    Optional,
    /// Never sent in this answer.
    Absent,
}

type Spec = &'static [(&'static str, Ty, Is)];

const STATUS: &[&str] = &["A", "B", "C", "F", "P"];
const TRIGGERS: &[&str] = &["manual", "automatic", "scheduled", "event"];
const STATE_TYPES: &[&str] = &["initial", "intermediate", "finish", "subFlow", "wizard"];
const SUB_TYPES: &[&str] = &["none", "success", "error", "terminated", "suspended", "busy", "human", "cancelled", "timeout"];
const KINDS: &[&str] = &["stateTransition", "sharedTransition", "cancel", "exit", "updateData", "scheduled", "$timeout"];
const VIEW_TYPES: &[&str] = &["Json", "Html", "Markdown", "DeepLink", "Http", "Urn"];

/// §2, 202.
const ACCEPTED: Spec = &[
    ("id", Ty::Uuid, Is::Always),
    ("key", Ty::Str, Is::Optional),
    ("status", Ty::Code, Is::Always),
    ("effectiveStatus", Ty::Code, Is::Absent),
    ("attributes", Ty::Obj, Is::Absent),
    ("eTag", Ty::Quoted, Is::Absent),
    ("entityEtag", Ty::Quoted, Is::Absent),
    ("extensions", Ty::Obj, Is::Absent),
];

/// §2, 200.
const RAN: Spec = &[
    ("id", Ty::Uuid, Is::Always),
    ("key", Ty::Str, Is::Optional),
    ("status", Ty::Code, Is::Always),
    ("effectiveStatus", Ty::Code, Is::Always),
    ("attributes", Ty::Obj, Is::Optional),
    ("eTag", Ty::Quoted, Is::Always),
    ("entityEtag", Ty::Quoted, Is::Optional),
    ("extensions", Ty::Obj, Is::Always),
];

/// §2, retry.
const RETRIED: Spec = &[
    ("id", Ty::Uuid, Is::Always),
    ("status", Ty::Code, Is::Always),
    ("retriedTransitionId", Ty::Str, Is::Always),
    ("key", Ty::Str, Is::Absent),
];

/// §3.
const INSTANCE: Spec = &[
    ("id", Ty::Uuid, Is::Always),
    ("key", Ty::Str, Is::Optional),
    ("flow", Ty::Str, Is::Always),
    ("domain", Ty::Str, Is::Always),
    ("flowVersion", Ty::Str, Is::Optional),
    ("eTag", Ty::Quoted, Is::Always),
    ("entityEtag", Ty::Quoted, Is::Optional),
    ("tags", Ty::Arr, Is::Always),
    ("metadata", Ty::Obj, Is::Always),
    ("attributes", Ty::Obj, Is::Optional),
    ("extensions", Ty::Obj, Is::Always),
];

/// §4: a list item is §3 without `eTag`.
const LIST_ITEM: Spec = &[
    ("id", Ty::Uuid, Is::Always),
    ("key", Ty::Str, Is::Optional),
    ("flow", Ty::Str, Is::Always),
    ("domain", Ty::Str, Is::Always),
    ("eTag", Ty::Quoted, Is::Absent),
    ("tags", Ty::Arr, Is::Always),
    ("metadata", Ty::Obj, Is::Always),
    ("extensions", Ty::Obj, Is::Always),
];

const METADATA: Spec = &[
    ("currentState", Ty::Str, Is::Optional),
    ("effectiveState", Ty::Str, Is::Optional),
    ("status", Ty::Code, Is::Optional),
    ("effectiveStatus", Ty::Code, Is::Optional),
    ("type", Ty::OneOf(&["R", "S", "P"]), Is::Optional),
    ("effectiveStateType", Ty::OneOf(STATE_TYPES), Is::Optional),
    ("currentStateType", Ty::OneOf(STATE_TYPES), Is::Optional),
    ("completedAt", Ty::Time, Is::Optional),
    ("duration", Ty::Num, Is::Optional),
    ("createdAt", Ty::Time, Is::Always),
    ("modifiedAt", Ty::Time, Is::Optional),
    ("incident", Ty::Obj, Is::Always),
];

const INCIDENT: Spec = &[("hasActiveIncident", Ty::Bool, Is::Always), ("active", Ty::Obj, Is::Optional), ("history", Ty::Obj, Is::Always)];

const LINKS: Spec = &[("self", Ty::Str, Is::Always), ("first", Ty::Str, Is::Always), ("next", Ty::Str, Is::Always), ("prev", Ty::Str, Is::Always)];

/// §6.
const HISTORY_ENTRY: Spec = &[
    ("id", Ty::Uuid, Is::Always),
    ("transitionId", Ty::Str, Is::Always),
    ("fromState", Ty::Str, Is::Always),
    ("toState", Ty::Str, Is::Optional),
    ("effectiveState", Ty::Str, Is::Optional),
    ("startedAt", Ty::Time, Is::Always),
    ("finishedAt", Ty::Time, Is::Optional),
    ("durationSeconds", Ty::Num, Is::Optional),
    ("triggerType", Ty::OneOf(TRIGGERS), Is::Always),
    ("body", Ty::Any, Is::Optional),
    ("createdAt", Ty::Time, Is::Always),
    ("createdBy", Ty::Str, Is::Optional),
];

/// §7 state.
const STATE: Spec = &[
    ("data", Ty::Obj, Is::Always),
    ("view", Ty::Obj, Is::Always),
    ("master", Ty::Obj, Is::Always),
    ("state", Ty::Str, Is::Always),
    ("stateType", Ty::OneOf(STATE_TYPES), Is::Always),
    ("stateSubType", Ty::OneOf(SUB_TYPES), Is::Always),
    ("stateLabels", Ty::Arr, Is::Optional),
    ("status", Ty::Code, Is::Always),
    ("activeCorrelations", Ty::Arr, Is::Always),
    ("correlations", Ty::Arr, Is::Always),
    ("transitions", Ty::Arr, Is::Always),
    ("sharedTransitions", Ty::Arr, Is::Absent),
    ("functions", Ty::Obj, Is::Always),
    ("interaction", Ty::Obj, Is::Optional),
    ("incident", Ty::Obj, Is::Always),
    ("eTag", Ty::Quoted, Is::Always),
    ("entityEtag", Ty::Quoted, Is::Optional),
];

const STATE_TRANSITION: Spec = &[
    ("name", Ty::Str, Is::Always),
    ("kind", Ty::OneOf(KINDS), Is::Always),
    ("href", Ty::Str, Is::Always),
    ("view", Ty::Obj, Is::Always),
    ("schema", Ty::Obj, Is::Always),
    ("annotations", Ty::Obj, Is::Optional),
    ("executeAtUtc", Ty::Time, Is::Absent),
];

const DATA: Spec = &[("data", Ty::Any, Is::Optional), ("eTag", Ty::Quoted, Is::Always), ("entityEtag", Ty::Quoted, Is::Optional), ("extensions", Ty::Obj, Is::Always)];

const VIEW: Spec = &[
    ("key", Ty::Str, Is::Always),
    ("content", Ty::Any, Is::Always),
    ("type", Ty::OneOf(VIEW_TYPES), Is::Always),
    ("display", Ty::Any, Is::Always),
    ("modes", Ty::Obj, Is::Optional),
    ("label", Ty::Str, Is::Always),
    ("renderer", Ty::Any, Is::Optional),
];

const SCHEMA: Spec = &[("key", Ty::Str, Is::Always), ("type", Ty::Str, Is::Always), ("schema", Ty::Obj, Is::Always), ("eTag", Ty::Quoted, Is::Always), ("labels", Ty::Arr, Is::Optional)];

/// §8.
const PROBLEM: Spec = &[
    ("type", Ty::Str, Is::Always),
    ("title", Ty::Str, Is::Always),
    ("status", Ty::Num, Is::Always),
    ("detail", Ty::Str, Is::Always),
    ("instance", Ty::Str, Is::Always),
    ("errorCode", Ty::Str, Is::Always),
    ("prefix", Ty::Str, Is::Always),
    ("code", Ty::Str, Is::Always),
    ("traceId", Ty::Str, Is::Always),
];

fn has_type(v: &Value, ty: Ty) -> bool {
    match ty {
        Ty::Str => v.is_string(),
        Ty::Uuid => v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        Ty::Num => v.is_number(),
        Ty::Bool => v.is_boolean(),
        Ty::Obj => v.is_object(),
        Ty::Arr => v.is_array(),
        Ty::Any => !v.is_null(),
        Ty::Time => v.as_str().is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        Ty::Code => v.as_str().is_some_and(|s| STATUS.contains(&s)),
        Ty::Quoted => v.as_str().is_some_and(|s| s.len() >= 2 && s.starts_with('"') && s.ends_with('"')),
        Ty::OneOf(names) => v.as_str().is_some_and(|s| names.contains(&s)),
    }
}

/// Checks `v` against `spec`; also that no member is null and every member
/// name of the object is camelCase.
fn conforms(what: &str, v: &Value, spec: Spec) {
    let object = v.as_object().unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for (name, member) in object {
        assert!(!member.is_null(), "{what}: `{name}` is null (nulls are omitted): {v}");
        assert!(!name.contains('_') && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '$'), "{what}: `{name}` is not camelCase: {v}");
    }
    for (name, ty, presence) in spec {
        match (object.get(*name), presence) {
            (None, Is::Always) => panic!("{what}: `{name}` is missing: {v}"),
            (Some(_), Is::Absent) => panic!("{what}: `{name}` must not be sent: {v}"),
            (Some(member), _) => assert!(has_type(member, *ty), "{what}: `{name}` is not {ty:?}: {v}"),
            (None, _) => {}
        }
    }
}

fn conforms_instance(what: &str, v: &Value, spec: Spec) {
    conforms(what, v, spec);
    conforms(&format!("{what}.metadata"), &v["metadata"], METADATA);
    conforms(&format!("{what}.metadata.incident"), &v["metadata"]["incident"], INCIDENT);
}

const DEMO: &str = "/api/v1/demo/workflows";

/// A server with the sample package published.
async fn demo() -> TestApp {
    let app = TestApp::spawn().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/demo");
    vnext_init::package::publish_folder(&app.init, &dir, |_| {}).await.expect("publish flows/demo");
    app
}

/// `(status, headers, body)` of a response.
async fn answer(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, headers, body)
}

/// Waits until an accepted command has run (the instance is no longer busy).
async fn rested(app: &TestApp, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = app.get(path).await.json().await.unwrap();
        if v["metadata"]["status"] != "B" && v["metadata"]["currentState"].is_string() {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never came to rest: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const DOCUMENT: &str = r#"{"title": "Supplier contract", "documentType": "contract", "author": "dora"}"#;

#[tokio::test]
async fn commands_answer_the_engine_shape_sync_and_async() {
    let app = demo().await;
    let document: Value = serde_json::from_str(DOCUMENT).unwrap();
    let base = format!("{DEMO}/document-approval/instances");

    // Sync start: 200, the command answer, headers matching the body.
    let (status, headers, started) = answer(app.post_json(&format!("{base}/start?sync=true"), &json!({ "key": "doc-1", "attributes": document })).await).await;
    assert_eq!(status, 200, "{started}");
    conforms("sync start", &started, RAN);
    assert_eq!(started["key"], "doc-1");
    assert_eq!(started["status"], "A");
    assert_eq!(headers["etag"].to_str().unwrap(), started["eTag"].as_str().unwrap());
    assert_eq!(headers["x-entity-etag"].to_str().unwrap(), started["entityEtag"].as_str().unwrap());

    // An empty key is no key: the answer omits it.
    let (status, _, keyless) = answer(app.post_json(&format!("{base}/start?sync=true"), &json!({ "key": "", "attributes": document })).await).await;
    assert_eq!(status, 200, "{keyless}");
    conforms("keyless start", &keyless, RAN);
    assert!(keyless.get("key").is_none(), "{keyless}");

    // Async start: 202, only id/key/status, a Location to poll.
    let (status, headers, accepted) = answer(app.post_json(&format!("{base}/start"), &json!({ "key": "doc-2", "attributes": document })).await).await;
    assert_eq!(status, 202, "{accepted}");
    conforms("async start", &accepted, ACCEPTED);
    let location = headers["location"].to_str().unwrap().to_string();
    let doc2 = rested(&app, &location).await;
    conforms_instance("instance after async start", &doc2, INSTANCE);
    assert_eq!(doc2["metadata"]["currentState"], "draft");

    // Sync and async transitions, a free-form body wrapped under attributes.
    let (status, _, moved) = answer(app.patch_json(&format!("{base}/doc-1/transitions/submit-for-review?sync=true"), &json!({})).await).await;
    assert_eq!(status, 200, "{moved}");
    conforms("sync transition", &moved, RAN);
    assert_eq!(moved["metadata"]["currentState"], "in-review");
    let (status, _, queued) = answer(app.patch_json(&format!("{base}/doc-2/transitions/update-details"), &json!({ "summary": "raw body" })).await).await;
    assert_eq!(status, 202, "{queued}");
    conforms("async transition", &queued, ACCEPTED);
    let doc2 = rested(&app, &location).await;
    assert_eq!(doc2["attributes"]["summary"], "raw body", "{doc2}");

    // The other sample workflow, sync, to its end.
    let onboarding = format!("{DEMO}/customer-onboarding/instances");
    let applicant = json!({ "applicant": { "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
        "birthDate": "1990-12-10", "country": "GB" }, "product": "current-account" });
    let (status, _, s) = answer(app.post_json(&format!("{onboarding}/start?sync=true"), &json!({ "attributes": applicant })).await).await;
    assert_eq!(status, 200, "{s}");
    conforms("onboarding start", &s, RAN);
    let id = s["id"].as_str().unwrap();
    let body = json!({ "attributes": { "documents": { "idDocument": "passport", "proofOfAddress": true, "selfieMatch": 0.93 } } });
    let (status, _, done) = answer(app.patch_json(&format!("{onboarding}/{id}/transitions/submit-documents?sync=true"), &body).await).await;
    assert_eq!(status, 200, "{done}");
    conforms("onboarding to its end", &done, RAN);
    assert_eq!((done["status"].as_str(), done["effectiveStatus"].as_str()), (Some("C"), Some("C")));
    let finished: Value = app.get(&format!("{onboarding}/{id}")).await.json().await.unwrap();
    conforms_instance("completed instance", &finished, INSTANCE);
    assert!(finished["metadata"]["completedAt"].is_string() && finished["metadata"]["duration"].is_number(), "{finished}");
}

#[tokio::test]
async fn reads_answer_the_engine_shape() {
    let app = demo().await;
    let document: Value = serde_json::from_str(DOCUMENT).unwrap();
    let base = format!("{DEMO}/document-approval/instances");
    for n in 0..3 {
        let r = app.post_json(&format!("{base}/start?sync=true"), &json!({ "key": format!("d-{n}"), "attributes": document })).await;
        assert_eq!(r.status(), 200);
    }
    let r = app.patch_json(&format!("{base}/d-0/transitions/submit-for-review?sync=true"), &json!({})).await;
    assert_eq!(r.status(), 200);

    // GET: ETag and X-Entity-ETag headers agree with the body; 304 on a match.
    let (status, headers, got) = answer(app.get(&format!("{base}/d-0")).await).await;
    assert_eq!(status, 200);
    conforms_instance("instance", &got, INSTANCE);
    assert_eq!(headers["etag"].to_str().unwrap(), got["eTag"].as_str().unwrap());
    assert_eq!(headers["x-entity-etag"].to_str().unwrap(), got["entityEtag"].as_str().unwrap());
    assert_eq!(got["metadata"]["effectiveState"], "in-review");
    let r = app.client.get(app.url(&format!("{base}/d-0"))).header("if-none-match", got["eTag"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 304);

    // List: links and items.
    let (status, _, page) = answer(app.get(&format!("{base}?pageSize=2&unknownParameter=1")).await).await;
    assert_eq!(status, 200, "{page}");
    conforms("list", &page, &[("links", Ty::Obj, Is::Always), ("items", Ty::Arr, Is::Always), ("data", Ty::Arr, Is::Absent), ("pagination", Ty::Obj, Is::Absent)]);
    conforms("list links", &page["links"], LINKS);
    for item in page["items"].as_array().unwrap() {
        conforms_instance("list item", item, LIST_ITEM);
    }
    assert!(page["links"]["next"].as_str().unwrap().starts_with(&format!("{base}?page=2&pageSize=2")), "{page}");

    // History.
    let (status, _, history) = answer(app.get(&format!("{base}/d-0/transitions")).await).await;
    assert_eq!(status, 200);
    conforms("history", &history, &[("transitions", Ty::Arr, Is::Always)]);
    let entries = history["transitions"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{history}");
    for e in entries {
        conforms("history entry", e, HISTORY_ENTRY);
    }
    assert_eq!((entries[1]["fromState"].as_str(), entries[1]["toState"].as_str()), (Some("draft"), Some("in-review")));
    assert_eq!(entries[1]["triggerType"], "manual");

    // State function.
    let (status, headers, state) = answer(app.get(&format!("{base}/d-0/functions/state")).await).await;
    assert_eq!(status, 200);
    conforms("state", &state, STATE);
    assert_eq!(headers["etag"].to_str().unwrap(), state["eTag"].as_str().unwrap());
    for t in state["transitions"].as_array().unwrap() {
        conforms("state transition", t, STATE_TRANSITION);
    }
    assert_eq!(state["stateType"], "intermediate");

    // Data, view, schema, catalog.
    let (status, _, data) = answer(app.get(&format!("{base}/d-0/functions/data")).await).await;
    assert_eq!(status, 200);
    conforms("data", &data, DATA);
    let (status, _, view) = answer(app.get(&format!("{base}/d-0/functions/view")).await).await;
    assert_eq!(status, 200, "{view}");
    conforms("view", &view, VIEW);
    assert_eq!(view["type"], "Json");
    assert!(view["content"].is_object(), "a Json view's content is an object: {view}");
    let (status, headers, schema) = answer(app.get(&format!("{base}/d-0/functions/schema?transitionKey=approve")).await).await;
    assert_eq!(status, 200, "{schema}");
    conforms("schema", &schema, SCHEMA);
    assert_eq!(headers["etag"].to_str().unwrap(), schema["eTag"].as_str().unwrap());
    let (status, _, catalog) = answer(app.get(&format!("{base}/d-0/functions/catalog")).await).await;
    assert_eq!(status, 200);
    conforms("catalog", &catalog, &[("functions", Ty::Arr, Is::Always)]);

    // Authorize and the long-poll acknowledgement.
    let (status, _, allowed) = answer(app.get(&format!("{base}/d-0/functions/authorize?transitionKey=approve")).await).await;
    assert_eq!((status, allowed), (200, json!({ "allowed": true })));
    let (status, _, refused) = answer(app.get(&format!("{base}/d-0/functions/authorize?transitionKey=publish")).await).await;
    assert_eq!((status, refused), (403, json!({ "allowed": false })));
    let (status, _, empty) = answer(app.post_json(&format!("{base}/d-0/longpoll/ack"), &json!({})).await).await;
    assert_eq!((status, empty), (200, Value::Null));

    // Problems.
    let r = app.get(&format!("{base}/nobody")).await;
    let problem = expect_problem(r, 404, "instance.not-found").await;
    conforms("problem", &problem, PROBLEM);
    assert_eq!(problem["errorCode"], "notfound.instance.not-found");
    assert_eq!(problem["type"], "https://httpstatuses.com/404/notfound/instance/not-found");
    let r = app.post_json(&format!("{base}/start?sync=true"), &json!({ "attributes": { "title": 5 } })).await;
    let problem = expect_problem(r, 422, "payload.invalid").await;
    conforms("payload problem", &problem, PROBLEM);
    assert!(problem["errors"].is_object(), "the engine's errors map: {problem}");

    // Re-initialize drops cached definitions; what is published still runs.
    let r = app.get("/api/v1/definitions/re-initialize").await;
    assert_eq!(r.status(), 200);
    let r = app.patch_json(&format!("{base}/d-1/transitions/submit-for-review?sync=true"), &json!({})).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn retry_answers_id_status_and_the_retried_transition() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let pool = app.flow_pool().await;
    let mut s = Seed::new("f-1", "draft", json!({ "amount": 3 }));
    s.status = "F";
    s.insert(&pool).await;
    sqlx::query(
        "INSERT INTO \"order\".incidents (id, instance_id, state, transition_key, error_code, message, resolved, created_at)
         VALUES ($1, $2, 'draft', 'submit', 'Task:503', 'down', false, now())",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(s.id)
    .execute(&pool)
    .await
    .unwrap();
    let (status, _, retried) = answer(app.post_json("/api/v1/shop/workflows/order/instances/f-1/retry", &json!({})).await).await;
    assert_eq!(status, 200, "retry always answers 200: {retried}");
    conforms("retry", &retried, RETRIED);
    assert_eq!(retried["retriedTransitionId"], "submit");
    assert_eq!(retried["id"], s.id.to_string());
}
