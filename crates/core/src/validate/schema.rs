//! `sys-schemas` components: the JSON Schema must compile (draft 2020-12 unless
//! its `$schema` names another draft). References to remote documents are not
//! fetched, so a schema must be self-contained.

use super::checker::Checker;
use super::codes;
use super::diagnostic::Ptr;
use crate::model::{Envelope, SchemaComponent};

pub(crate) fn check(c: &mut Checker<'_>, schema: &Envelope<SchemaComponent>) {
    let at = Ptr::root().key("attributes").key("schema");
    if let Err(e) = compile_schema(&schema.attributes.schema) {
        c.report(&at.join(&e.pointer), codes::SCHEMA_COMPILE, e.message);
    }
}

/// Why a JSON Schema does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaCompileError {
    /// JSON pointer inside the schema document (`""` for the schema itself).
    pub pointer: String,
    pub message: String,
}

/// Compiles a JSON Schema with the options the runtime uses for payloads:
/// draft 2020-12 unless `$schema` says otherwise, no remote fetching.
///
/// # Errors
/// [`SchemaCompileError`] naming the place inside the schema and the problem.
pub fn compile_schema(
    schema: &serde_json::Value,
) -> Result<jsonschema::Validator, SchemaCompileError> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(SchemaCompileError {
            pointer: String::new(),
            message: "the JSON Schema must be an object (or a boolean schema)".to_string(),
        });
    }
    jsonschema::options()
        .build(schema)
        .map_err(|e| SchemaCompileError {
            pointer: e.instance_path().as_str().to_string(),
            message: format!("the JSON Schema does not compile: {e}"),
        })
}
