//! What an operator sees when an instance faults: one WARN line naming the
//! domain, workflow, instance, transition, error code and trace id, and the
//! fault and incident metrics moving on `/metrics` (read with a Prometheus
//! text parser).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::api_support::{TestApp, fixtures::{self, DOMAIN}};

/// Log lines of this test process, as the JSON log format writes them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the JSON log format at WARN for the whole test process (once; no
/// other test of this binary installs a subscriber) and returns what it captured.
fn captured_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        vnext_telemetry::log::init_with_writer(vnext_telemetry::log::Format::Json, "warn", move || writer.clone(), false);
        logs
    });
    logs.clone()
}

#[tokio::test]
async fn a_faulted_instance_logs_one_warn_line_and_moves_the_fault_metrics() {
    let logs = captured_logs();
    let app = TestApp::spawn().await;
    app.provision(DOMAIN).await;
    for component in fixtures::failing_http_package("probe", None) {
        let r = app.publish(&component).await;
        assert!(r.status().is_success(), "publish {}: {}", component["key"], r.text().await.unwrap());
    }
    let base = "/api/v1/shop/workflows/probe/instances";
    let started: Value = app.post_json(&format!("{base}/start?sync=true"), &json!({"key": "p-1"})).await.json().await.unwrap();
    let id = started["id"].as_str().expect("the start answers the instance").to_string();

    let probe = [("domain", "shop"), ("workflow", "probe")];
    let before = app.scrape().await;
    let r = app
        .client
        .patch(app.url(&format!("{base}/p-1/transitions/call?sync=true")))
        .header("x-request-id", "probe-trace-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let faulted: Value = r.json().await.unwrap();
    assert_eq!(faulted["metadata"]["status"], "F", "{faulted}");
    let after = app.scrape().await;

    let delta = |name: &str, extra: &[(&str, &str)]| {
        let labels: Vec<(&str, &str)> = probe.iter().copied().chain(extra.iter().copied()).collect();
        after.value(name, &labels) - before.value(name, &labels)
    };
    assert_eq!(delta("vnext_faults_total", &[("code", "Task:unavailable")]), 1.0);
    assert_eq!(delta("vnext_incidents_opened_total", &[]), 1.0);
    assert_eq!(delta("vnext_transitions_total", &[("kind", "transition"), ("outcome", "faulted")]), 1.0);
    assert_eq!(delta("vnext_transition_duration_seconds", &[("kind", "transition")]), 1.0);
    // The run took its connections through the counted acquire: its waits
    // are in the acquire histogram (labelled by domain only).
    let acquired = after.value("vnext_pool_acquire_seconds", &[("domain", "shop")]) - before.value("vnext_pool_acquire_seconds", &[("domain", "shop")]);
    assert!(acquired >= 1.0, "the faulting transition waited for at least one connection: {acquired}");
    assert!(after.has("vnext_pool_waiting"));
    // No label carries the instance.
    assert!(!reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap().contains(&id));

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["instance"] == id.as_str())
        .collect();
    assert_eq!(lines.len(), 1, "one line for the fault: {text}");
    let line = &lines[0];
    assert_eq!(line["level"], "WARN", "{line}");
    let fields = &line["fields"];
    assert_eq!(fields["domain"], "shop", "{line}");
    assert_eq!(fields["workflow"], "probe", "{line}");
    assert_eq!(fields["transition"], "call", "{line}");
    assert_eq!(fields["task"], "remote", "{line}");
    assert_eq!(fields["error_code"], "Task:unavailable", "{line}");
    assert_eq!(fields["trace_id"], "probe-trace-1", "{line}");
    // The line carries no instance data and no request body.
    assert!(fields.get("data").is_none() && fields.get("body").is_none(), "{line}");
}
