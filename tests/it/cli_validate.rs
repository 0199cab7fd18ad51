//! `vnext validate` as a user runs it: exit codes, human output and `--json`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/core/tests/fixtures/cli")
}

fn vnext(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vnext"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the vnext binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_folder_exits_zero_and_skips_what_is_not_a_component() {
    let good = fixtures().join("good");
    let out = vnext(&["validate", good.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("3 component(s) checked, no problems"),
        "{stdout}"
    );
    assert!(stderr.contains("vnext.config.json: skipped"), "{stderr}");
    assert!(
        !stdout.contains("diagram") && !stderr.contains("diagram"),
        ".meta designer files are not read"
    );
}

#[test]
fn a_valid_folder_prints_an_empty_json_array() {
    let good = fixtures().join("good");
    let out = vnext(&["validate", "--json", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(parsed, Value::Array(vec![]));
}

#[test]
fn a_single_valid_file_exits_zero() {
    let file = fixtures().join("good/shop/Tasks/charge.json");
    let out = vnext(&["validate", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn a_broken_folder_exits_one_with_every_problem_as_json() {
    let bad = fixtures().join("bad");
    let out = vnext(&["validate", "--json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let items = parsed.as_array().expect("an array of diagnostics");
    let find = |code: &str| {
        items
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {parsed:#}"))
    };
    let dup = find("workflow.state.duplicate-key");
    assert_eq!(dup["pointer"], "/attributes/states/1/key");
    assert_eq!(dup["component"], "sys-flows/order@1.0.0");
    assert!(
        dup["file"]
            .as_str()
            .unwrap()
            .ends_with("bad/shop/Workflows/order.json")
    );
    let csharp = find("script.csharp");
    assert_eq!(csharp["pointer"], "/attributes/states/0/transitions/0/rule");
    assert!(
        csharp["message"]
            .as_str()
            .unwrap()
            .contains("./src/ChargeRule.csx")
    );
    let syntax = find("json.syntax");
    assert!(
        syntax["file"]
            .as_str()
            .unwrap()
            .ends_with("bad/shop/Tasks/broken.json")
    );
    assert_eq!(items.len(), 4, "{parsed:#}");
}

#[test]
fn a_broken_folder_prints_file_pointer_message_and_code() {
    let bad = fixtures().join("bad");
    let out = vnext(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("[workflow.state.duplicate-key]"))
        .expect("duplicate reported");
    assert!(
        line.contains(
            "bad/shop/Workflows/order.json: /attributes/states/1/key: state key `placed`"
        ),
        "{line}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("4 problem(s) in 2 file(s)"),
        "{stdout}"
    );
}

#[test]
fn usage_and_io_errors_exit_two() {
    let missing = fixtures().join("does-not-exist");
    let out = vnext(&["validate", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot open"),
        "{}",
        text(&out.stderr)
    );
    let out = vnext(&["validate"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing PATH is a usage error"
    );
}

#[test]
fn one_file_of_a_package_resolves_its_references_against_the_package() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows/demo/Workflows/customer-onboarding/customer-onboarding.json");
    let out = vnext(&["validate", "--json", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}{stderr}", text(&out.stdout));
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(parsed, Value::Array(vec![]), "no unresolved reference");
    assert!(stderr.contains("as part of the package in") && stderr.contains("flows/demo"), "{stderr}");
    assert!(stderr.contains("1 component(s) checked"), "only the named file is reported: {stderr}");
}

#[test]
fn a_named_file_that_is_not_a_component_is_a_problem() {
    let file = fixtures().join("good/vnext.config.json");
    let out = vnext(&["validate", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let items = parsed.as_array().unwrap();
    assert_eq!(items.len(), 1, "{parsed:#}");
    assert_eq!(items[0]["code"], "component.not-a-component");
    assert!(items[0]["file"].as_str().unwrap().ends_with("vnext.config.json"), "{parsed:#}");
}
