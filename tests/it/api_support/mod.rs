//! Helpers for tests that run the `vnext` binary: a private database prefix,
//! child processes killed on drop, reading their output with deadlines.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use vnext_core::model::ComponentKind;
use vnext_testkit::db::{self, ADMIN_URL};

/// A fresh control database; dropped with everything under its prefix.
pub struct Prefix(pub String);

impl Prefix {
    pub async fn new() -> Prefix {
        let prefix = db::unique_prefix();
        db::create_database(ADMIN_URL, &format!("{prefix}control")).await;
        Prefix(prefix)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vnext"));
        cmd.args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("VNEXT_DATABASE__URL", format!("postgres://postgres@127.0.0.1:5432/{}control", self.0))
            .env("VNEXT_DATABASE__DATABASE_PREFIX", &self.0)
            // Any free port: several apps run at once in the tests.
            .env("VNEXT_APP__INTERNAL_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

}

impl Drop for Prefix {
    /// Runs even when the test panicked; uses a runtime of its own.
    fn drop(&mut self) {
        let prefix = self.0.clone();
        db::block_in_drop(move || async move { drop_all(&prefix).await });
    }
}

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn drop_all(prefix: &str) {
    db::drop_prefixed(ADMIN_URL, prefix).await;
}

/// Reads stdout lines on a thread until one contains `needle` (or the deadline passes).
pub fn wait_for_line(child: &mut Child, needle: &str, within: Duration) -> (String, Vec<String>) {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    // Keep draining so the child never blocks on a full pipe.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return (line, seen);
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let stderr = child.stderr.take().map(|mut e| {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
        s
    });
    panic!("no line with `{needle}` within {within:?}; stdout: {seen:#?}; stderr: {stderr:?}");
}

pub fn base_url(line: &str) -> String {
    let start = line.find("http://").expect("a URL");
    let rest = &line[start..];
    let end = rest.find("/api/v1").or_else(|| rest.find(char::is_whitespace)).unwrap_or(rest.len());
    rest[..end].to_string()
}

/// SIGTERM, then the exit status within a deadline.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls an instance until it reaches `state` (20 s deadline).
pub async fn wait_for_state(client: &reqwest::Client, url: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        if v["metadata"]["currentState"] == state {
            return v;
        }
        assert!(Instant::now() < deadline, "never reached `{state}`: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A merchant's callback endpoint on port 0, recording the bodies it receives.
pub async fn merchant_endpoint() -> (String, Arc<Mutex<Vec<Value>>>) {
    let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = calls.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(body);
                axum::Json(json!({ "acknowledgement": "ok" }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/callback"), calls)
}


/// The whole runtime in this test process, as `vnext up` wires it (engine with
/// in-process task runners, the job scheduler, the API on port 0), on a private
/// database prefix. Nothing is published.
pub struct InProcess {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: tokio_util::sync::CancellationToken,
    // Dropped last: the databases go after the runtime stops.
    _prefix: Prefix,
}

impl InProcess {
    pub async fn start() -> InProcess {
        InProcess::start_with(|_| {}).await
    }

    /// As [`InProcess::start`], with the configuration adjusted by `configure`
    /// (after the database settings are filled in).
    pub async fn start_with(configure: impl FnOnce(&mut vnext_init::config::Config)) -> InProcess {
        use vnext_app::engine::{Databases, Engine, EngineDeps, EngineSettings, SystemClock};
        use vnext_execution::{HttpClients, LocalExecutor, Scheduler, SchedulerConfig};

        let prefix = Prefix::new().await;
        let mut config = vnext_init::config::Config::default();
        config.database.url = format!("postgres://postgres@127.0.0.1:5432/{}control", prefix.0);
        config.database.database_prefix = prefix.0.clone();
        config.database.max_connections_per_domain = 4;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.app.url = format!("http://{addr}");
        configure(&mut config);
        let databases = Databases::connect(&config).await.expect("connect");
        let executor = LocalExecutor::from_config(&config, HttpClients::new()).unwrap();
        let engine = Engine::new(EngineDeps { databases: databases.clone(), executor: Arc::new(executor), clock: Arc::new(SystemClock), settings: EngineSettings::from_config(&config) });
        let shutdown = tokio_util::sync::CancellationToken::new();
        let scheduler = Scheduler::new(Arc::new(databases), engine.trigger(), SchedulerConfig::from_config(&config));
        tokio::spawn(scheduler.run(shutdown.clone()));
        let server = vnext_app::server::ServerConfig {
            engine,
            listen: String::new(),
            shutdown: shutdown.clone(),
            drain: Duration::from_secs(2),
        };
        let (_, serve) = vnext_app::server::Server::serve(listener, server).unwrap();
        tokio::spawn(serve);
        InProcess { base: format!("http://{addr}"), client: reqwest::Client::new(), shutdown, _prefix: prefix }
    }
}

impl InProcess {
    /// The database prefix of this runtime (domain `d` lives in `<prefix>d`).
    pub fn prefix(&self) -> &str {
        &self._prefix.0
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs the payment sample through its two paths that need the execution
/// side: a confirmation window that expires (a timer fires) and a
/// confirmation that notifies the merchant (an HTTP task calls out once).
pub async fn pay_by_timer_and_by_http_task(client: &reqwest::Client, base: &str) {
    let api = format!("{base}/api/v1/demo/workflows/payment-processing/instances");
    let start = |key: &str, extra: Value| {
        let mut attributes = json!({ "merchantId": "m-1", "amount": 990, "currency": "EUR", "method": "transfer" });
        attributes.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        client.post(format!("{api}/start?sync=true")).json(&json!({ "key": key, "attributes": attributes })).send()
    };
    let r = start("pay-timer", json!({ "confirmationWindow": "PT1S" })).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_for_state(client, &format!("{api}/pay-timer"), "expired").await;

    let (hook, calls) = merchant_endpoint().await;
    let r = start("pay-http", json!({ "notifyUrl": hook })).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client
        .patch(format!("{api}/pay-http/transitions/confirm?sync=true"))
        .json(&json!({ "attributes": { "authorizationCode": "AUTH42" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let settled = wait_for_state(client, &format!("{api}/pay-http"), "settled").await;
    assert_eq!(settled["attributes"]["notification"]["delivered"], true, "{settled}");
    assert_eq!(calls.lock().unwrap().len(), 1);
}

fn component_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            component_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Publishes `flows/demo` over HTTP, referenced kinds first.
pub async fn publish_samples(rt: &InProcess) {
    let mut files = Vec::new();
    component_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/demo"), &mut files);
    let mut components: Vec<(usize, PathBuf, String)> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value = serde_json::from_str(&text).unwrap();
            let kind = ComponentKind::from_flow(value["flow"].as_str().unwrap()).unwrap();
            let rank = ComponentKind::PUBLISH_ORDER.iter().position(|k| *k == kind).unwrap();
            (rank, path, text)
        })
        .collect();
    components.sort();
    assert!(components.len() >= 20, "the sample package");
    for (_, path, text) in components {
        let r = rt
            .client
            .post(format!("{}/api/v1/definitions/publish", rt.base))
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}: {}", path.display(), r.text().await.unwrap());
    }
}
