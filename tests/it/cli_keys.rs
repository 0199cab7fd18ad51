//! `vnext keys create|list|revoke` as a user runs them, against a real control
//! database, and `vnext app` enforcing the keys they made.

use crate::api_support;

use std::process::Output;
use std::time::Duration;

use api_support::{Prefix, Running, base_url, terminate, wait_for_line};

fn run(prefix: &Prefix, args: &[&str]) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = prefix.command(args).output().expect("the vnext binary runs");
    (status.code(), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

/// The secret line of `keys create` and the key id.
fn created(stdout: &str) -> (String, String) {
    let secret = stdout.lines().find(|l| l.starts_with("vnk_")).expect("a secret line").trim().to_string();
    let id = stdout.split_whitespace().nth(2).expect("created key <id>").to_string();
    (secret, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_revoked_and_enforced_by_the_app() {
    let prefix = Prefix::new().await;
    let (code, out, _) = run(&prefix, &["keys", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no API keys") && out.contains("vnext keys create"), "{out}");

    let (code, out, err) = run(&prefix, &["keys", "create", "--name", "ops", "--scope", "admin"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (admin, admin_id) = created(&out);
    assert_eq!(admin.len(), 68, "vnk_ and 32 bytes in hex: {admin}");
    assert!(out.contains("shown once"), "{out}");

    let (code, out, err) = run(&prefix, &["keys", "create", "--name", "reader", "--domain", "demo", "--grant", "read", "--role", "clerk"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (reader, reader_id) = created(&out);

    // Wrong requests are refused with what is wrong.
    let (code, _, err) = run(&prefix, &["keys", "create", "--name", "x", "--domain", "demo", "--grant", "delete"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("delete"), "{err}");
    let (code, _, err) = run(&prefix, &["keys", "create", "--name", "x", "--domain", "demo"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = run(&prefix, &["keys", "create", "--name", "x"]);
    assert_eq!(code, Some(2));

    let (code, out, _) = run(&prefix, &["keys", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&admin_id) && out.contains("ops") && out.contains("admin"), "{out}");
    assert!(out.contains(&reader_id) && out.contains("domain demo: read") && out.contains("roles=clerk"), "{out}");
    assert!(!out.contains(&admin[4..]) && !out.contains(&reader[4..]), "list never shows a secret: {out}");

    // The app on loopback with keys: enforced.
    let mut running = Running(prefix.command(&["app", "--listen", "127.0.0.1:0"]).spawn().expect("spawn vnext app"));
    let child = &mut running.0;
    let (line, _) = wait_for_line(child, "listening on", Duration::from_secs(60));
    let base = base_url(&line);
    let client = reqwest::Client::new();
    let list = format!("{base}/api/v1/demo/workflows/x/instances");
    assert_eq!(client.get(&list).send().await.unwrap().status(), 401);
    assert_eq!(client.get(&list).bearer_auth(&reader).send().await.unwrap().status(), 404, "authorised; no such domain here");
    let keys = client.get(format!("{base}/api/v1/admin/keys")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(keys.status(), 200);
    assert_eq!(client.get(format!("{base}/api/v1/admin/keys")).bearer_auth(&reader).send().await.unwrap().status(), 403);

    let (code, out, err) = run(&prefix, &["keys", "revoke", &reader_id]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(client.get(&list).bearer_auth(&reader).send().await.unwrap().status(), 401, "refused at once");
    let (code, out, _) = run(&prefix, &["keys", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l.contains(&reader_id) && l.contains("revoked")), "{out}");
    let (code, _, err) = run(&prefix, &["keys", "revoke", "not-a-uuid"]);
    assert_eq!(code, Some(2), "{err}");

    // Key management by the command line is in the control audit log.
    let audit = |action: &'static str| {
        let request = client.get(format!("{base}/api/v1/admin/audit?action={action}")).bearer_auth(&admin);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap()["items"].as_array().unwrap().clone() }
    };
    let created_rows = audit("key.create").await;
    assert_eq!(created_rows.len(), 2, "{created_rows:?}");
    assert!(created_rows.iter().all(|r| r["caller"] == "cli" && r["outcome"] == "ok" && r["status"] == 201), "{created_rows:?}");
    assert!(created_rows.iter().any(|r| r["target"]["keyId"] == admin_id.as_str()), "{created_rows:?}");
    let revoked_rows = audit("key.revoke").await;
    assert_eq!(revoked_rows.len(), 1, "{revoked_rows:?}");
    assert_eq!(revoked_rows[0]["target"]["keyId"], reader_id.as_str());
    assert_eq!(revoked_rows[0]["status"], 204);

    let status = terminate(child);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loopback_run_says_so() {
    let prefix = Prefix::new().await;
    let mut running = Running(prefix.command(&["app", "--listen", "127.0.0.1:0"]).spawn().expect("spawn vnext app"));
    let child = &mut running.0;
    let (line, _) = wait_for_line(child, "listening on", Duration::from_secs(60));
    let base = base_url(&line);
    let ready = reqwest::get(format!("{base}/api/v1/demo/workflows/x/instances")).await.unwrap();
    assert_eq!(ready.status(), 404, "open: no key needed");
    let status = terminate(child);
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WITHOUT authentication")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("vnext keys create"), "{stderr}");
}
