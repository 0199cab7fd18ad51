//! Where references are resolved: the published versions of each component.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Component, ComponentKind};

/// The component versions a reference may resolve to.
///
/// Validation only asks which versions of `(kind, domain, key)` exist; the
/// reference's selector (`1.2.3`, `latest`, `1`, `1.2`) is matched against them.
/// Implementations are in-memory: a caller backed by a database loads the
/// versions it needs first (see [`PackageCatalog::insert`]).
pub trait Catalog {
    /// Every known version of the component, in any order; empty when unknown.
    fn versions(&self, kind: ComponentKind, domain: &str, key: &str) -> Vec<String>;
}

/// A catalog that knows nothing: every reference is unresolved.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyCatalog;

impl Catalog for EmptyCatalog {
    fn versions(&self, _: ComponentKind, _: &str, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// An in-memory catalog: the components of a package, or versions listed from a store.
#[derive(Debug, Clone, Default)]
pub struct PackageCatalog {
    entries: BTreeMap<(ComponentKind, String, String), BTreeSet<String>>,
}

impl PackageCatalog {
    pub fn new() -> PackageCatalog {
        PackageCatalog::default()
    }

    /// A catalog of the given parsed components.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = &'a Component>,
    ) -> PackageCatalog {
        let mut catalog = PackageCatalog::new();
        for component in components {
            let (key, version, domain) = component.identity();
            catalog.insert(component.kind(), domain, key, version);
        }
        catalog
    }

    /// Records that `version` of `kind`/`domain`/`key` exists.
    pub fn insert(&mut self, kind: ComponentKind, domain: &str, key: &str, version: &str) {
        self.entries
            .entry((kind, domain.to_string(), key.to_string()))
            .or_default()
            .insert(version.to_string());
    }

    /// True when the exact version is recorded.
    pub fn contains(&self, kind: ComponentKind, domain: &str, key: &str, version: &str) -> bool {
        self.entries
            .get(&(kind, domain.to_string(), key.to_string()))
            .is_some_and(|v| v.contains(version))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Catalog for PackageCatalog {
    fn versions(&self, kind: ComponentKind, domain: &str, key: &str) -> Vec<String> {
        self.entries
            .get(&(kind, domain.to_string(), key.to_string()))
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Two catalogs seen as one (e.g. the package being validated, then the store):
/// the versions of both.
#[derive(Clone, Copy)]
pub struct ChainCatalog<'a> {
    pub first: &'a dyn Catalog,
    pub second: &'a dyn Catalog,
}

impl<'a> ChainCatalog<'a> {
    pub fn new(first: &'a dyn Catalog, second: &'a dyn Catalog) -> ChainCatalog<'a> {
        ChainCatalog { first, second }
    }
}

impl Catalog for ChainCatalog<'_> {
    fn versions(&self, kind: ComponentKind, domain: &str, key: &str) -> Vec<String> {
        let mut all = self.first.versions(kind, domain, key);
        for v in self.second.versions(kind, domain, key) {
            if !all.contains(&v) {
                all.push(v);
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_unions_versions_without_duplicates() {
        let mut a = PackageCatalog::new();
        a.insert(ComponentKind::Task, "core", "send", "1.0.0");
        let mut b = PackageCatalog::new();
        b.insert(ComponentKind::Task, "core", "send", "1.0.0");
        b.insert(ComponentKind::Task, "core", "send", "1.1.0");
        let chain = ChainCatalog::new(&a, &b);
        let mut v = chain.versions(ComponentKind::Task, "core", "send");
        v.sort();
        assert_eq!(v, ["1.0.0", "1.1.0"]);
        assert!(
            chain
                .versions(ComponentKind::View, "core", "send")
                .is_empty()
        );
        assert!(
            EmptyCatalog
                .versions(ComponentKind::Task, "core", "send")
                .is_empty()
        );
    }
}
