//! Unknown fields are warnings: `vnext validate` prints them and passes unless
//! `--strict`; publishing answers them in `warnings` and refuses them with
//! `strict=true`. The sample folder `flows/` has none.

use crate::api_support;
use crate::e2e_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use api_support::InProcess;
use e2e_support::*;
use serde_json::{Value, json};

fn vnext(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vnext")).args(args).env("RUST_LOG", "warn").output().expect("the vnext binary runs")
}

/// A valid HTTP task with one field the model does not know.
fn task_with_unknown_field() -> Value {
    let mut task = http_task("warn", "ping", json!({ "url": "http://placeholder.invalid/", "method": "GET" }));
    task["attributes"]["retries"] = json!(3);
    task
}

#[test]
fn validate_warns_and_strict_refuses() {
    let dir = std::env::temp_dir().join(format!("vnext-warnings-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("ping.json");
    std::fs::write(&file, serde_json::to_string_pretty(&task_with_unknown_field()).unwrap()).unwrap();

    let out = vnext(&["validate", file.to_str().unwrap()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("warning:") && stderr.contains("/attributes/retries") && stderr.contains("component.unknown-field"), "{stderr}");
    assert!(stdout.contains("1 warning(s)"), "{stdout}");

    let out = vnext(&["validate", "--strict", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let problems: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problems[0]["code"], "component.unknown-field", "{problems}");
    assert_eq!(problems[0]["pointer"], "/attributes/retries", "{problems}");
    std::fs::remove_dir_all(&dir).unwrap();

    // The shipped samples carry no unknown field.
    let flows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows");
    let out = vnext(&["validate", "--strict", flows.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_answers_warnings_and_strict_refuses_them() {
    let rt = InProcess::start().await;
    let url = format!("{}/api/v1/definitions/publish", rt.base);
    let task = task_with_unknown_field();

    let (status, body) = send(rt.client.post(format!("{url}?strict=true")).json(&task)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["violations"][0]["code"], "component.unknown-field", "{body}");
    assert_eq!(body["violations"][0]["pointer"], "/attributes/retries", "{body}");

    let (status, body) = send(rt.client.post(&url).json(&task)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["warnings"][0]["code"], "component.unknown-field", "{body}");
    assert_eq!(body["warnings"][0]["pointer"], "/attributes/retries", "{body}");

    let (status, body) = send(rt.client.post(format!("{url}?strict=maybe")).json(&task)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(rt.client.post(format!("{}/api/v1/definitions/validate", rt.base)).json(&task)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["valid"].clone(), body["warnings"].as_array().map(Vec::len)), (json!(true), Some(1)), "{body}");
}
