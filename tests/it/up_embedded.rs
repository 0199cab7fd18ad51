//! `vnext up` with its private PostgreSQL cluster, as a process: created in
//! the working directory on a free port, used for a sample flow, kept across
//! a clean stop and kill -9s, refused to a second `vnext up`, wiped by
//! `--fresh`; and, with no PostgreSQL installed, an error naming what to
//! install. Runs as root (the cluster then runs as `postgres`) and as a
//! normal user alike. The rest of the suite stays on the shared server.

use crate::api_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_support::{Running, base_url, pay_by_timer_and_by_http_task, terminate, wait_for_line};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

/// A working directory of its own, the cluster folder `vnext up` uses in it,
/// and other folders to remove; on drop, a server still running there is shut
/// down (immediate mode) and the folders removed.
struct Folder(PathBuf, PathBuf, Vec<PathBuf>);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("vnext-{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        // Under root the cluster runs as `postgres`, which must be able to enter it.
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let cluster = dir.join(".vnext/postgres");
        Folder(dir, cluster, Vec::new())
    }

    fn cluster(&self) -> PathBuf {
        self.1.clone()
    }

    /// `vnext up` here on the private cluster, with nothing of the caller's
    /// `VNEXT_*` settings.
    fn up(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vnext"));
        cmd.args(["up", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(&self.0)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("VNEXT_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("VNEXT_DATABASE__EMBEDDED", "true");
        cmd
    }

    /// The running postmaster's pid, from its lock file.
    fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.cluster().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let _ = Command::new("kill").args(["-QUIT", &pid.to_string()]).status();
            wait_until_gone(pid);
        }
        for dir in self.2.iter().chain([&self.0]) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A started `vnext up`: its API and what it printed before it was up.
struct Up {
    running: Running,
    base: String,
    seen: Vec<String>,
}

impl Up {
    fn start(folder: &Folder, extra: &[&str]) -> Up {
        let mut command = folder.up(extra);
        command.arg("--flows").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("flows"));
        let mut running = Running(command.spawn().expect("spawn vnext up"));
        // initdb, provisioning and publishing on two shared cores.
        let (_, seen) = wait_for_line(&mut running.0, "Press Ctrl-C to stop", Duration::from_secs(240));
        let base = base_url(seen.iter().find(|l| l.contains("vnext is up")).expect("where the API listens"));
        Up { running, base, seen }
    }

    fn printed(&self, needle: &str) -> bool {
        self.seen.iter().any(|l| l.contains(needle))
    }

    /// The `psql` URL it printed.
    fn psql_url(&self) -> String {
        let line = self.seen.iter().find(|l| l.trim_start().starts_with("psql '")).expect("a psql line");
        line.trim().trim_start_matches("psql '").trim_end_matches('\'').to_string()
    }

    /// SIGTERM; the exit status and what it wrote to stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let child: &mut Child = &mut self.running.0;
        let status = terminate(child);
        let mut stderr = String::new();
        let _ = child.stderr.take().expect("stderr").read_to_string(&mut stderr);
        (status, stderr)
    }
}

fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("kill").args(["-0", &pid.to_string()]).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
        assert!(Instant::now() < deadline, "process {pid} still there after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn instance(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    client.get(format!("{base}/api/v1/demo/workflows/payment-processing/instances/{key}")).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_a_private_cluster_that_keeps_its_data_until_fresh() {
    let folder = Folder::new("up-embedded");
    let client = reqwest::Client::new();

    // First run: the cluster is created in the working directory.
    let first = Up::start(&folder, &[]);
    assert!(first.printed("starting a private PostgreSQL cluster"), "{:#?}", first.seen);
    assert!(first.printed("created a PostgreSQL"), "{:#?}", first.seen);
    let data = folder.cluster().canonicalize().unwrap();
    assert!(first.printed(&format!("data: {}", data.display())), "where the data lives: {:#?}", first.seen);
    let psql = first.psql_url();
    assert!(psql.contains(&format!("host={}", data.display())), "the socket is in the data folder: {psql}");
    let port: u16 = psql.split("port=").nth(1).and_then(|p| p.split('&').next()).unwrap().parse().expect("a port in the psql URL");
    assert_ne!(port, 5432, "a port of its own");

    // The sample domain is provisioned there, and a flow runs (timer and HTTP task).
    pay_by_timer_and_by_http_task(&client, &first.base).await;
    let mut admin = PgConnection::connect(&psql).await.expect("the psql URL reaches the cluster");
    let domains: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname = 'vnext_demo'")
        .fetch_all(&mut admin)
        .await
        .unwrap();
    assert_eq!(domains, ["vnext_demo"], "the domain database lives in the private cluster");
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&mut admin).await.unwrap();
    assert_eq!(sync, "on");
    drop(admin);

    // A second `vnext up` in the same folder is refused while the first runs.
    let second = folder.up(&[]).output().expect("run a second vnext up");
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(said.contains("another `vnext up`") && said.contains("is using the private PostgreSQL cluster"), "{said}");

    // A clean stop stops the server too.
    let (status, stderr) = first.stop();
    assert!(status.success(), "graceful shutdown exits 0, got {status}: {stderr}");
    assert!(stderr.contains("private PostgreSQL stopped"), "{stderr}");
    assert_eq!(folder.postmaster_pid(), None, "no server left running");

    // Second run, with the last port taken meanwhile: the data is kept.
    let taken = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the stopped cluster's port is free");
    let again = Up::start(&folder, &[]);
    assert!(!again.printed("created a PostgreSQL"), "{:#?}", again.seen);
    assert!(!again.psql_url().contains(&format!("port={port}&")), "another port: {}", again.psql_url());
    drop(taken);
    let settled: Value = instance(&client, &again.base, "pay-http").await.json().await.unwrap();
    assert_eq!(settled["metadata"]["currentState"], "settled", "{settled}");

    // kill -9 of the runtime: the server outlives it, and the next start
    // stops that one and starts its own.
    let postmaster = folder.postmaster_pid().expect("a running server");
    let mut killed = again.running;
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    assert_eq!(folder.postmaster_pid(), Some(postmaster), "the server outlives a killed runtime");
    let after_kill = Up::start(&folder, &[]);
    assert!(after_kill.printed("stopped the server an earlier `vnext up` left running"), "{:#?}", after_kill.seen);
    assert_ne!(folder.postmaster_pid(), Some(postmaster));

    // kill -9 of both the runtime and the server: a stale postmaster.pid,
    // and the next start recovers.
    let postmaster = folder.postmaster_pid().expect("a running server");
    let mut killed = after_kill.running;
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    assert!(Command::new("kill").args(["-KILL", &postmaster.to_string()]).status().unwrap().success());
    wait_until_gone(postmaster);
    assert_eq!(folder.postmaster_pid(), Some(postmaster), "a killed server leaves its postmaster.pid");
    let recovered = Up::start(&folder, &[]);
    assert!(recovered.printed("was not stopped cleanly"), "{:#?}", recovered.seen);
    let settled: Value = instance(&client, &recovered.base, "pay-http").await.json().await.unwrap();
    assert_eq!(settled["metadata"]["currentState"], "settled", "committed data survives a crash: {settled}");
    let (status, stderr) = recovered.stop();
    assert!(status.success(), "{stderr}");

    // --fresh: an empty cluster, the sample domain provisioned again.
    let fresh = Up::start(&folder, &["--fresh"]);
    assert!(fresh.printed("--fresh: removed the private cluster"), "{:#?}", fresh.seen);
    assert!(fresh.printed("created a PostgreSQL"), "{:#?}", fresh.seen);
    assert_eq!(instance(&client, &fresh.base, "pay-http").await.status(), 404, "the old instance is gone");
    let list = client.get(format!("{}/api/v1/demo/workflows/payment-processing/instances", fresh.base)).send().await.unwrap();
    assert_eq!(list.status(), 200, "{}", list.text().await.unwrap());
    let (status, stderr) = fresh.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(folder.postmaster_pid(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_too_long_for_a_socket_puts_the_socket_elsewhere() {
    let mut folder = Folder::new("up-long");
    let long = folder.0.join("a-data-folder-whose-path-is-longer-than-a-unix-socket-path-may-be-at-all");
    assert!(long.join("postgres/.s.PGSQL.65535").as_os_str().len() >= 108);
    folder.1 = long.join("postgres");
    // Nothing to publish: only the cluster matters here.
    let mut command = folder.up(&["--flows", "none"]);
    command.env("VNEXT_RUNTIME__DATA_DIR", &long);
    let mut running = Running(command.spawn().expect("spawn vnext up"));
    let (_, seen) = wait_for_line(&mut running.0, "Press Ctrl-C to stop", Duration::from_secs(240));
    let note = seen.iter().find(|l| l.contains("the socket is in")).unwrap_or_else(|| panic!("{seen:#?}"));
    assert!(note.contains("too long for a Unix socket"), "{note}");
    let socket_dir = PathBuf::from(note.split("the socket is in ").nth(1).unwrap().split(" (").next().unwrap());
    folder.2.push(socket_dir.clone());
    let psql = seen.iter().find(|l| l.trim_start().starts_with("psql '")).expect("a psql line");
    let url = psql.trim().trim_start_matches("psql '").trim_end_matches('\'');
    assert!(url.contains(&format!("host={}&", socket_dir.display())), "{url}");
    let mut admin = PgConnection::connect(url).await.expect("the psql URL reaches the cluster");
    let dir: String = sqlx::query_scalar("SHOW data_directory").fetch_one(&mut admin).await.unwrap();
    assert_eq!(Path::new(&dir), long.canonicalize().unwrap().join("postgres"));
    drop(admin);
    let status = terminate(&mut running.0);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert_eq!(folder.postmaster_pid(), None, "no server left running");
    assert!(!socket_dir.exists(), "the socket's folder goes with the server");
}

#[test]
fn without_postgresql_programs_up_names_what_to_install() {
    let folder = Folder::new("up-no-pg");
    let empty = folder.0.join("no-postgres-here");
    std::fs::create_dir(&empty).unwrap();
    let out = folder
        .up(&[])
        .env("VNEXT_DATABASE__POSTGRES_BIN", &empty)
        // No pg_config either.
        .env("PATH", &empty)
        .output()
        .expect("run vnext up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no PostgreSQL server programs"), "{stderr}");
    assert!(stderr.contains(&format!("database.postgres_bin ({})", empty.display())), "where it looked: {stderr}");
    assert!(stderr.contains("apt-get install postgresql") && stderr.contains("brew install"), "what to install: {stderr}");
    assert!(stderr.contains("docker compose up"), "the alternative: {stderr}");
    assert!(!folder.cluster().exists(), "nothing was created");
}
