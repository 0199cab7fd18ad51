//! A folder of components validated together: references resolve against the
//! package itself (by component and by file path) before any outside catalog.

use std::collections::BTreeMap;

use serde_json::Value;

use super::catalog::{Catalog, ChainCatalog, EmptyCatalog, PackageCatalog};
use super::checker::Checker;
use super::codes;
use super::diagnostic::{Diagnostic, Ptr};
use super::envelope;
use crate::model::ComponentKind;
use crate::script::ScriptHost;

/// What a package file holds, as far as references need to know.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    /// The file's path as given.
    pub(crate) path: String,
    pub(crate) kind: Option<ComponentKind>,
    pub(crate) label: Option<String>,
}

/// The package's files by normalised path (`/`-separated, no `.` or `..`).
#[derive(Debug, Default)]
pub(crate) struct FileIndex {
    files: BTreeMap<String, FileEntry>,
}

impl FileIndex {
    fn insert(&mut self, path: &str, value: &Value) {
        let kind = value
            .get("flow")
            .and_then(Value::as_str)
            .and_then(ComponentKind::from_flow);
        let entry = FileEntry {
            path: path.to_string(),
            kind,
            label: envelope::label(value),
        };
        self.files.insert(normalize(path), entry);
    }

    /// Resolves `reference` as written in `from` (a package file): relative to
    /// `from`'s folder and each folder above it (vNext writes paths from the
    /// package root, e.g. `Tasks/send.json`), then as a unique path suffix.
    pub(crate) fn resolve(&self, from: Option<&str>, reference: &str) -> Option<&FileEntry> {
        let wanted = normalize(reference);
        if wanted.is_empty() {
            return None;
        }
        let mut dir: Vec<&str> = from.map(|f| split(f)).unwrap_or_default();
        dir.pop();
        loop {
            let candidate = normalize(&format!("{}/{wanted}", dir.join("/")));
            if let Some(entry) = self.files.get(&candidate) {
                return Some(entry);
            }
            if dir.pop().is_none() {
                break;
            }
        }
        let suffix = format!("/{wanted}");
        let mut matches = self
            .files
            .iter()
            .filter(|(path, _)| path.ends_with(&suffix));
        match (matches.next(), matches.next()) {
            (Some((_, entry)), None) => Some(entry),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }
}

fn split(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != ".")
        .collect()
}

fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in split(path) {
        if segment == ".." {
            out.pop();
        } else {
            out.push(segment);
        }
    }
    out.join("/")
}

/// See [`super::validate_package`].
pub(crate) fn validate(
    files: &[(String, Value)],
    extra: Option<&dyn Catalog>,
    scripts: &ScriptHost,
) -> Vec<Diagnostic> {
    let mut index = FileIndex::default();
    let mut catalog = PackageCatalog::new();
    let mut out = Vec::new();
    let mut first_definition: BTreeMap<(ComponentKind, String, String, String), &str> =
        BTreeMap::new();
    for (path, value) in files {
        index.insert(path, value);
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let Some(kind) = value
            .get("flow")
            .and_then(Value::as_str)
            .and_then(ComponentKind::from_flow)
        else {
            continue;
        };
        let (key, version, domain) = (field("key"), field("version"), field("domain"));
        if key.is_empty() || version.is_empty() {
            continue;
        }
        catalog.insert(kind, &domain, &key, &version);
        let identity = (kind, domain.clone(), key.clone(), version.clone());
        if let Some(first) = first_definition.get(&identity) {
            out.push(Diagnostic {
                file: Some(path.clone()),
                component: envelope::label(value),
                pointer: Ptr::root().key("version").as_str().to_string(),
                code: codes::PACKAGE_DUPLICATE_COMPONENT,
                message: format!("{kind}/{key}@{version} of domain `{domain}` is already defined in {first}; give one of them another key or version"),
            });
        } else {
            first_definition.insert(identity, path);
        }
    }
    let empty = EmptyCatalog;
    let chain = ChainCatalog::new(&catalog, extra.unwrap_or(&empty));
    for (path, value) in files {
        let (_, diagnostics) = Checker::new(&chain, scripts, Some(&index), Some(path)).run(value);
        out.extend(diagnostics);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_from_the_package_root_and_by_suffix() {
        let mut index = FileIndex::default();
        index.insert(
            "pkg/core/Tasks/send.json",
            &json!({"flow": "sys-tasks", "key": "send", "version": "1.0.0"}),
        );
        let from = Some("pkg/core/Workflows/pay.json");
        assert_eq!(
            index.resolve(from, "Tasks/send.json").unwrap().kind,
            Some(ComponentKind::Task)
        );
        assert!(index.resolve(from, "./Tasks/../Tasks/send.json").is_some());
        assert!(
            index.resolve(None, "Tasks/send.json").is_some(),
            "unique suffix"
        );
        assert!(index.resolve(from, "Tasks/other.json").is_none());
        assert!(index.resolve(from, "").is_none());
    }
}
