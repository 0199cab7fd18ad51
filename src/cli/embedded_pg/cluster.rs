//! One private PostgreSQL cluster in a folder: created with `initdb` on first
//! use, started and stopped with `pg_ctl`, kept between runs.
//!
//! Layout under `runtime.data_dir`: `postgres/` is the cluster (PGDATA; its
//! server log is `postgres/server.log`, the Unix socket is in it too unless its
//! path is too long for one), and `postgres.lock` keeps a second `vnext up`
//! from using the same cluster at the same time. The lock is a file lock, so
//! the OS releases it when the process dies, however it dies.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::binaries::{self, Binaries};
use super::os_user::ClusterUser;

/// What [`Cluster::start`] needs from the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// `runtime.data_dir`; the cluster goes into its `postgres` folder.
    pub data_dir: PathBuf,
    pub postgres_bin: Option<PathBuf>,
    pub os_user: String,
    /// Wipe the cluster before starting (`vnext up --fresh`).
    pub fresh: bool,
}

/// A running private cluster; stopped by [`Cluster::stop`], or when dropped.
pub struct Cluster {
    dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    user: ClusterUser,
    bin: Binaries,
    running: bool,
    /// What happened on the way that the user should hear about.
    pub notes: Vec<String>,
    _lock: File,
}

/// `sun_path` of `struct sockaddr_un`, terminating NUL included.
const SOCKET_PATH_MAX: usize = if cfg!(target_os = "linux") { 108 } else { 104 };
const PG_CTL_WAIT_SECONDS: &str = "60";
/// Attempts to start when the port is taken first or a killed server's
/// processes are still going.
const START_ATTEMPTS: usize = 5;

impl Cluster {
    /// Locks the folder, creates the cluster if needed, and starts it on a free
    /// loopback port. Blocking (it runs `initdb` and `pg_ctl`).
    ///
    /// # Errors
    /// A message saying what failed and, for a server that did not start,
    /// where its log is and what it said.
    pub fn start(options: &Options) -> Result<Cluster, String> {
        let user = ClusterUser::resolve(&options.os_user)?;
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| format!("cannot create runtime.data_dir {}: {e}", options.data_dir.display()))?;
        let data_dir = options
            .data_dir
            .canonicalize()
            .map_err(|e| format!("cannot resolve runtime.data_dir {}: {e}", options.data_dir.display()))?;
        let lock = lock(&data_dir.join("postgres.lock"))?;
        user.check_reachable(&data_dir)?;
        let dir = data_dir.join("postgres");
        let mut notes = Vec::new();

        let created_by = if options.fresh { None } else { cluster_version(&dir) };
        let bin = binaries::find(options.postgres_bin.as_deref(), created_by)?;
        let mut cluster = Cluster { dir, socket_dir: PathBuf::new(), port: 0, user, bin, running: false, notes: Vec::new(), _lock: lock };

        // Only a process that died without stopping its server (kill -9, a
        // second Ctrl-C) leaves one running: this process holds the lock.
        match cluster.leftover() {
            Leftover::None => {}
            Leftover::Running => {
                cluster.pg_ctl_stop("fast")?;
                notes.push("stopped the server an earlier `vnext up` left running".to_string());
            }
            Leftover::Stale => {
                // The server was killed; its pid may since belong to another process.
                let _ = std::fs::remove_file(cluster.dir.join("postmaster.pid"));
                notes.push("the server was not stopped cleanly last time; PostgreSQL recovers on start".to_string());
            }
        }
        if options.fresh && cluster.dir.exists() {
            std::fs::remove_dir_all(&cluster.dir).map_err(|e| format!("--fresh: cannot remove {}: {e}", cluster.dir.display()))?;
            notes.push(format!("--fresh: removed the private cluster in {}", cluster.dir.display()));
        }
        if cluster_version(&cluster.dir).is_none() {
            cluster.create()?;
            notes.push(format!("created a PostgreSQL {} cluster with {}", cluster.bin.major, cluster.bin.dir.display()));
        } else {
            cluster.user.own_dir(&cluster.dir)?;
        }
        cluster.socket_dir = match short_socket_dir(&cluster.dir) {
            None => cluster.dir.clone(),
            Some(short) => {
                cluster.user.own_dir(&short)?;
                notes.push(format!(
                    "the socket is in {} (the data folder's path is too long for a Unix socket)",
                    short.display()
                ));
                short
            }
        };
        cluster.run_server()?;
        cluster.notes = notes;
        Ok(cluster)
    }

    /// The cluster's folder (PGDATA).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The control database's URL: the superuser over the Unix socket. The
    /// runtime and `psql` both read this form.
    pub fn url(&self) -> String {
        format!("postgresql:///postgres?host={}&port={}&user={}", encode_path(&self.socket_dir), self.port, encode(&self.user.name))
    }

    /// Stops the server (fast shutdown: sessions are ended, data is kept).
    ///
    /// # Errors
    /// A message naming the server log when `pg_ctl stop` fails.
    pub fn stop(mut self) -> Result<(), String> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), String> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let result = self.pg_ctl_stop("fast");
        if self.socket_dir != self.dir {
            // Empty once the server removed its socket and lock file.
            let _ = std::fs::remove_dir(&self.socket_dir);
        }
        result
    }

    /// `initdb` into the (empty or missing) folder, then the settings of a
    /// private cluster.
    fn create(&self) -> Result<(), String> {
        if std::fs::read_dir(&self.dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(format!(
                "{} holds files but no PostgreSQL cluster: remove it, or start over with `vnext up --fresh`",
                self.dir.display()
            ));
        }
        self.user.own_dir(&self.dir)?;
        let out = self
            .user
            .command(&self.bin.program("initdb"), &self.dir)
            .arg("-D")
            .arg(&self.dir)
            .args(["--username", &self.user.name, "--encoding", "UTF8", "--locale", "C", "--auth", "trust"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.program("initdb").display()))?;
        if !out.status.success() {
            return Err(format!("initdb into {} failed: {}", self.dir.display(), output_text(&out)));
        }
        // initdb's `trust` for everyone is replaced before the first start.
        self.write_file(&self.dir.join("pg_hba.conf"), &hba(&self.user.name))?;
        let conf = self.dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
        text.push_str(
            "\n# vnext up: a private development cluster.\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_permissions = 0700\n\
             synchronous_commit = on\n\
             # The port and the socket folder, written at each start.\n\
             include_if_exists = 'vnext.conf'\n",
        );
        self.write_file(&conf, &text)
    }

    /// Starts the server on the port of the last run when it is free, else on
    /// any free one; another port is tried when something takes it first.
    fn run_server(&mut self) -> Result<(), String> {
        let settings = self.dir.join("vnext.conf");
        let mut port = previous_port(&settings).filter(|p| port_is_free(*p));
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.port = match port.take() {
                Some(p) => p,
                None => free_port()?,
            };
            self.write_file(
                &settings,
                &format!(
                    "# Written by `vnext up` at each start.\nport = {}\nunix_socket_directories = '{}'\n",
                    self.port,
                    self.socket_dir.display().to_string().replace('\'', "''")
                ),
            )?;
            let log = self.log_file();
            let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
            let out = self
                .pg_ctl()
                .arg("start")
                .arg("-l")
                .arg(&log)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", self.bin.program("pg_ctl").display()))?;
            if out.status.success() {
                self.running = true;
                return Ok(());
            }
            let said = read_from(&log, log_start);
            if attempt < START_ATTEMPTS {
                // Another process took the port between the check and the start.
                if said.contains("Address already in use") {
                    continue;
                }
                // Processes of a killed server still hold its shared memory
                // for a moment after the postmaster is gone.
                if said.contains("is still in use") {
                    port = Some(self.port);
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    continue;
                }
            }
            // A server still coming up when pg_ctl gave up waiting is not left behind.
            if self.dir.join("postmaster.pid").exists() {
                let _ = self.pg_ctl_stop("immediate");
            }
            let tail: Vec<&str> = said.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(format!(
                "the private PostgreSQL did not start ({}); its log is {}{}",
                output_text(&out),
                log.display(),
                if tail.is_empty() { String::new() } else { format!(":\n  {}", tail.join("\n  ")) }
            ));
        }
    }

    fn pg_ctl(&self) -> std::process::Command {
        let mut command = self.user.command(&self.bin.program("pg_ctl"), &self.dir);
        command.arg("-D").arg(&self.dir).args(["-w", "-t", PG_CTL_WAIT_SECONDS, "-s"]);
        command
    }

    /// What `postmaster.pid` says of a server from an earlier run.
    fn leftover(&self) -> Leftover {
        let Ok(text) = std::fs::read_to_string(self.dir.join("postmaster.pid")) else { return Leftover::None };
        let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else { return Leftover::Stale };
        let proc = Path::new("/proc");
        if proc.join("self").exists() {
            // `pg_ctl status` only asks whether the pid is alive; after a kill -9
            // it may have been reused, even by another cluster's backend. Our
            // postmaster is the process whose command line names this folder.
            let cmdline = std::fs::read(proc.join(pid.to_string()).join("cmdline")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline).split('\0').any(|arg| Path::new(arg) == self.dir);
            return if ours { Leftover::Running } else { Leftover::Stale };
        }
        let running = self.pg_ctl().arg("status").output().is_ok_and(|o| o.status.success());
        if running { Leftover::Running } else { Leftover::Stale }
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let out = self
            .pg_ctl()
            .args(["stop", "-m", mode])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.program("pg_ctl").display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cannot stop the private PostgreSQL in {} ({}); its log is {}",
                self.dir.display(),
                output_text(&out),
                self.log_file().display()
            ))
        }
    }

    /// Writes a file in the cluster's folder, owned by the cluster's user.
    fn write_file(&self, path: &Path, text: &str) -> Result<(), String> {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.user.chown(path)
    }
}

impl Drop for Cluster {
    /// A panic or an early return still stops the server.
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            eprintln!("error: {e}");
        }
    }
}

enum Leftover {
    None,
    Running,
    /// A `postmaster.pid` whose server is gone.
    Stale,
}

/// Only the cluster's own superuser gets in without a password, and only
/// through the socket, whose folder no other OS user can enter. Every other
/// role (the domains' roles) logs in by password.
fn hba(superuser: &str) -> String {
    let role = format!("\"{}\"", superuser.replace('"', "\"\""));
    format!(
        "# Written by `vnext up`: a private development cluster.\n\
         # TYPE  DATABASE  USER  ADDRESS       METHOD\n\
         local   all       {role}              trust\n\
         local   all       all                 scram-sha-256\n\
         host    all       all   127.0.0.1/32  scram-sha-256\n"
    )
}

/// Takes the folder's lock, or names the process that holds it.
fn lock(path: &Path) -> Result<File, String> {
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            // The holder's pid, for the message a second `vnext up` prints.
            let _ = file.set_len(0).and_then(|()| write!(file, "{}", std::process::id()));
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(format!(
                "another `vnext up`{} is using the private PostgreSQL cluster in {}: stop it first, or give this one \
                 another runtime.data_dir",
                if holder.is_empty() { String::new() } else { format!(" (pid {holder})") },
                path.parent().unwrap_or(path).display()
            ))
        }
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// The major version a cluster folder was created by, if it holds one.
fn cluster_version(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("PG_VERSION")).ok()?.trim().parse().ok()
}

/// A short folder for the socket when `dir`'s path leaves no room for the
/// socket's name (`.s.PGSQL.<port>`); `None` when `dir` itself will do.
fn short_socket_dir(dir: &Path) -> Option<PathBuf> {
    let fits = |d: &Path| d.as_os_str().len() + "/.s.PGSQL.65535".len() < SOCKET_PATH_MAX;
    if fits(dir) {
        return None;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    dir.hash(&mut hasher);
    let name = format!("vnext-pg-{:016x}", hasher.finish());
    let temp = std::env::temp_dir();
    let base = if fits(&temp.join(&name)) { temp } else { PathBuf::from("/tmp") };
    Some(base.join(name))
}

fn previous_port(settings: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(settings).ok()?;
    text.lines().find_map(|l| l.strip_prefix("port = ")?.trim().parse().ok())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// What a log file gained since `offset`.
fn read_from(path: &Path, offset: u64) -> String {
    let Ok(mut file) = File::open(path) else { return String::new() };
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn output_text(out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    let text = text.trim();
    if text.is_empty() { format!("exit status {}", out.status) } else { text.replace('\n', "; ") }
}

/// Characters kept as they are in a URL's user name and query values.
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
const PATH_KEEP: &AsciiSet = &URL_KEEP.remove(b'/');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, URL_KEEP).to_string()
}

/// A path in a URL's query, its slashes kept readable.
fn encode_path(path: &Path) -> String {
    utf8_percent_encode(&path.to_string_lossy(), PATH_KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_data_folder_gets_its_socket_elsewhere() {
        assert_eq!(short_socket_dir(Path::new("/home/dev/project/.vnext/postgres")), None);
        let long = PathBuf::from(format!("/home/dev/{}/.vnext/postgres", "deeply-nested-folder/".repeat(5)));
        let short = short_socket_dir(&long).expect("too long for a socket");
        assert!(short.as_os_str().len() + "/.s.PGSQL.65535".len() < SOCKET_PATH_MAX, "{}", short.display());
        assert_eq!(short_socket_dir(&long), Some(short), "the same folder each run");
    }

    #[test]
    fn urls_reach_the_socket() {
        assert_eq!(encode_path(Path::new("/home/a b/.vnext/postgres")), "/home/a%20b/.vnext/postgres");
        assert_eq!(encode("jane.doe"), "jane.doe");
        assert_eq!(encode("a@b"), "a%40b");
    }

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_with_the_holder() {
        let dir = std::env::temp_dir().join(format!("vnext-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("postgres.lock");
        let held = lock(&path).unwrap();
        let err = lock(&path).unwrap_err();
        assert!(err.contains("another `vnext up`") && err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(held);
        lock(&path).expect("free again once the holder is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_superuser_skips_the_password_and_only_on_the_socket() {
        let text = hba("postgres");
        let trust: Vec<&str> = text.lines().filter(|l| l.ends_with("trust")).collect();
        assert_eq!(trust, ["local   all       \"postgres\"              trust"]);
    }
}
