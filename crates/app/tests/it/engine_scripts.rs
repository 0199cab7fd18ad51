//! Scripts run on the script threads, never on the async workers: runaway
//! scripts in one domain leave `/health` and other domains alone, the wall-clock
//! limit holds, a domain's calls are capped, and the memory caps end as a 422.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use vnext_init::config::Config;

use crate::api_support::{TestApp, expect_problem};

/// A workflow of `domain` whose start runs `handler` as its mapping, then ends.
fn scripted(domain: &str, key: &str, handler: &str) -> Value {
    let label = |t: &str| json!([{ "label": t, "language": "en-US" }]);
    json!({
        "key": key, "version": "1.0.0", "domain": domain, "flow": "sys-flows", "flowVersion": "1.0.0",
        "tags": ["test"],
        "attributes": {
            "type": "F",
            "labels": label(key),
            "startTransition": {
                "key": "begin", "target": "done", "triggerType": 0, "versionStrategy": "Minor", "labels": label("begin"),
                "mapping": { "location": format!("./src/{key}.rhai"), "code": format!("fn handler(ctx) {{ {handler} }}"), "encoding": "NAT" }
            },
            "states": [{ "key": "done", "stateType": 3, "versionStrategy": "None", "labels": label("Done"), "transitions": [] }]
        }
    })
}

const SPIN: &str = "loop { }";
/// Copies of 512 KiB kept by `map`: each element fits the size limits, together
/// they would take 2.5 GB.
const HOG: &str = "let s = \"x\"; for i in 0..18 { s += s; } let a = []; a.pad(5000, 0); a.map(|x| s + s); #{}";

async fn app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let app = TestApp::spawn_with(|c| {
        // Only the clock stops a spinning script, so its time is what is measured.
        c.runtime.script_max_operations = 0;
        c.runtime.script_timeout_ms = 1_000;
        adjust(c);
    })
    .await;
    app.provision("shop").await;
    for (key, handler) in [("spin", SPIN), ("hog", HOG), ("grow", "let s = \"x\"; loop { s += s; }"), ("quick", "#{ ok: true }")] {
        let r = app.publish(&scripted("shop", key, handler)).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    app
}

async fn start(app: &TestApp, domain: &str, flow: &str) -> reqwest::Response {
    app.post_json(&format!("/api/v1/{domain}/workflows/{flow}/instances/start?sync=true"), &json!({ "attributes": {} })).await
}

/// The `N` of "(stopped after N ms)" in a deadline error's detail.
fn stopped_after(detail: &str) -> u64 {
    let rest = detail.split("stopped after ").nth(1).unwrap_or_else(|| panic!("no elapsed time in {detail}"));
    rest.split(" ms").next().unwrap().parse().unwrap_or_else(|_| panic!("{detail}"))
}

/// A memory figure of this process (the app runs in it) from
/// `/proc/self/status`, in MiB: `VmRSS` now, `VmHWM` at its peak.
fn status_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::test]
async fn runaway_scripts_leave_health_and_other_domains_alone() {
    let app = app_with(|c| {
        c.runtime.script_threads = 2;
        c.runtime.script_domain_concurrency = 1;
    })
    .await;
    app.provision("calm").await;
    let r = app.publish(&scripted("calm", "steady", "#{ steady: ctx.instance.domain }")).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let rss_before = status_mib("VmRSS:");

    // Eight runaway starts in `shop`, half spinning, half copying memory.
    let runaways = tokio::spawn({
        let (base, client) = (app.base.clone(), app.client.clone());
        async move {
            let calls = (0..8).map(|i| {
                let url = format!("{base}/api/v1/shop/workflows/{}/instances/start?sync=true", if i % 2 == 0 { "spin" } else { "hog" });
                let client = client.clone();
                async move {
                    let r = client.post(url).json(&json!({ "attributes": {} })).send().await.unwrap();
                    let status = r.status().as_u16();
                    (status, r.json::<Value>().await.unwrap())
                }
            });
            join_all(calls).await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut health = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = app.get("/health").await;
        health.push(t.elapsed());
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Instant::now();
    let r = start(&app, "calm", "steady").await;
    let calm = t.elapsed();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["attributes"]["steady"], "calm", "{v}");
    // The other domain was served while `shop` still had runaway calls waiting.
    assert!(!runaways.is_finished(), "the runaway calls ended before the other domain was served");

    let outcomes = runaways.await.unwrap();
    let slowest = health.iter().max().unwrap();
    eprintln!(
        "health max {slowest:?}, other domain's start {calm:?}, RSS {rss_before:?} MiB before, {:?} MiB after, peak {:?} MiB",
        status_mib("VmRSS:"),
        status_mib("VmHWM:")
    );
    assert!(*slowest < Duration::from_millis(100), "GET /health took {slowest:?}: {health:?}");
    let (mut stopped, mut busy) = (0, 0);
    for (status, body) in &outcomes {
        match (status, body["code"].as_str()) {
            (422, Some("script.failed")) => {
                let detail = body["detail"].as_str().unwrap();
                assert!(detail.contains("ran longer than the 1000 ms") || detail.contains("MiB of memory allowed"), "{body}");
                stopped += 1;
            }
            (503, Some("script.busy")) => busy += 1,
            _ => panic!("unexpected outcome {status}: {body}"),
        }
    }
    eprintln!("runaway outcomes: {stopped} stopped by a limit, {busy} refused as busy");
    assert!(stopped >= 1, "{outcomes:?}");
}

#[tokio::test]
async fn a_script_stops_at_its_wall_clock_limit() {
    let app = app_with(|_| {}).await;
    let t = Instant::now();
    let r = start(&app, "shop", "spin").await;
    let outside = t.elapsed();
    let body = expect_problem(r, 422, "script.failed").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("ran longer than the 1000 ms allowed"), "{detail}");
    // The time the script ran on its thread, as the error reports it: a loaded
    // machine delays the reply, not the stop.
    let ran = stopped_after(detail);
    eprintln!("stopped after {ran} ms on the script thread, {outside:?} seen by the client");
    assert!((900..=1100).contains(&ran), "{detail}");
    assert!(outside >= Duration::from_millis(1000), "{outside:?}");
    // Nothing was created.
    let r = app.get("/api/v1/shop/workflows/spin/instances").await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len).unwrap_or(0), 0, "{list}");
}

#[tokio::test]
async fn a_domain_at_its_cap_waits_then_is_told_to_retry() {
    // One call of `shop` at a time, and a short allowance for waiting: of two
    // spinning starts sent together one runs to its deadline, the other gives up.
    let app = app_with(|c| {
        c.runtime.script_threads = 2;
        c.runtime.script_domain_concurrency = 1;
        c.runtime.script_queue_timeout_ms = 300;
    })
    .await;
    let (a, b) = tokio::join!(start(&app, "shop", "spin"), start(&app, "shop", "spin"));
    let mut codes: Vec<(u16, Value)> = Vec::new();
    for r in [a, b] {
        let status = r.status().as_u16();
        // A busy answer says when to come back; others do not.
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(retry_after.as_deref(), (status == 503).then_some("1"), "{status}");
        codes.push((status, r.json().await.unwrap()));
    }
    codes.sort_by_key(|(s, _)| *s);
    assert_eq!(codes[0].0, 422, "{codes:?}");
    assert_eq!(codes[0].1["code"], "script.failed");
    assert_eq!(codes[1].0, 503, "{codes:?}");
    assert_eq!(codes[1].1["code"], "script.busy");
    assert!(codes[1].1["detail"].as_str().unwrap().contains("domain `shop`"), "{codes:?}");

    // With room for two, the same pair runs side by side and both hit the deadline.
    let app = app_with(|c| {
        c.runtime.script_threads = 2;
        c.runtime.script_domain_concurrency = 2;
        c.runtime.script_queue_timeout_ms = 300;
    })
    .await;
    let (a, b) = tokio::join!(start(&app, "shop", "spin"), start(&app, "shop", "spin"));
    for r in [a, b] {
        let body = expect_problem(r, 422, "script.failed").await;
        assert!(body["detail"].as_str().unwrap().contains("ran longer than"), "{body}");
    }
}

#[tokio::test]
async fn memory_caps_fail_the_call_with_a_422() {
    let app = app_with(|c| c.runtime.script_max_string_bytes = 1024 * 1024).await;
    let body = expect_problem(start(&app, "shop", "grow").await, 422, "script.failed").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("./src/grow.rhai") && detail.contains("Length of string exceeds the size allowed"), "{detail}");
    let body = expect_problem(start(&app, "shop", "hog").await, 422, "script.failed").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("used more than the 64 MiB of memory allowed"), "{detail}");
    // The pool is fine afterwards.
    let r = start(&app, "shop", "quick").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
