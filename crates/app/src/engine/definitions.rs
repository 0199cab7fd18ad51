//! Compiled definitions per domain: workflows with their scripts and JSON
//! Schemas, and tasks, cached by (kind, key, version).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use vnext_core::ident::DomainName;

/// Cache of compiled components, per domain. Cheap to clone.
#[derive(Clone, Default)]
pub struct DefinitionCache {
    domains: Arc<RwLock<HashMap<String, ()>>>,
}

impl DefinitionCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops everything cached for a domain.
    pub fn invalidate(&self, domain: &DomainName) {
        self.domains.write().expect("definition cache").remove(domain.ident());
    }
}
