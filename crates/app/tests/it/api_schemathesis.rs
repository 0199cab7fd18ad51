//! schemathesis against the running server: it reads `/openapi.json`,
//! generates requests for every operation and checks that no answer is a 5xx
//! and that every answer conforms to the document's schema for its status.
//!
//! The tool is found through `VNEXT_SCHEMATHESIS` (the path of its
//! executable; `.ci/run` installs it in a virtualenv and sets it). Without
//! it the test says so and passes, unless `VNEXT_REQUIRE_SCHEMATHESIS=1`.
//! The run is kept small (`--max-examples 5`); the full-size command is in
//! docs/api.md ("OpenAPI and /docs").

use std::process::Stdio;
use std::time::Duration;

use crate::api_support;

use api_support::{TestApp, fixtures};
use serde_json::{Value, json};
use vnext_init::keys::{self, NewKey};

fn tool() -> Option<String> {
    let path = std::env::var("VNEXT_SCHEMATHESIS").ok().filter(|p| !p.is_empty());
    if path.is_none() {
        let required = std::env::var("VNEXT_REQUIRE_SCHEMATHESIS").is_ok_and(|v| v == "1");
        assert!(!required, "VNEXT_REQUIRE_SCHEMATHESIS=1 but VNEXT_SCHEMATHESIS is not set");
        println!("note: VNEXT_SCHEMATHESIS is not set; skipping the schemathesis run (.ci/run sets it)");
    }
    path
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_nonconforming_answer() {
    let Some(tool) = tool() else { return };
    let app = TestApp::spawn().await;
    app.publish_fixtures().await;
    // A real instance, so the instance operations reach their handlers' work.
    let started = app.post_json(&format!("/api/v1/{}/workflows/{}/instances/start?sync=true", fixtures::DOMAIN, fixtures::FLOW), &json!({"key": "st-1", "attributes": {"amount": 3}})).await;
    let status = started.status().as_u16();
    let body: Value = started.json().await.unwrap();
    assert!(status == 200 || status == 202, "start: {status} {body}");
    let instance = body["id"].as_str().unwrap().to_string();
    let request = NewKey::from_parts("schemathesis", true, None, &[], Vec::new()).unwrap();
    let admin = keys::create(&app.init, &request).await.unwrap().1;

    // Path parameters fixed to the fixture's domain, workflow and instance, so
    // generated requests get past "not found" into the handlers.
    let dir = std::env::temp_dir().join(format!("vnext-st-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.domain\" = \"{}\"\n\"path.workflow\" = \"{}\"\n\"path.instance\" = \"{instance}\"\n",
            fixtures::DOMAIN,
            fixtures::FLOW
        ),
    )
    .unwrap();
    let url = app.url("/openapi.json");
    let mut command = tokio::process::Command::new(&tool);
    command
        .arg("--config-file")
        .arg(&config)
        .args(["run", &url, "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "5"])
        .args(["--phases", "examples,coverage,fuzzing", "--workers", "1", "--seed", "1", "--no-color"])
        .args(["--generation-database", "none", "--request-timeout", "15"])
        // Key ids show up in answers (key list, audit rows) and schemathesis
        // reuses them: revoking would take away the key this run uses.
        .args(["--exclude-operation-id", "revokeKey"])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("schemathesis finished within 5 minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "schemathesis found problems ({}):\n{stdout}\n{stderr}", output.status);
    println!("{stdout}");
}
