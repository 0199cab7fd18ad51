//! Loading a component folder and publishing it (in progress).

use std::path::PathBuf;

/// What publishing a folder did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishReport {
    pub failures: Vec<FileFailure>,
}

/// A file that could not be published, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFailure {
    pub path: PathBuf,
    pub reason: String,
}

impl PublishReport {
    pub(crate) fn failure_lines(&self) -> String {
        self.failures.iter().map(|f| format!("  {}: {}", f.path.display(), f.reason)).collect::<Vec<_>>().join("\n")
    }
}
