//! The OS user the private cluster runs as.
//!
//! PostgreSQL refuses to run as root. When `vnext up` runs as root (as CI
//! does), `initdb` and `pg_ctl` run as an unprivileged user instead
//! (`database.embedded_os_user`), the way Debian's cluster tools do, and the
//! cluster's folder is owned by that user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Uid, User};

/// Who runs the cluster's programs and owns its files.
#[derive(Debug, Clone)]
pub struct ClusterUser {
    /// OS user name; also the cluster's superuser role.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Set when this process is root and switches to `uid`/`gid` for every program it runs.
    switch: bool,
}

impl ClusterUser {
    /// This process's own user, or `configured` when this process is root.
    ///
    /// # Errors
    /// When running as root and `configured` names no user, or names root.
    pub fn resolve(configured: &str) -> Result<ClusterUser, String> {
        let me = Uid::effective();
        if !me.is_root() {
            let user = User::from_uid(me).ok().flatten();
            let name = user.as_ref().map(|u| u.name.clone()).or_else(|| std::env::var("USER").ok()).ok_or_else(|| {
                format!("cannot find the name of OS user {me} (needed as the private cluster's superuser role)")
            })?;
            let gid = user.map_or_else(|| nix::unistd::Gid::effective().as_raw(), |u| u.gid.as_raw());
            return Ok(ClusterUser { name, uid: me.as_raw(), gid, switch: false });
        }
        let user = User::from_name(configured).map_err(|e| format!("cannot look up OS user `{configured}`: {e}"))?;
        let Some(user) = user else {
            return Err(format!(
                "PostgreSQL refuses to run as root, and OS user `{configured}` (database.embedded_os_user) does not exist: \
                 create it (`useradd --system --create-home {configured}`), set database.embedded_os_user to an existing \
                 unprivileged user, or run `vnext up` as a normal user"
            ));
        };
        if user.uid.is_root() {
            return Err(format!("database.embedded_os_user `{configured}` is root; PostgreSQL refuses to run as root"));
        }
        Ok(ClusterUser { name: user.name, uid: user.uid.as_raw(), gid: user.gid.as_raw(), switch: true })
    }

    /// A command running `program` as this user, with a predictable language
    /// (the server's log is read back) and no `PG*` variables of the caller
    /// steering it elsewhere.
    pub fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(cwd).env("LC_ALL", "C");
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("PG")) {
                command.env_remove(name);
            }
        }
        if self.switch {
            // std drops root's supplementary groups before switching.
            command.uid(self.uid).gid(self.gid);
        }
        command
    }

    /// Creates `dir` (mode 0700) owned by this user, or checks that an existing
    /// one is owned by it.
    ///
    /// # Errors
    /// A message naming the folder and what is wrong with it.
    pub fn own_dir(&self, dir: &Path) -> Result<(), String> {
        match std::fs::symlink_metadata(dir) {
            Ok(meta) => {
                if !meta.is_dir() {
                    return Err(format!("{} is not a folder", dir.display()));
                }
                if meta.uid() != self.uid {
                    return Err(format!(
                        "{} belongs to OS user {} but the private cluster runs as `{}` (uid {}): remove it or run `vnext up --fresh`",
                        dir.display(),
                        meta.uid(),
                        self.name,
                        self.uid
                    ));
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
                self.chown(dir)
            }
            Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
        }
    }

    /// Gives a file or folder this process created to this user.
    ///
    /// # Errors
    /// A message naming the path.
    pub fn chown(&self, path: &Path) -> Result<(), String> {
        if !self.switch {
            return Ok(());
        }
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| format!("cannot give {} to OS user `{}`: {e}", path.display(), self.name))
    }

    /// Checks that this user can reach `dir`: every folder above it must let
    /// the user pass. A project under `/root`, for one, is out of reach of
    /// `postgres`.
    ///
    /// # Errors
    /// A message naming the first folder in the way.
    pub fn check_reachable(&self, dir: &Path) -> Result<(), String> {
        if !self.switch {
            return Ok(());
        }
        for folder in dir.ancestors() {
            let Ok(meta) = std::fs::metadata(folder) else { continue };
            let mode = meta.mode();
            let passes = if meta.uid() == self.uid {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !passes {
                return Err(format!(
                    "the private cluster runs as OS user `{}`, which cannot enter {} (mode {:o}): set runtime.data_dir to a folder \
                     that user can reach, or run `vnext up` as a normal user",
                    self.name,
                    folder.display(),
                    mode & 0o777
                ));
            }
        }
        Ok(())
    }
}
