//! A component folder: loading every component file, and publishing them all.
//!
//! Loading walks the folder recursively and takes every `*.json` file that looks
//! like a component to the validator (an object with `flow` or `attributes`). It
//! skips hidden folders (`.meta`, `.git`, ...), `node_modules`, designer layouts
//! (`*.diagram.json`), `vnext.config.json` and other JSON.
//!
//! Publishing is all-or-nothing up to the first write: every file is parsed and
//! named (domain and workflow names must be database identifiers), the whole
//! folder is validated by [`vnext_core::validate::validate_package`] (references
//! resolve against the folder, then against what the domains already store; two
//! files defining one version are an error), and each component is compared with
//! what the store holds under its version. If any file fails, every failing file
//! is reported with all its diagnostics and nothing is written. Then domains are provisioned and components
//! are published in dependency order (schemas, tasks, views, functions,
//! extensions, workflows), each in its own transaction, so a component is either
//! stored whole or not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use vnext_core::ident::DomainName;
use vnext_core::model::ComponentKind;
use vnext_core::script::ScriptHost;
use vnext_core::validate::{PackageCatalog, looks_like_component, validate_package};

use crate::components::{self, ComponentIdentity, Existing, PublishOutcome};
use crate::db::Databases;
use crate::error::InitError;
use crate::provision;

/// A component file of a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageFile {
    /// The path relative to the folder, with `/` separators (`Workflows/pay.json`).
    pub path: String,
    /// The file's text, exactly as read.
    pub raw: String,
    pub value: Value,
}

/// What [`scan_folder`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FolderScan {
    pub files: Vec<PackageFile>,
    /// JSON files that could not be read or parsed.
    pub problems: Vec<FileFailure>,
    /// JSON files that are not components.
    pub skipped: Vec<String>,
}

/// A file that could not be published, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFailure {
    pub path: String,
    pub reason: String,
}

/// The state of one file during a publish.
#[derive(Debug, Clone, PartialEq)]
pub enum FileStatus {
    Created,
    Unchanged,
    Failed(String),
    /// Valid, but not published because other files failed.
    Held,
}

/// Reported once per component file while a folder is published.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishProgress {
    pub path: String,
    /// `sys-flows/payment@1.0.0` when the envelope names it.
    pub component: Option<String>,
    pub status: FileStatus,
}

/// What publishing a folder did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishReport {
    pub created: Vec<String>,
    pub unchanged: Vec<String>,
    pub failures: Vec<FileFailure>,
    /// Valid files not published because other files failed validation.
    pub held: Vec<String>,
    pub skipped: Vec<String>,
    /// Domains the folder's components belong to.
    pub domains: Vec<String>,
}

impl PublishReport {
    pub(crate) fn failure_lines(&self) -> String {
        self.failures.iter().map(|f| format!("  {}: {}", f.path, f.reason)).collect::<Vec<_>>().join("\n")
    }
}

/// Reads every component file of `dir`, reporting unreadable or malformed JSON
/// per file instead of stopping at the first.
///
/// # Errors
/// [`InitError::Io`] when the folder itself cannot be read.
pub fn scan_folder(dir: &Path) -> Result<FolderScan, InitError> {
    let mut paths = Vec::new();
    walk(dir, dir, &mut paths)?;
    paths.sort();
    let mut scan = FolderScan::default();
    for rel in paths {
        let full = dir.join(&rel);
        let raw = match std::fs::read_to_string(&full) {
            Ok(raw) => raw,
            Err(e) => {
                scan.problems.push(FileFailure { path: rel, reason: format!("cannot read: {e}") });
                continue;
            }
        };
        match serde_json::from_str::<Value>(&raw) {
            Ok(value) if looks_like_component(&value) => scan.files.push(PackageFile { path: rel, raw, value }),
            Ok(_) => scan.skipped.push(rel),
            Err(e) => scan.problems.push(FileFailure { path: rel, reason: format!("not valid JSON: {e}") }),
        }
    }
    Ok(scan)
}

/// Every component file of `dir`.
///
/// # Errors
/// [`InitError::Io`] when the folder cannot be read; [`InitError::Package`]
/// listing every file that is not valid JSON.
pub fn load_folder(dir: &Path) -> Result<Vec<PackageFile>, InitError> {
    let scan = scan_folder(dir)?;
    if scan.problems.is_empty() {
        Ok(scan.files)
    } else {
        Err(InitError::Package(Box::new(PublishReport { failures: scan.problems, skipped: scan.skipped, ..Default::default() })))
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), InitError> {
    let io = |source| InitError::Io { path: dir.display().to_string(), source };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if !name.starts_with('.') && name != "node_modules" {
                walk(root, &path, out)?;
            }
        } else if name.ends_with(".json") && !name.ends_with(".diagram.json") && name != "vnext.config.json" {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"));
        }
    }
    Ok(())
}

/// Publishes every component of `dir`, calling `progress` once per file.
///
/// # Errors
/// [`InitError::Package`] listing every failing file with its reason (the
/// report inside says what was published); [`InitError::Io`] when the folder
/// cannot be read; database errors that stop everything.
pub async fn publish_folder(
    dbs: &Databases,
    dir: &Path,
    progress: impl FnMut(&PublishProgress),
) -> Result<PublishReport, InitError> {
    let scan = scan_folder(dir)?;
    publish_scan(dbs, scan, progress).await
}

struct Entry {
    file: PackageFile,
    id: ComponentIdentity,
}

fn label(id: &ComponentIdentity) -> String {
    format!("{}/{}@{}", id.kind, id.key, id.version)
}

/// Publishes what [`scan_folder`] found.
///
/// # Errors
/// As [`publish_folder`].
pub async fn publish_scan(
    dbs: &Databases,
    scan: FolderScan,
    mut progress: impl FnMut(&PublishProgress),
) -> Result<PublishReport, InitError> {
    let mut report = PublishReport { skipped: scan.skipped, failures: scan.problems, ..Default::default() };

    // 1. Identity of every file (domain and workflow names checked before any SQL).
    let mut identities = Vec::with_capacity(scan.files.len());
    for file in &scan.files {
        identities.push(ComponentIdentity::of(&file.value));
    }
    let domains: BTreeSet<DomainName> = identities.iter().filter_map(|id| id.as_ref().ok()).map(|id| id.domain.clone()).collect();
    report.domains = domains.iter().map(ToString::to_string).collect();

    // 2. Validation of the whole folder, against itself and what registered
    //    domains already hold; then one failure per file.
    let mut published = PackageCatalog::new();
    let mut pools = BTreeMap::new();
    for domain in &domains {
        // A domain not provisioned yet has nothing stored.
        let Some(pool) = registered_pool(dbs, domain).await? else { continue };
        for (kind, domain, key, version) in components::inventory(&pool).await? {
            published.insert(kind, &domain, &key, &version);
        }
        pools.insert(domain.clone(), pool);
    }
    let mut problems = validate_files(&scan.files, &published);
    let mut entries = Vec::new();
    for (file, id) in scan.files.into_iter().zip(identities) {
        let diagnostics = problems.remove(&file.path);
        match (id, diagnostics) {
            (Ok(id), None) => entries.push(Entry { file, id }),
            (_, Some(reason)) => report.failures.push(FileFailure { path: file.path, reason }),
            (Err(e), None) => report.failures.push(FileFailure { path: file.path, reason: e.to_string() }),
        }
    }

    // 3. Versions already stored with other content.
    for entry in &entries {
        let Some(pool) = pools.get(&entry.id.domain) else { continue };
        if components::compare(pool, &entry.file.raw).await? == Existing::Different {
            let conflict = InitError::Conflict { kind: entry.id.kind, key: entry.id.key.clone(), version: entry.id.version.clone() };
            report.failures.push(FileFailure { path: entry.file.path.clone(), reason: conflict.to_string() });
        }
    }

    if !report.failures.is_empty() {
        return Err(hold_all(report, &entries, &mut progress));
    }

    // 4. Write: provision the domains, then publish in dependency order.
    for domain in &domains {
        provision::provision_domain(dbs, domain).await?;
        pools.insert(domain.clone(), dbs.domain(domain).await?);
    }
    entries.sort_by(|a, b| {
        let rank = |k: ComponentKind| ComponentKind::PUBLISH_ORDER.iter().position(|x| *x == k);
        (rank(a.id.kind), &a.file.path).cmp(&(rank(b.id.kind), &b.file.path))
    });
    for entry in entries {
        let pool = &pools[&entry.id.domain];
        let status = match components::publish(pool, &entry.file.raw).await {
            Ok(PublishOutcome::Created) => {
                report.created.push(entry.file.path.clone());
                FileStatus::Created
            }
            Ok(PublishOutcome::Unchanged) => {
                report.unchanged.push(entry.file.path.clone());
                FileStatus::Unchanged
            }
            Err(e) => {
                report.failures.push(FileFailure { path: entry.file.path.clone(), reason: e.to_string() });
                FileStatus::Failed(e.to_string())
            }
        };
        progress(&PublishProgress { path: entry.file.path, component: Some(label(&entry.id)), status });
    }
    if report.failures.is_empty() { Ok(report) } else { Err(InitError::Package(Box::new(report))) }
}

/// The pool of a provisioned domain; `None` when the domain is not registered.
async fn registered_pool(dbs: &Databases, domain: &DomainName) -> Result<Option<sqlx::PgPool>, InitError> {
    match dbs.domain(domain).await {
        Ok(pool) => Ok(Some(pool)),
        Err(crate::db::DbError::UnknownDomain(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reports every failure and holds back every valid file.
fn hold_all(mut report: PublishReport, entries: &[Entry], progress: &mut impl FnMut(&PublishProgress)) -> InitError {
    report.failures.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &report.failures {
        progress(&PublishProgress { path: f.path.clone(), component: None, status: FileStatus::Failed(f.reason.clone()) });
    }
    for e in entries.iter().filter(|e| !report.failures.iter().any(|f| f.path == e.file.path)) {
        report.held.push(e.file.path.clone());
        progress(&PublishProgress { path: e.file.path.clone(), component: Some(label(&e.id)), status: FileStatus::Held });
    }
    InitError::Package(Box::new(report))
}

/// The one validation call of a folder publish: every rule of
/// [`vnext_core::validate`] over the whole folder (references resolve against
/// the folder, then against `published`; two files defining the same version
/// are reported). Returns each failing file's diagnostics, joined.
fn validate_files(files: &[PackageFile], published: &PackageCatalog) -> BTreeMap<String, String> {
    let documents: Vec<(String, Value)> = files.iter().map(|f| (f.path.clone(), f.value.clone())).collect();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for d in validate_package(&documents, Some(published), &ScriptHost::new()) {
        let Some(file) = d.file.clone() else { continue };
        let pointer = if d.pointer.is_empty() { "(document)" } else { d.pointer.as_str() };
        let line = format!("{pointer}: {} [{}]", d.message, d.code);
        out.entry(file).and_modify(|r| *r = format!("{r}; {line}")).or_insert(line);
    }
    out
}
