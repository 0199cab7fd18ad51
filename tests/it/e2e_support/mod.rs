//! Helpers for the end-to-end tests of tasks, timers and jobs: a scripted
//! HTTP target on port 0, component builders, publishing over the REST API,
//! polling with deadlines and reading a domain database directly.
//!
//! Test files that use it declare `mod api_support;` as well.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;

// ---------------------------------------------------------------------------
// The HTTP target

/// A local HTTP server on port 0 whose routes behave as the tests need:
///
/// - `/ok`: 200 `{"answer": 42, "received": <request body>}`;
/// - `/missing`: 404 `{"error": "no such customer"}`;
/// - `/flaky`: 500 for the first `flaky_failures` calls, then 200 `{"attempt": n}`;
/// - `/down`: 500 until [`Target::recover`], then 200 `{"recovered": true}`;
/// - `/slow`: answers after 30 s (long after any task timeout);
/// - `/block`: the first `block_calls` calls are held until the target is
///   dropped or [`Target::release`] (each arrival is announced through
///   [`Target::wait_blocked`]); later calls answer 200 `{"unblocked": true}`.
///
/// Every call is counted per route ([`Target::calls`]).
pub struct Target {
    pub base: String,
    state: Arc<TargetState>,
}

#[derive(Default)]
struct TargetState {
    calls: Mutex<HashMap<String, usize>>,
    flaky_failures: AtomicUsize,
    recovered: AtomicBool,
    block_calls: AtomicUsize,
    blocked: AtomicUsize,
    abandoned: AtomicUsize,
    arrived: Notify,
    release: Notify,
    released: AtomicBool,
}

impl Target {
    pub async fn start() -> Target {
        let state = Arc::new(TargetState::default());
        let app = axum::Router::new().route("/{route}", axum::routing::any(handle)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Target { base: format!("http://{addr}"), state }
    }

    /// How many calls `/flaky` fails before it succeeds.
    pub fn set_flaky_failures(&self, n: usize) {
        self.state.flaky_failures.store(n, Ordering::SeqCst);
    }

    /// `/down` answers 200 from now on.
    pub fn recover(&self) {
        self.state.recovered.store(true, Ordering::SeqCst);
    }

    /// How many calls `/block` holds.
    pub fn set_block_calls(&self, n: usize) {
        self.state.block_calls.store(n, Ordering::SeqCst);
    }

    /// Lets every held `/block` call answer.
    pub fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
        self.state.release.notify_waiters();
    }

    /// Waits until `n` calls are held in `/block`.
    pub async fn wait_blocked(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            if self.state.blocked.load(Ordering::SeqCst) >= n {
                return;
            }
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
            assert!(!left.is_zero(), "{n} calls never arrived at /block (calls: {:?})", self.state.calls.lock().unwrap());
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }

    /// Waits until `n` held `/block` calls were given up by their caller (the
    /// connection closed before the answer); false when that did not happen
    /// within `within`.
    pub async fn wait_abandoned(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            if self.state.abandoned.load(Ordering::SeqCst) >= n {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }

    pub fn calls(&self, route: &str) -> usize {
        self.state.calls.lock().unwrap().get(route).copied().unwrap_or(0)
    }
}

async fn handle(State(state): State<Arc<TargetState>>, Path(route): Path<String>, body: String) -> axum::response::Response {
    let n = {
        let mut calls = state.calls.lock().unwrap();
        let n = calls.entry(route.clone()).or_default();
        *n += 1;
        *n
    };
    let received: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    match route.as_str() {
        "ok" => axum::Json(json!({ "answer": 42, "received": received })).into_response(),
        "missing" => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no such customer" }))).into_response(),
        "flaky" if n <= state.flaky_failures.load(Ordering::SeqCst) => {
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": "try again" }))).into_response()
        }
        "flaky" => axum::Json(json!({ "attempt": n })).into_response(),
        "down" if !state.recovered.load(Ordering::SeqCst) => {
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": "down" }))).into_response()
        }
        "down" => axum::Json(json!({ "recovered": true })).into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            axum::Json(json!({ "late": true })).into_response()
        }
        "block" if n <= state.block_calls.load(Ordering::SeqCst) => {
            /// Counts a held call whose caller hung up (the server drops the handler).
            struct Held(Arc<TargetState>, bool);
            impl Drop for Held {
                fn drop(&mut self) {
                    if !self.1 {
                        self.0.abandoned.fetch_add(1, Ordering::SeqCst);
                        self.0.arrived.notify_waiters();
                    }
                }
            }
            let mut held = Held(state.clone(), false);
            let release = state.release.notified();
            state.blocked.fetch_add(1, Ordering::SeqCst);
            state.arrived.notify_waiters();
            if !state.released.load(Ordering::SeqCst) {
                release.await;
            }
            held.1 = true;
            axum::Json(json!({ "unblocked": false })).into_response()
        }
        "block" => axum::Json(json!({ "unblocked": true })).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// An http URL on which nothing listens (a port that was free a moment ago).
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------
// Components

/// A rhai script in plain text (`encoding: NAT`).
pub fn script(location: &str, source: &str) -> Value {
    json!({ "location": location, "code": source, "encoding": "NAT" })
}

pub fn labels(text: &str) -> Value {
    json!([{ "label": text, "language": "en-US" }])
}

/// A reference to a component of `domain`, version 1.0.0.
pub fn reference(domain: &str, flow: &str, key: &str) -> Value {
    json!({ "key": key, "domain": domain, "flow": flow, "version": "1.0.0" })
}

/// A component envelope, version 1.0.0.
pub fn component(domain: &str, flow: &str, key: &str, attributes: Value) -> Value {
    json!({
        "key": key, "version": "1.0.0", "domain": domain, "flow": flow, "flowVersion": "1.0.0",
        "tags": ["e2e"], "attributes": attributes
    })
}

/// An HTTP task (type 6).
pub fn http_task(domain: &str, key: &str, config: Value) -> Value {
    component(domain, "sys-tasks", key, json!({ "type": "6", "config": config }))
}

/// A workflow whose start transition `begin` leads to `first`.
pub fn workflow(domain: &str, key: &str, first: &str, states: Value, extra: Value) -> Value {
    let mut attributes = json!({
        "type": "F",
        "labels": labels(key),
        "startTransition": {
            "key": "begin", "target": first, "triggerType": 0, "versionStrategy": "Minor", "labels": labels("Begin")
        },
        "states": states
    });
    attributes.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    component(domain, "sys-flows", key, attributes)
}

pub fn state(key: &str, state_type: i64, transitions: Value) -> Value {
    json!({ "key": key, "stateType": state_type, "versionStrategy": "None", "labels": labels(key), "transitions": transitions })
}

pub fn final_state(key: &str) -> Value {
    json!({ "key": key, "stateType": 3, "subType": 1, "versionStrategy": "None", "labels": labels(key), "transitions": [] })
}

pub fn manual(key: &str, target: &str) -> Value {
    json!({ "key": key, "target": target, "triggerType": 0, "versionStrategy": "Minor", "labels": labels(key) })
}

pub fn automatic_default(key: &str, target: &str) -> Value {
    json!({ "key": key, "target": target, "triggerType": 1, "triggerKind": 10, "versionStrategy": "Patch", "labels": labels(key) })
}

pub fn scheduled(key: &str, target: &str, timer: Value) -> Value {
    json!({ "key": key, "target": target, "triggerType": 2, "versionStrategy": "Patch", "labels": labels(key), "timer": timer })
}

// ---------------------------------------------------------------------------
// The REST API

/// Publishes components in order over `POST /api/v1/definitions/publish`.
pub async fn publish(client: &reqwest::Client, base: &str, components: &[Value]) {
    for c in components {
        let r = client.post(format!("{base}/api/v1/definitions/publish")).json(c).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 201, "publishing {}: {text}", c["key"]);
    }
}

/// `…/api/v1/{domain}/workflows/{flow}/instances`
pub fn instances_url(base: &str, domain: &str, flow: &str) -> String {
    format!("{base}/api/v1/{domain}/workflows/{flow}/instances")
}

/// Sends a request and returns its status and JSON body (`Null` when empty or not JSON).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `url` until `done` holds for its JSON (deadline `within`); returns it.
pub async fn poll(client: &reqwest::Client, url: &str, within: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, v) = send(client.get(url)).await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}; last answer: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(currentState, status)` of an instance envelope.
pub fn at(v: &Value) -> (&str, &str) {
    (v["metadata"]["currentState"].as_str().unwrap_or("?"), v["metadata"]["status"].as_str().unwrap_or("?"))
}

/// Polls an instance until its status is not busy and its state is `state`.
pub async fn wait_at(client: &reqwest::Client, instance_url: &str, state: &str, status: &str, within: Duration) -> Value {
    poll(client, instance_url, within, &format!("instance reaches `{state}` ({status})"), |v| at(v) == (state, status)).await
}

// ---------------------------------------------------------------------------
// The database

/// A connection to `<prefix><domain>` as the server's superuser, for reading
/// what the API does not show (job rows, transition rows).
pub async fn domain_db(prefix: &str, domain: &str) -> PgConnection {
    PgConnection::connect(&format!("postgres://postgres@127.0.0.1:5432/{prefix}{domain}")).await.expect("domain database")
}

/// `(transition_key, status)` of an instance's jobs of one kind, oldest first.
pub async fn jobs_of(db: &mut PgConnection, instance: &str, kind: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT transition_key, status FROM sys_queues.jobs WHERE instance_id = $1::uuid AND kind = $2 ORDER BY created_at")
        .bind(instance)
        .bind(kind)
        .fetch_all(db)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// The three services as processes

/// A port that was free a moment ago (services must know each other's URL
/// before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `vnext init`, `vnext app` and any number of `vnext execution` processes on a
/// private database prefix, with the components written to a package folder
/// that `vnext init` publishes. Each process logs (stderr) to a file of its
/// own; the logs are printed when a test fails.
pub struct Services {
    pub app_url: String,
    pub exec_url: String,
    exec_port: u16,
    /// The app's internal trigger endpoint (execution fires jobs there).
    pub internal_url: String,
    env: Vec<(String, String)>,
    dir: std::path::PathBuf,
    pub app: Option<crate::api_support::Running>,
    pub executions: Vec<crate::api_support::Running>,
    spawned: usize,
    // Dropped last: the databases go after the processes.
    pub prefix: crate::api_support::Prefix,
}

impl Services {
    /// Writes `components` into a package folder, runs `vnext init` on it and
    /// starts the app. `env` adds settings (`VNEXT_...`) to every process.
    pub async fn start(components: &[Value], env: &[(&str, &str)]) -> Services {
        let prefix = crate::api_support::Prefix::new().await;
        let dir = std::env::temp_dir().join(format!("vnext-{}", prefix.0.trim_end_matches('_')));
        let package = dir.join("package");
        std::fs::create_dir_all(&package).unwrap();
        for (n, c) in components.iter().enumerate() {
            let name = format!("{n:03}-{}-{}.json", c["flow"].as_str().unwrap(), c["key"].as_str().unwrap());
            std::fs::write(package.join(name), serde_json::to_string_pretty(c).unwrap()).unwrap();
        }
        let (app_port, exec_port) = (free_port(), free_port());
        let mut s = Services {
            app_url: format!("http://127.0.0.1:{app_port}"),
            exec_url: format!("http://127.0.0.1:{exec_port}"),
            exec_port,
            internal_url: format!("http://127.0.0.1:{}", free_port()),
            // Small pools: the tests share one PostgreSQL server with every other test.
            env: [("VNEXT_DATABASE__MAX_CONNECTIONS_PER_DOMAIN", "6"), ("VNEXT_DATABASE__MAX_CONTROL_CONNECTIONS", "2")]
                .iter()
                .chain(env)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
            app: None,
            executions: Vec::new(),
            spawned: 0,
            prefix,
        };
        s.env.push(("VNEXT_RUNTIME__FLOWS_DIR".into(), package.display().to_string()));
        let init = s.command("init", &["init"]).output().expect("run vnext init");
        assert!(
            init.status.success(),
            "vnext init: {}\n{}",
            String::from_utf8_lossy(&init.stdout),
            std::fs::read_to_string(s.log_path("init")).unwrap_or_default()
        );
        s.spawn_app();
        s
    }

    /// Starts the app on `app_url` and waits until it serves.
    pub fn spawn_app(&mut self) {
        let listen = self.app_url.trim_start_matches("http://").to_string();
        self.spawned += 1;
        let name = format!("app-{}", self.spawned);
        let mut app = crate::api_support::Running(self.command(&name, &["app", "--listen", &listen]).spawn().expect("spawn vnext app"));
        crate::api_support::wait_for_line(&mut app.0, "listening on", Duration::from_secs(60));
        self.app = Some(app);
    }

    /// SIGKILL the app: no shutdown, no clean-up.
    pub fn kill_app(&mut self) {
        let mut app = self.app.take().expect("an app runs");
        app.0.kill().expect("kill");
        app.0.wait().expect("wait");
    }

    fn log_path(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// `vnext <args>` with the prefix, the URLs and the extra settings; stderr
    /// appended to `<name>.log`.
    fn command(&self, name: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = self.prefix.command(args);
        cmd.env("VNEXT_APP__URL", &self.app_url).env("VNEXT_EXECUTION__URL", &self.exec_url);
        cmd.env("VNEXT_APP__INTERNAL_LISTEN", self.internal_url.trim_start_matches("http://"))
            .env("VNEXT_APP__INTERNAL_URL", &self.internal_url);
        // HTTP tasks call test servers on loopback.
        cmd.env("VNEXT_EGRESS__ALLOW_LOOPBACK", "true");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(name)).unwrap();
        cmd.stderr(log);
        cmd
    }

    /// Starts an execution process and waits until it serves. The first one
    /// (and any started with `on_exec_url`) listens where the app sends tasks.
    pub fn spawn_execution(&mut self, on_exec_url: bool) -> usize {
        self.spawn_executions(&[on_exec_url])[0]
    }

    /// Starts several execution processes at once, then waits until each serves.
    pub fn spawn_executions(&mut self, on_exec_url: &[bool]) -> Vec<usize> {
        let mut started = Vec::new();
        for &on in on_exec_url {
            let port = if on { self.exec_port } else { free_port() };
            self.spawned += 1;
            let name = format!("execution-{}", self.spawned);
            let child = self
                .command(&name, &["execution", "--listen", &format!("127.0.0.1:{port}")])
                .env("VNEXT_EXECUTION__WORKER_ID", &name)
                .spawn()
                .expect("spawn vnext execution");
            self.executions.push(crate::api_support::Running(child));
            started.push(self.executions.len() - 1);
        }
        for &i in &started {
            crate::api_support::wait_for_line(&mut self.executions[i].0, "invoke API on", Duration::from_secs(60));
        }
        started
    }

    /// SIGKILL: no shutdown, no clean-up.
    pub fn kill_execution(&mut self, index: usize) {
        let child = &mut self.executions[index].0;
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    /// Every line every process logged so far, whole.
    pub fn full_logs(&self) -> String {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return String::new() };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect::<Vec<_>>().join("\n")
    }

    /// Every process log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return out };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- {} (last {} lines)\n", p.display(), tail.len()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.executions.clear();
        self.app = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
