//! `vnext up` and `vnext app` as processes: what they print, that the API
//! answers, that SIGTERM shuts them down cleanly, and that an unreachable
//! PostgreSQL is explained rather than dumped as a stack trace.

use crate::api_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use api_support::{Prefix, Running, base_url, pay_by_timer_and_by_http_task, terminate, wait_for_line};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_publishes_flows_serves_the_api_and_stops_on_sigterm() {
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("flows").is_dir(), "flows/ is part of the repository");
    let prefix = Prefix::new().await;
    let mut running =
        Running(prefix.command(&["up", "--listen", "127.0.0.1:0", "--echo-listen", "127.0.0.1:0"]).spawn().expect("spawn vnext up"));
    let child = &mut running.0;
    let (_, seen) = wait_for_line(child, "Press Ctrl-C to stop", Duration::from_secs(120));
    let echo_line = seen.iter().find(|l| l.contains("Callback echo")).expect("where the callback echo listens");
    let echo_url = echo_line.split_whitespace().find(|w| w.starts_with("http://")).expect("the echo URL").to_string();
    let base = base_url(seen.iter().find(|l| l.contains("vnext is up")).expect("where the API listens"));
    assert!(seen.iter().any(|l| l.contains("curl -s") && l.contains(&base)), "a first curl to try: {seen:#?}");

    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The sample package was published: its workflow is listable.
    let list = client.get(format!("{base}/api/v1/demo/workflows/customer-onboarding/instances")).send().await.unwrap();
    assert_eq!(list.status(), 200, "{}", list.text().await.unwrap());
    let definition = client.get(format!("{base}/api/v1/demo/definitions/sys-flows/customer-onboarding")).send().await.unwrap();
    assert_eq!(definition.status(), 200);
    let on_disk = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/demo/Workflows/customer-onboarding/customer-onboarding.json"),
    )
    .unwrap();
    assert_eq!(definition.text().await.unwrap(), on_disk, "read back byte for byte as published");

    // Tasks and jobs run in the same process: a timer fires, an HTTP task calls out.
    pay_by_timer_and_by_http_task(&client, &base).await;
    notify_the_echo_as_the_samples_walkthrough_does(&client, &base, &echo_url).await;

    // One process records both sides: the timer job, its lag, the HTTP task attempt.
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    for expected in [
        r#"vnext_jobs_total{domain="demo",kind="timer",outcome="applied"}"#,
        r#"vnext_timers_fired_total{domain="demo"}"#,
        r#"vnext_job_lag_seconds_count{kind="timer"}"#,
        r#"vnext_http_task_attempts_total{status_class="2xx"}"#,
        r#"vnext_transitions_total{domain="demo",workflow="payment-processing",kind="timer",outcome="completed"}"#,
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
    }

    let status = terminate(child);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[tokio::test]
async fn app_serves_alone_and_stops_on_sigterm() {
    let prefix = Prefix::new().await;
    let mut running = Running(prefix.command(&["app", "--listen", "127.0.0.1:0"]).spawn().expect("spawn vnext app"));
    let child = &mut running.0;
    let (line, _) = wait_for_line(child, "listening on", Duration::from_secs(60));
    let base = base_url(&line);
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/ready")).send().await.unwrap().status(), 200);
    let r = client.get(format!("{base}/api/v1/demo/workflows/x/instances")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let status = terminate(child);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[test]
fn unreachable_postgres_is_explained_not_dumped() {
    for sub in ["up", "app"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vnext"))
            .arg(sub)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("VNEXT_DATABASE__URL", "postgres://postgres@127.0.0.1:1/postgres")
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run vnext");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sub}: {stderr}");
        assert!(stderr.contains("cannot reach PostgreSQL at 127.0.0.1:1"), "{sub}: {stderr}");
        assert!(stderr.contains("VNEXT_DATABASE__URL"), "{sub}: says how to fix it: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("stack backtrace"), "{sub}: {stderr}");
    }
}

/// docs/samples.md, payment-processing: start with `notifyUrl` at the callback
/// echo of `vnext up`, confirm, and the merchant notification is delivered.
async fn notify_the_echo_as_the_samples_walkthrough_does(client: &reqwest::Client, base: &str, echo: &str) {
    let api = format!("{base}/api/v1/demo/workflows/payment-processing/instances");
    let r = client
        .post(format!("{api}/start?sync=true"))
        .json(&serde_json::json!({"key": "pay-1001", "attributes": {"merchantId": "coffee-corner", "amount": 12500,
            "currency": "EUR", "method": "card", "notifyUrl": echo}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client
        .patch(format!("{api}/pay-1001/transitions/confirm?sync=true"))
        .json(&serde_json::json!({"attributes": {"authorizationCode": "AUTH42"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let settled = api_support::wait_for_state(client, &format!("{api}/pay-1001"), "settled").await;
    let notification = &settled["attributes"]["notification"];
    assert_eq!(notification["delivered"], true, "{settled}");
    assert_eq!(notification["statusCode"], 200, "{settled}");
    assert!(notification["acknowledgement"].as_str().is_some_and(|a| a.starts_with("echo-")), "{settled}");
}
