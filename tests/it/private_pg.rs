//! A PostgreSQL cluster of a test's own, on a free loopback port, for tests
//! that restart or stop the server under load. The shared server on 5432 is
//! never touched: other tests run against it at the same time.
//!
//! The cluster is created with `initdb` in a temporary folder (trust
//! authentication on loopback, durability settings off: it only lives for the
//! test) and removed, server included, when dropped. Under root, PostgreSQL's
//! programs run as the `postgres` OS user, as `vnext up` does.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// Run PostgreSQL's programs as this OS user (this process is root).
    run_as: Option<String>,
}

/// The folder of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/<major>/bin`.
fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().expect("PostgreSQL's server programs (initdb, pg_ctl) are installed")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePg {
    /// Creates and starts a cluster; blocking (`initdb` takes a few seconds).
    pub fn start() -> PrivatePg {
        let bin = bindir();
        let dir = std::env::temp_dir().join(format!("vnext-pg-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        std::fs::create_dir(&dir).unwrap();
        let run_as = is_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let status = Command::new("chown").arg(user).arg(&dir).status().unwrap();
            assert!(status.success(), "chown {}", dir.display());
        }
        let port = crate::e2e_support::free_port();
        let pg = PrivatePg { dir, bin, port, run_as };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data}'\nmax_connections = 200\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        );
        let conf = pg.dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&settings);
        std::fs::write(&conf, text).unwrap();
        pg.pg_ctl(&["start"]);
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl restart -m fast`: every session is ended ("terminating
    /// connection due to administrator command"), the server comes back.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast"]);
    }

    /// `pg_ctl stop -m fast`: the server is gone until [`PrivatePg::resume`].
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    pub fn resume(&self) {
        self.pg_ctl(&["start"]);
    }

    fn data(&self) -> String {
        self.dir.display().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let log = self.dir.join("server.log").display().to_string();
        let mut all = vec!["-D", &data, "-w", "-t", "60", "-l", &log];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        let out = cmd.args(args).current_dir(Path::new("/")).env("LC_ALL", "C").output().unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        let _ = cmd.args(["-D", &data, "-w", "-t", "30", "stop", "-m", "immediate"]).current_dir("/").output();
        // The postmaster's children leave with it; give the folder a moment.
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
