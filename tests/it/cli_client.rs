//! The client verbs (`vnext instances …`, `vnext incidents`, …) as a user runs
//! them: the real binary against a real runtime on port 0 with the sample
//! package published, each table and `--json` answer checked against what the
//! API itself says.

use crate::api_support;
use crate::e2e_support;

use std::time::Duration;

use api_support::{InProcess, publish_samples};
use e2e_support::{Target, at, automatic_default, final_state, http_task, manual, poll, publish, reference, script, state, workflow};
use serde_json::{Value, json};

/// What one run of the binary did.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// The table's line that mentions `needle`.
    fn line_with(&self, needle: &str) -> &str {
        self.stdout.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with `{needle}`: {}", self.stdout))
    }
}

/// Runs `vnext ARGS` with nothing of this process's environment but `env`,
/// in a directory without `vnext.toml`.
async fn vnext_with(args: &[&str], env: &[(&str, &str)]) -> Out {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vnext"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the vnext binary runs");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `vnext ARGS --url <the runtime>`.
async fn vnext(rt: &InProcess, args: &[&str]) -> Out {
    let mut all = args.to_vec();
    all.extend(["--url", &rt.base]);
    vnext_with(&all, &[]).await
}

async fn api_get(rt: &InProcess, path: &str) -> Value {
    let r = rt.client.get(format!("{}/api/v1/{path}", rt.base)).send().await.unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_started_listed_read_and_driven_through_the_binary() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    const W: &str = "document-approval";

    // Start with a key and inline data, run to its first state.
    let data = r#"{"title":"Price list","documentType":"contract","author":"ann"}"#;
    let out = vnext(&rt, &["instances", "start", "demo", W, "--key", "doc-1", "--data", data, "--sync"]).await.ok();
    let doc1 = api_get(&rt, &format!("demo/workflows/{W}/instances/doc-1")).await;
    let id1 = doc1["id"].as_str().unwrap().to_string();
    assert!(out.line_with("id:").contains(&id1), "{}", out.stdout);
    assert!(out.line_with("key:").contains("doc-1"), "{}", out.stdout);
    assert!(out.line_with("state:").contains("draft") && out.line_with("status:").contains("active"), "{}", out.stdout);
    assert_eq!(at(&doc1), ("draft", "A"));

    // Data from a file, machine output: the server's command answer as it came.
    let file = std::env::temp_dir().join(format!("vnext-cli-client-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"title":"Memo","documentType":"memo","author":"bob"}"#).unwrap();
    let at_file = format!("@{}", file.display());
    let out = vnext(&rt, &["instances", "start", "demo", W, "--key", "doc-2", "--data", &at_file, "--sync", "--json"]).await.ok();
    std::fs::remove_file(&file).unwrap();
    let answer = out.json();
    assert_eq!(answer["key"], "doc-2", "{answer}");
    assert_eq!(answer["attributes"]["title"], "Memo", "{answer}");
    let doc2 = api_get(&rt, &format!("demo/workflows/{W}/instances/doc-2")).await;
    assert_eq!(answer["id"], doc2["id"]);
    assert_eq!(answer["eTag"], doc2["eTag"], "the answer is the instance as stored");

    // Without --sync the start is accepted and runs in the background.
    let out = vnext(&rt, &["instances", "start", "demo", W, "--key", "doc-3", "--data", data]).await.ok();
    assert!(out.stdout.contains("it runs on; follow it with `vnext instances get demo document-approval"), "{}", out.stdout);
    let doc3 = poll(&rt.client, &format!("{}/api/v1/demo/workflows/{W}/instances/doc-3", rt.base), Duration::from_secs(20), "async start runs", |v| {
        at(v) == ("draft", "A")
    })
    .await;

    // Transition, then the instance and its history, as tables and as JSON.
    let out = vnext(&rt, &["instances", "transition", "demo", W, "doc-1", "submit-for-review", "--sync"]).await.ok();
    assert!(out.line_with("state:").contains("in-review"), "{}", out.stdout);
    let stored = api_get(&rt, &format!("demo/workflows/{W}/instances/{id1}")).await;
    assert_eq!(at(&stored), ("in-review", "A"));

    let out = vnext(&rt, &["instances", "get", "demo", W, &id1]).await.ok();
    assert!(out.line_with("key:").contains("doc-1"), "{}", out.stdout);
    assert!(out.line_with("workflow:").contains("document-approval 1.0.0"), "{}", out.stdout);
    assert!(out.line_with("state:").contains("in-review") && out.line_with("status:").contains("active"), "{}", out.stdout);
    assert!(out.line_with("eTag:").contains(stored["eTag"].as_str().unwrap()), "{}", out.stdout);
    assert!(out.stdout.contains("\"title\": \"Price list\""), "data is shown: {}", out.stdout);
    let out = vnext(&rt, &["instances", "get", "demo", W, "doc-1", "--json"]).await.ok();
    assert_eq!(out.json(), stored, "--json is the server's instance");

    let history = api_get(&rt, &format!("demo/workflows/{W}/instances/{id1}/transitions")).await;
    let out = vnext(&rt, &["instances", "history", "demo", W, "doc-1"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("#") && lines[0].contains("TRANSITION") && lines[0].contains("FROM") && lines[0].contains("TO"), "{}", out.stdout);
    let steps = history["transitions"].as_array().unwrap();
    assert_eq!(lines.len(), 1 + steps.len(), "one line per transition: {}", out.stdout);
    for (line, step) in lines[1..].iter().zip(steps) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[1], step["transitionId"].as_str().unwrap(), "{line}");
    }
    assert!(out.line_with("submit-for-review").contains("in-review"), "{}", out.stdout);
    assert_eq!(vnext(&rt, &["instances", "history", "demo", W, "doc-1", "--json"]).await.ok().json(), history);

    // The list: a page at a time, filtered by status and by a JSON filter.
    let out = vnext(&rt, &["instances", "list", "demo", W, "--page-size", "2"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains("ID") && lines[0].contains("KEY") && lines[0].contains("STATE") && lines[0].contains("STATUS"), "{}", out.stdout);
    assert_eq!(lines.len(), 1 + 2 + 1, "header, two instances, the next page: {}", out.stdout);
    assert_eq!(lines[3], "more: --page 2");
    // Newest first: doc-3, doc-2 on page 1, doc-1 alone on page 2.
    assert!(lines[1].contains(doc3["id"].as_str().unwrap()) && lines[1].contains("doc-3"), "{}", out.stdout);
    assert!(lines[2].contains("doc-2"), "{}", out.stdout);
    let out = vnext(&rt, &["instances", "list", "demo", W, "--page-size", "2", "--page", "2"]).await.ok();
    assert!(out.line_with(&id1).contains("in-review") && !out.stdout.contains("more:"), "{}", out.stdout);

    let filter = r#"{"currentState":{"eq":"in-review"}}"#;
    let out = vnext(&rt, &["instances", "list", "demo", W, "--filter", filter, "--status", "A", "--json"]).await.ok();
    let listed = out.json();
    let and = json!({ "and": [serde_json::from_str::<Value>(filter).unwrap(), { "status": { "eq": "A" } }] }).to_string();
    let r = rt.client.get(format!("{}/api/v1/demo/workflows/{W}/instances", rt.base)).query(&[("page", "1"), ("filter", &and)]).send().await.unwrap();
    let served: Value = r.json().await.unwrap();
    assert_eq!(listed, served, "--json is the server's page");
    let keys: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["doc-1"]);
    let out = vnext(&rt, &["instances", "list", "demo", W, "--status", "C"]).await.ok();
    assert_eq!(out.stdout.trim(), "no instances");

    // A transition not offered now: the problem's title, code and members on stderr.
    let out = vnext(&rt, &["instances", "transition", "demo", W, "doc-1", "archive", "--sync"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.starts_with("error: Transition not available in the current state (HTTP 409, conflict.transition.not-available)"), "{}", out.stderr);
    assert!(out.stderr.contains("  state: in-review"), "{}", out.stderr);
    assert!(out.stderr.contains("traceId: "), "{}", out.stderr);
    // With --json the problem body is on stdout too.
    let out = vnext(&rt, &["instances", "transition", "demo", W, "doc-1", "no-such-step", "--json"]).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["code"], "transition.not-found", "{}", out.stdout);
    assert!(out.stderr.contains("notfound.transition.not-found"), "{}", out.stderr);

    // A payload that fails the schema: every violation with its pointer.
    let bad = r#"{"title":"x","documentType":"poem","author":"ann"}"#;
    let out = vnext(&rt, &["instances", "start", "demo", W, "--data", bad, "--sync"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 422, validation.payload.invalid"), "{}", out.stderr);
    assert!(out.stderr.lines().any(|l| l.trim_start().starts_with("/documentType: ")), "the pointer: {}", out.stderr);

    // Retry of an instance that is not faulted; an instance that does not exist.
    let out = vnext(&rt, &["instances", "retry", "demo", W, "doc-1"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("instance.not-faulted"), "{}", out.stderr);
    let out = vnext(&rt, &["instances", "get", "demo", W, "nobody"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("HTTP 404, notfound.instance.not-found"), "{}", out.stderr);

    // Wrong local input never reaches the server.
    let out = vnext(&rt, &["instances", "start", "demo", W, "--data", "{not json"]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--data is not JSON"), "{}", out.stderr);
    let out = vnext(&rt, &["instances", "start", "demo", W, "--data", "@/nonexistent/file.json"]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("/nonexistent/file.json"), "{}", out.stderr);
}

/// Workflow `calls` of domain `ops`: `call-down` enters a state whose HTTP
/// task calls the target's `/down` route (500 until it recovers) with no
/// error boundary, so the instance faults at once.
fn failing_workflow() -> Vec<Value> {
    let task = http_task(
        "ops",
        "down-call",
        json!({ "url": "http://placeholder.invalid/", "method": "POST", "headers": { "content-type": "application/json" }, "body": {}, "timeoutSeconds": 5 }),
    );
    let source = r#"
fn input(ctx) { #{ url: ctx.instance.data.target + "/down", body: #{} } }
fn output(ctx) { #{ down: #{ status: ctx.response.status_code } } }
"#;
    let mut down = state("down", 2, json!([automatic_default("down-done", "done")]));
    down["onEntries"] = json!([{ "order": 1, "task": reference("ops", "sys-tasks", "down-call"), "mapping": script("./src/down.rhai", source) }]);
    let states = json!([state("idle", 1, json!([manual("call-down", "down")])), down, final_state("done")]);
    vec![task, workflow("ops", "calls", "idle", states, json!({}))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulted_instance_shows_its_incidents_and_is_retried_through_the_binary() {
    let rt = InProcess::start().await;
    publish(&rt.client, &rt.base, &failing_workflow()).await;
    let target = Target::start().await;

    let data = json!({ "target": target.base }).to_string();
    vnext(&rt, &["instances", "start", "ops", "calls", "--key", "call-1", "--data", &data, "--sync"]).await.ok();
    vnext(&rt, &["instances", "transition", "ops", "calls", "call-1", "call-down", "--sync"]).await.ok();
    let url = format!("{}/api/v1/ops/workflows/calls/instances/call-1", rt.base);
    poll(&rt.client, &url, Duration::from_secs(20), "the instance faults", |v| at(v).1 == "F").await;

    let out = vnext(&rt, &["instances", "get", "ops", "calls", "call-1"]).await.ok();
    assert!(out.line_with("status:").contains("faulted") && out.line_with("incident:").contains("active"), "{}", out.stdout);
    let served = api_get(&rt, "ops/workflows/calls/instances/call-1/incidents/active").await;
    let incident = &served["data"][0];
    let out = vnext(&rt, &["incidents", "ops", "calls", "call-1", "--active"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "header and the one incident: {}", out.stdout);
    assert!(lines[0].contains("CODE") && lines[0].contains("TASK") && lines[0].contains("MESSAGE"), "{}", out.stdout);
    for member in ["errorCode", "state", "transition", "task"] {
        assert!(lines[1].contains(incident[member].as_str().unwrap()), "{member} of {incident} in {}", lines[1]);
    }
    assert!(lines[1].contains("Task:500") && lines[1].contains("down-call") && lines[1].contains("open"), "{}", lines[1]);
    assert_eq!(vnext(&rt, &["incidents", "ops", "calls", "call-1", "--active", "--json"]).await.ok().json(), served);

    // Retried once the target is back: the instance completes, the incident is resolved.
    target.recover();
    let out = vnext(&rt, &["instances", "retry", "ops", "calls", "call-1", "--sync"]).await.ok();
    assert!(out.line_with("retried:").contains("call-down"), "{}", out.stdout);
    let done = poll(&rt.client, &url, Duration::from_secs(20), "the retry completes", |v| at(v) == ("done", "C")).await;
    assert_eq!(done["attributes"]["down"]["status"], 200, "{done}");
    let out = vnext(&rt, &["incidents", "ops", "calls", "call-1", "--active"]).await.ok();
    assert_eq!(out.stdout.trim(), "no open incidents");
    let out = vnext(&rt, &["incidents", "ops", "calls", "call-1"]).await.ok();
    assert!(out.line_with("Task:500").contains("resolved"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_sent_from_the_flag_or_the_environment() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    // The first key makes the open development server require keys.
    let database = format!("postgres://postgres@127.0.0.1:5432/{}control", rt.prefix());
    let env = [("VNEXT_DATABASE__URL", database.as_str()), ("VNEXT_DATABASE__DATABASE_PREFIX", rt.prefix())];
    let out = vnext_with(&["keys", "create", "--name", "ops", "--scope", "admin"], &env).await.ok();
    let secret = out.stdout.lines().find(|l| l.starts_with("vnk_")).expect("the secret").trim().to_string();

    let list = ["instances", "list", "demo", "customer-onboarding"];
    let out = vnext(&rt, &list).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("HTTP 401, unauthorized.auth.missing-key") && out.stderr.contains("--api-key"), "{}", out.stderr);
    let out = vnext(&rt, &[&list[..], &["--api-key", "vnk_wrong"]].concat()).await;
    assert!(out.code == 1 && out.stderr.contains("auth.invalid-key"), "{}", out.stderr);
    assert_eq!(vnext(&rt, &[&list[..], &["--api-key", &secret]].concat()).await.ok().stdout.trim(), "no instances");
    let out = vnext_with(&[&list[..], &["--url", &rt.base]].concat(), &[("VNEXT_API_KEY", &secret)]).await.ok();
    assert_eq!(out.stdout.trim(), "no instances");
}

#[tokio::test]
async fn an_unreachable_api_is_named_and_completions_name_the_verbs() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = vnext_with(&["instances", "get", "demo", "w", "i", "--url", &url], &[]).await;
    assert_eq!(out.code, 3);
    assert!(out.stderr.starts_with(&format!("error: cannot reach the API at {url}: connection refused")), "{}", out.stderr);
    // Without --url the address is the configured listen address (a wildcard reached on loopback).
    let listen = format!("0.0.0.0:{port}");
    let out = vnext_with(&["incidents", "demo", "w", "i"], &[("VNEXT_APP__LISTEN", &listen)]).await;
    assert_eq!(out.code, 3);
    assert!(out.stderr.contains(&format!("cannot reach the API at {url}: connection refused")), "{}", out.stderr);
    let out = vnext_with(&["instances", "get", "d", "w", "i", "--url", "ftp://x"], &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);

    let out = vnext_with(&["completions", "bash"], &[]).await.ok();
    assert!(out.stdout.contains("_vnext()"), "a bash completion function: {}", out.stdout);
    for verb in ["domains", "workflows", "instances", "incidents", "transition", "history", "retry", "--api-key"] {
        assert!(out.stdout.contains(verb), "completes `{verb}`");
    }
    for shell in ["zsh", "fish"] {
        let out = vnext_with(&["completions", shell], &[]).await.ok();
        assert!(out.stdout.contains("instances"), "{shell}: {}", out.stdout);
    }

    // Help lists the verbs in the order a user needs them.
    let out = vnext_with(&["--help"], &[]).await.ok();
    let order = ["up", "validate", "publish", "domains", "workflows", "instances", "incidents", "keys", "init", "app", "execution", "bench", "completions"];
    let listed: Vec<&str> = out.stdout.lines().filter_map(|l| l.strip_prefix("  ")).filter_map(|l| l.split_whitespace().next()).filter(|w| order.contains(w)).collect();
    assert_eq!(listed, order, "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_and_workflows_are_listed_as_the_api_serves_them() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    let data = r#"{"title":"Price list","documentType":"contract","author":"ann"}"#;
    vnext(&rt, &["instances", "start", "demo", "document-approval", "--data", data, "--sync"]).await.ok();

    let served = api_get(&rt, "domains").await;
    let out = vnext(&rt, &["domains"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains("DOMAIN") && lines[0].contains("DATABASE") && lines[0].contains("WORKFLOWS"), "{}", out.stdout);
    let domains = served["items"].as_array().unwrap();
    assert_eq!(lines.len(), 1 + domains.len(), "{}", out.stdout);
    assert!(domains.iter().any(|d| d["domain"] == "demo"), "{served}");
    for d in domains {
        let line = out.line_with(d["database"].as_str().unwrap());
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], d["domain"].as_str().unwrap(), "{line}");
        assert_eq!(words.last().copied(), Some(d["flowCount"].to_string().as_str()), "{line}");
    }
    assert_eq!(vnext(&rt, &["domains", "--json"]).await.ok().json(), served);

    let served = api_get(&rt, "demo/workflows").await;
    let out = vnext(&rt, &["workflows", "demo"]).await.ok();
    let flows = served["items"].as_array().unwrap();
    assert_eq!(out.stdout.lines().count(), 1 + flows.len(), "{}", out.stdout);
    for w in flows {
        let line = out.line_with(w["key"].as_str().unwrap());
        assert!(line.contains(w["latest"].as_str().unwrap()), "{line}");
    }
    assert!(out.line_with("document-approval").contains("1 active"), "{}", out.stdout);
    assert_eq!(vnext(&rt, &["workflows", "demo", "--json"]).await.ok().json(), served);
    let out = vnext(&rt, &["workflows", "demo", "--page-size", "1"]).await.ok();
    assert_eq!(out.stdout.lines().count(), 1 + 1 + 1, "header, one workflow, the next page: {}", out.stdout);
    assert_eq!(out.stdout.lines().last(), Some("more: --page 2"), "{}", out.stdout);

    let out = vnext(&rt, &["workflows", "nowhere"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_diagram_comes_from_the_api_with_its_path_marked() {
    let rt = InProcess::start().await;
    publish_samples(&rt).await;
    const W: &str = "document-approval";
    let data = r#"{"title":"Price list","documentType":"contract","author":"ann"}"#;
    vnext(&rt, &["instances", "start", "demo", W, "--key", "drawn-1", "--data", data, "--sync"]).await.ok();
    vnext(&rt, &["instances", "transition", "demo", W, "drawn-1", "submit-for-review", "--sync"]).await.ok();

    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/flows/demo/Workflows/document-approval/document-approval.json");
    let out = vnext(&rt, &["diagram", file, "--instance", "drawn-1"]).await.ok();
    let state_class = |key: &str| {
        let at = out.stdout.find(&format!("data-state=\"{key}\"")).unwrap_or_else(|| panic!("no node {key}: {}", out.stdout));
        let start = out.stdout[..at].rfind("class=\"").expect("the node's class");
        out.stdout[start..at].to_string()
    };
    assert!(state_class("in-review").contains(" current"), "{}", state_class("in-review"));
    assert!(state_class("draft").contains(" visited"), "{}", state_class("draft"));

    // The same drawing as the endpoint's, here as Mermaid.
    let out = vnext(&rt, &["diagram", file, "--instance", "drawn-1", "--format", "mermaid"]).await.ok();
    let r = rt.client.get(format!("{}/api/v1/demo/workflows/{W}/instances/drawn-1/diagram?format=mermaid", rt.base)).send().await.unwrap();
    assert_eq!(out.stdout, r.text().await.unwrap());

    // An instance the API does not know is its 404, exit 1.
    let out = vnext(&rt, &["diagram", file, "--instance", "nobody"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
}
