//! Finding PostgreSQL's server programs (`initdb`, `pg_ctl`, `postgres`) on
//! this machine: `database.postgres_bin` when set (then only there), otherwise
//! `pg_config --bindir`, the `PATH`, and where Debian, Homebrew and the PGDG
//! packages install them.

use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A folder with the three programs, and their major version.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    pub major: u32,
}

impl Binaries {
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What to say when nothing usable is found.
fn install_hint() -> &'static str {
    "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`; Fedora: `dnf install postgresql-server`; \
     macOS: `brew install postgresql@15`) or set database.postgres_bin to the folder holding initdb and pg_ctl; \
     or run a server instead: `docker compose up -d postgres`, then \
     `VNEXT_DATABASE__URL=postgres://postgres:postgres@127.0.0.1:5432/postgres vnext up`"
}

/// The programs to run the private cluster with. `want_major` is the version
/// an existing cluster was created by: its programs are preferred, and only
/// they can open it.
///
/// # Errors
/// A message naming where it looked and what to install.
pub fn find(configured: Option<&Path>, want_major: Option<u32>) -> Result<Binaries, String> {
    let candidates = match configured {
        Some(dir) => vec![dir.to_path_buf()],
        None => candidates(),
    };
    let mut found: Vec<Binaries> = Vec::new();
    for dir in &candidates {
        if found.iter().any(|b| same_dir(&b.dir, dir)) || !PROGRAMS.iter().all(|p| is_executable(&dir.join(p))) {
            continue;
        }
        if let Some(major) = major_version(&dir.join("pg_ctl")) {
            found.push(Binaries { dir: dir.clone(), major });
        }
    }
    if found.is_empty() {
        let looked = match configured {
            Some(dir) => format!("in database.postgres_bin ({})", dir.display()),
            None => {
                let shown: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
                if shown.is_empty() {
                    "(no pg_config, nothing on PATH, no usual install folder)".to_string()
                } else {
                    format!("in {}", shown.join(", "))
                }
            }
        };
        return Err(format!(
            "no PostgreSQL server programs (initdb, pg_ctl, postgres) found {looked} to run a private cluster: {}",
            install_hint()
        ));
    }
    match want_major {
        None => Ok(found.swap_remove(0)),
        Some(major) => match found.iter().position(|b| b.major == major) {
            Some(i) => Ok(found.swap_remove(i)),
            None => {
                let have: Vec<String> = found.iter().map(|b| format!("{} ({})", b.major, b.dir.display())).collect();
                Err(format!(
                    "the private cluster was created by PostgreSQL {major}, but only PostgreSQL {} is installed: install \
                     PostgreSQL {major} or start over with `vnext up --fresh` (its data is lost)",
                    have.join(", ")
                ))
            }
        },
    }
}

/// Where to look, in order; the first usable one wins unless a version is wanted.
fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|d| d.join("initdb").is_file()));
    }
    // Newest version first within each layout.
    dirs.extend(versioned("/usr/lib/postgresql", "", "bin"));
    dirs.extend(versioned("/usr", "pgsql-", "bin"));
    for brew in ["/opt/homebrew/opt", "/usr/local/opt"] {
        dirs.extend(versioned(brew, "postgresql@", "bin"));
        dirs.push(Path::new(brew).join("postgresql/bin"));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// `<root>/<prefix><version>/<sub>` for every version folder, newest first.
fn versioned(root: &str, prefix: &str, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix(prefix)?;
            let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
            Some((parts?, e.path().join(sub)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

/// The major version `pg_ctl --version` reports ("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1)").
fn major_version(pg_ctl: &Path) -> Option<u32> {
    let out = Command::new(pg_ctl).arg("--version").output().ok()?;
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

fn parse_major(version: &str) -> Option<u32> {
    let after = version.split(") ").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_of_the_usual_outputs() {
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)\n"), Some(15));
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 17beta2\n"), Some(17));
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 9.6.24\n"), Some(9));
        assert_eq!(parse_major("something else"), None);
    }

    #[test]
    fn an_empty_configured_folder_names_what_to_install() {
        let dir = std::env::temp_dir().join(format!("vnext-no-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = find(Some(&dir), None).unwrap_err();
        assert!(err.contains("database.postgres_bin") && err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains("apt-get install postgresql") && err.contains("docker compose up"), "{err}");
        let _ = std::fs::remove_dir(&dir);
    }
}
