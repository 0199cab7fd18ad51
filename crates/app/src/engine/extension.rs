//! Instance extensions (`sys-extensions`): a task whose answer is added to an
//! instance read under `extensions.<key>`.
//!
//! Which run (`type`): 1 Global on every read of every workflow of the domain;
//! 2 GlobalAndRequested on any workflow when `?extensions=` names it; 3
//! DefinedFlows on the workflows that reference it; 4 DefinedFlowAndRequested on
//! those when named. Where (`scope`): 1 the single instance read, 2 list items,
//! 3 both. An extension runs like a one-task function (its mapping's `input`
//! and `output`; without an `output` its slot is the task's response body). A
//! failing extension fills its slot with `{error: {code, message}}`: the read
//! itself never fails because of one.

use serde_json::{Map, Value, json};
use vnext_core::ident::DomainName;
use vnext_core::model::{Component, ComponentKind, Extension, Function, Reference};
use vnext_core::version::VersionSelector;
use vnext_init::components;

use super::{Engine, EngineError, FunctionCall, FunctionError, InstanceSnapshot};

/// Where an instance is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    Single,
    List,
}

/// The key a reference names (a file reference by its file stem).
fn reference_key(r: &Reference) -> String {
    match r {
        Reference::Explicit(e) => e.key.clone().or_else(|| e.id.clone()).unwrap_or_default(),
        Reference::File { path } => path.rsplit('/').next().unwrap_or(path).trim_end_matches(".json").to_string(),
    }
}

impl Engine {
    /// The extensions a read runs, by key: see the module docs.
    /// `referenced` are the workflow's `extensions`, `requested` the `?extensions=` names.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when the domain cannot be read.
    pub async fn extensions_for(
        &self,
        domain: &DomainName,
        referenced: &[Reference],
        requested: &[String],
        read: ReadKind,
    ) -> Result<Vec<(String, Extension)>, EngineError> {
        let pool = self.pool(domain).await?;
        // One cheap query on every read; a domain without extensions stops here.
        let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key FROM sys_extensions.components ORDER BY key")
            .fetch_all(&pool)
            .await?;
        let referenced: Vec<String> = referenced.iter().map(reference_key).collect();
        let mut out = Vec::new();
        for key in keys {
            let Some(c) = components::fetch(&pool, ComponentKind::Extension, &key, &VersionSelector::Latest)
                .await
                .map_err(|e| EngineError::from_init("loading an extension", e))?
            else {
                continue;
            };
            let Ok(Component::Extension(ext)) = Component::from_json(&c.content) else { continue };
            let ext = ext.attributes;
            let wanted = requested.contains(&key);
            let defined = referenced.contains(&key);
            let runs = match ext.extension_type {
                1 => true,
                2 => wanted,
                3 => defined,
                4 => defined && wanted,
                _ => false,
            };
            let here = matches!((ext.scope, read), (3, _) | (1, ReadKind::Single) | (2, ReadKind::List));
            if runs && here {
                out.push((key, ext));
            }
        }
        Ok(out)
    }

    /// Runs `extensions` for one instance; each slot holds the answer or `{error}`.
    pub async fn run_extensions(&self, domain: &DomainName, extensions: &[(String, Extension)], instance: &InstanceSnapshot) -> Map<String, Value> {
        let mut slots = Map::new();
        for (key, ext) in extensions {
            let function = Function {
                scope: "I".into(),
                task: None,
                on_execution_tasks: vec![ext.task.clone()],
                output: None,
                labels: Vec::new(),
                verbs: None,
                input_schema: None,
                output_schema: None,
                roles: None,
                raw_response: false,
                cache: None,
            };
            let call = FunctionCall {
                domain: domain.clone(),
                key: key.clone(),
                function,
                instance: Some(instance.clone()),
                verb: "GET".into(),
                body: json!({}),
                headers: Map::new(),
                query: Map::new(),
            };
            let slot = match self.call_function(call).await {
                Ok(mut answer) => answer["data"].take(),
                Err(FunctionError::TaskFailed { error, .. }) => json!({ "error": { "code": error.code, "message": error.message } }),
                Err(FunctionError::Engine(e)) => json!({ "error": { "code": e.kind(), "message": e.to_string() } }),
                Err(FunctionError::InvalidInput(_) | FunctionError::InvalidOutput(_)) => {
                    json!({ "error": { "code": "extension.invalid", "message": "the extension's answer is not valid" } })
                }
            };
            if let Some(error) = slot.get("error").filter(|_| slot.as_object().is_some_and(|o| o.len() == 1)) {
                tracing::warn!(domain = %domain, extension = %key, error = %error, "extension failed; reported in its slot");
            }
            slots.insert(key.clone(), slot);
        }
        slots
    }
}
