//! Runs `vnext bench --size tiny` as a process so that every scenario keeps
//! working. It checks that each one completes and reports sane figures; it never
//! judges speed (the full-size run does that, see the README).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn report_path() -> PathBuf {
    std::env::temp_dir().join(format!("vnext-bench-tiny-{}.json", std::process::id()))
}

fn figure<'a>(scenario: &'a Value, pointer: &str) -> &'a Value {
    scenario.pointer(pointer).unwrap_or_else(|| panic!("scenario {} has no {pointer}: {scenario:#}", scenario["name"]))
}

fn number(scenario: &Value, pointer: &str) -> f64 {
    figure(scenario, pointer).as_f64().unwrap_or_else(|| panic!("{pointer} of {} is not a number", scenario["name"]))
}

/// A throughput run that did something and failed nowhere.
fn assert_run(scenario: &Value, key: &str) {
    let count = number(scenario, &format!("/results/{key}/count"));
    let errors = number(scenario, &format!("/results/{key}/errors"));
    let throughput = number(scenario, &format!("/results/{key}/throughput_per_s"));
    let (p50, p99) = (number(scenario, &format!("/results/{key}/p50_ms")), number(scenario, &format!("/results/{key}/p99_ms")));
    assert!(count > 0.0, "{key}: no operation measured");
    assert_eq!(errors, 0.0, "{key}: operations failed");
    assert!(throughput.is_finite() && throughput > 0.0, "{key}: throughput {throughput}");
    assert!(p50 > 0.0 && p50 <= p99, "{key}: p50 {p50} ms, p99 {p99} ms");
}

#[test]
fn every_scenario_completes_at_tiny_size_with_sane_figures() {
    let json = report_path();
    let output = Command::new(env!("CARGO_BIN_EXE_vnext"))
        // A prefix of its own: a benchmark run by hand is not disturbed.
        .args(["bench", "--size", "tiny", "--clients", "4", "--prefix", "vnextbenchtest_", "--json"])
        .arg(&json)
        .output()
        .expect("run vnext bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed\nstdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report written")).expect("report is JSON");
    let _ = std::fs::remove_file(&json);

    assert_eq!(report["size"], "tiny");
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let ids: Vec<u64> = scenarios.iter().filter_map(|s| s["id"].as_u64()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7], "every scenario reports, in order");
    for s in scenarios {
        let failed: Vec<&str> = s["notes"].as_array().unwrap().iter().filter_map(Value::as_str).filter(|n| n.starts_with("failed")).collect();
        assert!(failed.is_empty(), "scenario {} failed: {failed:?}", s["name"]);
        // A tiny run is too small to judge against the budget.
        assert!(s["budget"].is_null(), "scenario {} judged at tiny size", s["name"]);
    }
    let by_name = |name: &str| scenarios.iter().find(|s| s["name"] == name).unwrap();

    let manual = by_name("manual");
    assert_run(manual, "engine");
    assert_run(manual, "raw_sql");
    let ratio = number(manual, "/results/ratio_engine_over_raw");
    assert!(ratio > 0.0 && ratio.is_finite(), "ratio {ratio}");

    let chain = by_name("auto-chain");
    assert_run(chain, "one_client");
    assert_run(chain, "4_clients");
    assert_eq!(figure(chain, "/results/final_state_of_a_check_instance"), "approved");

    let first = by_name("first-start");
    let all = figure(first, "/results/first_start_ms_all").as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|v| v.as_f64().is_some_and(|ms| ms > 0.0)), "first starts {all:?}");

    let flows = by_name("many-flows");
    assert_eq!(number(flows, "/results/flow_schemas"), 5.0);
    assert_eq!(number(flows, "/results/migrated_schemas"), 5.0, "the new migration reached every schema");
    assert!(number(flows, "/results/startup_nothing_pending_s") > 0.0);
    assert!(number(flows, "/results/startup_one_new_migration_s") > 0.0);

    let timers = by_name("timers");
    assert_eq!(number(timers, "/results/timers"), 20.0);
    assert_eq!(number(timers, "/results/fired"), 20.0, "every timer fired");
    assert_eq!(number(timers, "/results/fire_transitions"), 20.0, "each fired once");
    assert_eq!(number(timers, "/results/lost"), 0.0);
    assert_eq!(number(timers, "/results/duplicated"), 0.0);
    assert!(number(timers, "/results/first_fired_after_due_s") >= 0.0, "no timer fired early");

    let http = by_name("http-tasks");
    assert_run(http, "plain_transitions");
    assert_run(http, "with_http_task");

    let idle = by_name("idle");
    assert_eq!(number(idle, "/results/domains"), 10.0);
    assert!(number(idle, "/results/transactions_per_s_all_domains") >= 0.0);

    assert!(stdout.contains("== summary"), "a summary is printed:\n{stdout}");
}
