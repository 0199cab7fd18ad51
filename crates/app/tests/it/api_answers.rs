//! What a new user checks first in the answers: the start's `createdAt` is the
//! stored one, the `ETag` header is the documented format, and a `sync=true`
//! run that goes on in the background says where to poll.

use serde_json::{Value, json};

use crate::api_support::{TestApp, fixtures::{self, DOMAIN}};

const ORDERS: &str = "/api/v1/shop/workflows/order/instances";

#[tokio::test]
async fn the_start_answer_shows_the_stored_times_and_the_documented_etag() {
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    let r = app.post_json(&format!("{ORDERS}/start?sync=true"), &json!({"key": "t-1", "attributes": {"amount": 5}})).await;
    assert_eq!(r.status(), 200);
    let header = r.headers()["etag"].to_str().unwrap().to_string();
    let started: Value = r.json().await.unwrap();
    let read: Value = app.get(&format!("{ORDERS}/t-1")).await.json().await.unwrap();
    assert_eq!(started["metadata"]["createdAt"], read["metadata"]["createdAt"]);
    assert_eq!(started["metadata"]["modifiedAt"], read["metadata"]["modifiedAt"]);
    // eTag: 32 lower-case hex digits, quoted; the header carries the same value.
    let quoted = started["eTag"].as_str().unwrap();
    let etag = quoted.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or_else(|| panic!("unquoted: {quoted}"));
    assert!(etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{etag}");
    assert_eq!(header, quoted);
}

/// Workflow `patient`: `call` enters a state whose HTTP task fails and whose
/// boundary retries in an hour.
fn patient_package() -> Vec<Value> {
    let boundary = json!({"onError": [{"action": 1, "errorCodes": ["*"],
        "retryPolicy": {"initialDelay": "PT1H", "maxRetries": 2, "backoffType": 0, "useJitter": false}}]});
    fixtures::failing_http_package("patient", Some(boundary))
}

#[tokio::test]
async fn a_sync_run_that_continues_in_the_background_says_where_to_poll() {
    let app = TestApp::spawn().await;
    app.provision(DOMAIN).await;
    for component in patient_package() {
        let r = app.publish(&component).await;
        assert!(r.status().is_success(), "publish {}: {}", component["key"], r.text().await.unwrap());
    }
    let base = "/api/v1/shop/workflows/patient/instances";
    let r = app.post_json(&format!("{base}/start?sync=true"), &json!({"key": "w-1"})).await;
    assert_eq!(r.status(), 200);
    // A run that rests needs no hint.
    assert!(r.headers().get("location").is_none());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let r = app.patch_json(&format!("{base}/w-1/transitions/call?sync=true"), &json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["location"], format!("{base}/{id}").as_str());
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    // The retry job owns the instance until it runs.
    assert_eq!(body["metadata"]["status"], "B", "{body}");
    assert_eq!(body["metadata"]["currentState"], "idle", "{body}");
}
