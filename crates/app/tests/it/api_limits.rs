//! Quotas: a key's request rate (429 `rate.limited` with `Retry-After`), a
//! key's requests in flight (429 `rate.concurrency-limited`), a domain's
//! starts per second (429 `rate.starts-limited`) and payload cap (413
//! `payload.too-large`); refusals of mutating calls are in the audit log.

use crate::api_support;

use std::time::{Duration, Instant};

use api_support::{TestApp, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vnext_init::keys::{self, NewKey};

const BASE: &str = "/api/v1/shop/workflows/order/instances";

async fn key(app: &TestApp, name: &str, admin: bool) -> String {
    let domain = (!admin).then_some("shop");
    let grants = if admin { Vec::new() } else { vec!["write".to_string(), "read".to_string()] };
    keys::create(&app.init, &NewKey::from_parts(name, admin, domain, &grants, Vec::new()).unwrap()).await.unwrap().1
}

async fn send(app: &TestApp, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

/// Sends until an answer is a 429 (at most 20 times: a slow machine may let
/// a request through as the bucket refills) and returns it.
async fn until_refused<F: Future<Output = reqwest::Response>>(mut send: impl FnMut() -> F) -> reqwest::Response {
    for _ in 0..20 {
        let r = send().await;
        if r.status() == 429 {
            return r;
        }
        assert!(r.status().is_success(), "{}", r.status());
    }
    panic!("never refused");
}

/// The `Retry-After` seconds and the problem body of a 429.
async fn too_many(response: reqwest::Response, code: &str) -> (u64, Value) {
    assert_eq!(response.status(), 429);
    let after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body["errorCode"].as_str().unwrap().ends_with(code), "{body}");
    assert_eq!(body["retryAfterSeconds"], after, "{body}");
    assert!(after >= 1);
    (after, body)
}

#[tokio::test]
async fn a_burst_past_the_key_rate_is_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.limits.key_requests_per_second = 1;
        c.limits.key_burst = 5;
    })
    .await;
    app.publish_fixtures().await;
    let busy = key(&app, "busy", false).await;
    let calm = key(&app, "calm", true).await;

    // Eight at once: the bucket holds five; a loaded machine may have
    // refilled one per second meanwhile.
    let t = Instant::now();
    let burst = (0..8).map(|_| send(&app, Method::GET, BASE, Some(&busy), None));
    let statuses: Vec<u16> = futures::future::join_all(burst).await.iter().map(|r| r.status().as_u16()).collect();
    let admitted = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(admitted >= 5 && admitted <= 6 + t.elapsed().as_secs(), "{statuses:?} in {:?}", t.elapsed());
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    let refused = until_refused(|| send(&app, Method::GET, BASE, Some(&busy), None)).await;
    let (after, body) = too_many(refused, "rate.limited").await;
    assert!(after <= 1, "one request per second: the next is at most a second away ({after})");
    assert_eq!(body["limit"], 1);

    // A refused mutating call is an audit row with its outcome.
    let start = format!("{BASE}/start");
    let r = until_refused(|| send(&app, Method::POST, &start, Some(&busy), Some(json!({ "amount": 1 })))).await;
    let trace = r.headers()["x-request-id"].to_str().unwrap().to_string();
    too_many(r, "rate.limited").await;
    // Other keys have buckets of their own.
    let log: Value = send(&app, Method::GET, "/api/v1/shop/audit", Some(&calm), None).await.json().await.unwrap();
    let row = log["items"].as_array().unwrap().iter().find(|r| r["traceId"] == trace.as_str()).cloned().expect("audited");
    assert_eq!(row["status"], 429);
    assert!(row["outcome"].as_str().unwrap().ends_with("rate.limited"), "{row}");
}

/// Sends the head of a start and part of its body, and holds the rest back:
/// the request is in flight (admitted, reading its body) until released.
async fn held_start(app: &TestApp, key: &str) -> tokio::net::TcpStream {
    let body = json!({ "amount": 7 }).to_string();
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {BASE}/start?sync=true HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        app.addr,
        body.len(),
        &body[..1]
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn a_key_past_its_concurrency_limit_is_429_until_a_request_finishes() {
    // No rate limit: the polling below may send many requests on a busy machine.
    let app = TestApp::spawn_with(|c| {
        c.limits.key_concurrency = 1;
        c.limits.key_requests_per_second = 0;
    })
    .await;
    app.publish_fixtures().await;
    let single = key(&app, "single", false).await;
    let other = key(&app, "other", false).await;

    let mut held = held_start(&app, &single).await;
    // Poll (with a deadline) until the held request is admitted: from then on
    // every further request of the key is refused. On a busy machine a poll
    // can be admitted first, and the held request is then the one refused: it
    // has answered already, so it is sent again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let r = send(&app, Method::GET, BASE, Some(&single), None).await;
        if r.status() == 429 {
            break r;
        }
        let status = r.status();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
        let mut peek = [0u8; 1];
        if held.try_read(&mut peek).is_ok() {
            held = held_start(&app, &single).await;
        }
        assert!(Instant::now() < deadline, "the held request was never counted in flight");
    };
    let (after, body) = too_many(refused, "rate.concurrency-limited").await;
    assert_eq!((after, body["limit"].as_u64()), (1, Some(1)));
    assert_eq!(send(&app, Method::GET, BASE, Some(&other), None).await.status(), 200, "another key is not held back");

    // The held request completes; the key is admitted again.
    held.write_all(&json!({ "amount": 7 }).to_string().as_bytes()[1..]).await.unwrap();
    let mut answer = vec![0u8; 12];
    held.read_exact(&mut answer).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), "HTTP/1.1 200", "the held start ran");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(&app, Method::GET, BASE, Some(&single), None).await;
        if r.status() == 200 {
            break;
        }
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(Instant::now() < deadline, "the finished request still counts: {status} {body}");
    }
}

#[tokio::test]
async fn a_payload_over_the_domain_cap_is_413() {
    let app = TestApp::spawn_with(|c| c.limits.domain_payload_bytes = 1_000).await;
    app.publish_fixtures().await;
    let big = json!({ "attributes": { "amount": 1, "customer": { "note": "x".repeat(2_000) } } });
    let r = app.post_json(&format!("{BASE}/start?sync=true"), &big).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(body["errorCode"].as_str().unwrap().ends_with("payload.too-large"), "{body}");
    assert_eq!(body["limit"], 1_000);

    // Without a length up front (chunked), the body is cut off at the cap too.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let chunk = big.to_string();
    let request = format!(
        "POST {BASE}/start HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("payload.too-large"), "{answer}");

    // Under the cap: started. Publishing is not a domain payload.
    let small = json!({ "attributes": { "amount": 1, "customer": { "note": "x".repeat(500) } } });
    assert_eq!(app.post_json(&format!("{BASE}/start?sync=true"), &small).await.status(), 200);
    assert_eq!(app.publish(&fixtures::workflow_version("1.2.0")).await.status(), 201);
}

#[tokio::test]
async fn a_domain_past_its_starts_per_second_is_429() {
    let app = TestApp::spawn_with(|c| {
        c.limits.domain_starts_per_second = 1;
        c.limits.domain_starts_burst = 3;
    })
    .await;
    app.publish_fixtures().await;
    // Six starts at once (every caller together: this run is open): the
    // bucket admits three, a fourth at most if a second passed meanwhile.
    let path = format!("{BASE}/start?sync=true");
    let bodies: Vec<Value> = (0..6).map(|i| json!({ "key": format!("s-{i}"), "attributes": { "amount": i } })).collect();
    let starts = bodies.iter().map(|body| app.post_json(&path, body));
    let t = Instant::now();
    let answers = futures::future::join_all(starts).await;
    let elapsed = t.elapsed();
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for r in answers {
        match r.status().as_u16() {
            200 => admitted.push(r),
            429 => refused.push(r),
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    let n = admitted.len() as u64;
    assert!(n >= 3 && n <= 4 + elapsed.as_secs(), "{n} admitted in {elapsed:?}");
    let (start, more) = (format!("{BASE}/start"), json!({ "attributes": { "amount": 9 } }));
    let refused = match refused.pop() {
        Some(r) => r,
        None => until_refused(|| app.post_json(&start, &more)).await,
    };
    let (after, body) = too_many(refused, "rate.starts-limited").await;
    assert!(after <= 1, "{after}");
    assert_eq!(body["limit"], 1);

    // Transitions are not starts: they go on while starts are refused.
    let id: Value = admitted.pop().unwrap().json().await.unwrap();
    let path = format!("{BASE}/{}/transitions/submit?sync=true", id["id"].as_str().unwrap());
    assert_eq!(app.patch_json(&path, &json!({})).await.status(), 200);
}
