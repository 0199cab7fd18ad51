//! Component validation: every rule a component must satisfy, all reported at
//! once, each finding with a JSON pointer, a stable code and a message a person
//! can act on.
//!
//! # Entry points
//! - [`validate_component`]: one component document against a [`Catalog`] of
//!   known components (the store, or a package).
//! - [`validate_package`]: a folder of documents; references resolve against the
//!   package itself (explicit references and short `{"ref": "Tasks/x.json"}` file
//!   references) and then against an optional extra catalog (the store).
//! - [`check_component`]: the cheap path for one component in a request: validate
//!   and, when clean, hand back the parsed [`Component`] so it is parsed once.
//! - [`parse_component`]: the typed model only (envelope shape and attributes),
//!   no rules.
//!
//! # Catalogs
//! [`Catalog`] answers "which versions of `(kind, domain, key)` exist".
//! [`PackageCatalog`] is the in-memory implementation (build it from parsed
//! components or by inserting versions listed from a store); [`ChainCatalog`]
//! puts two together; [`EmptyCatalog`] knows nothing.
//!
//! # Rules
//! Envelope (`envelope.*`): key and domain match `^[a-z0-9-]+$`; `version` and
//! `flowVersion` match `^\d+\.\d+\.\d+(-[a-zA-Z]+\.\d+)?$`; `flow` is a known
//! component flow; `tags` has at least one tag. Typed model (`component.parse`):
//! the document fits the serde model; the pointer names the offending value.
//!
//! Workflows (`workflow.*`, `timer.*`, `error-boundary.*`): unique state keys;
//! unique transition keys within a state and among shared transitions; targets
//! exist (or `$self`), `updateData` targets `$self`; at most one initial state;
//! the start transition is manual and leads to a defined state; every automatic
//! transition has a rule except the default (`triggerKind: 10`), at most one
//! default per state; every scheduled transition has a timer, and a declarative
//! timer has exactly one of `duration` (ISO-8601), `cron`, `at` (RFC 3339), and an
//! IANA `timezone` only with `cron` (read by [`crate::schedule`], so what validates
//! is what the scheduler runs), a cron that fires within [`CRON_HORIZON_YEARS`]
//! years from now and durations (timers, the workflow timeout) of at most
//! [`MAX_DURATION_YEARS`] years; final states have no transitions; shared
//! transitions are manual, scheduled or event and `availableIn` names existing
//! states; subflow states name their child; retry policies read as
//! [`crate::retry::RetryPolicy::from_spec`] reads them.
//!
//! References (`reference.*`): task, schema, view, function, extension, subflow
//! process and master schema references name a component of the right flow and
//! resolve with an exact version, `latest`, a major or a major.minor selector.
//!
//! Scripts (`script.*`): every script decodes (B64/NAT), is rhai (a `.csx`
//! location or C# source is an error naming component, pointer and file),
//! compiles, and defines its hook: `fn handler(ctx)` for rules, timer scripts,
//! transition mappings and view rules; `fn input(ctx)` and/or `fn output(ctx)` for
//! task entry and subflow mappings.
//!
//! Tasks (`task.*`): the type is one the runtime runs; HTTP tasks have `url` and
//! `method`; instance tasks have `domain` and `flow` (DirectTrigger also
//! `transitionName`). Schemas (`schema.compile`): the JSON Schema compiles.
//!
//! Unknown fields (`component.unknown-field`, [`unknown_fields`]): members the
//! typed model does not know, reported apart as warnings (publishing answers
//! them in `warnings`; strict publishing and `vnext validate --strict` refuse them).
//!
//! The full list of codes is in [`codes`].

mod catalog;
mod checker;
pub mod codes;
mod diagnostic;
mod entries;
mod envelope;
mod others;
mod package;
mod parse;
mod references;
mod schema;
mod scripts;
mod task;
mod timer;
mod unknown;
mod workflow;

use serde_json::Value;

pub use catalog::{Catalog, ChainCatalog, EmptyCatalog, PackageCatalog};
pub use timer::{CRON_HORIZON_YEARS, MAX_DURATION_YEARS};
pub use unknown::unknown_fields;
pub use diagnostic::Diagnostic;
pub use schema::{SchemaCompileError, compile_schema};

use crate::model::Component;
use crate::script::ScriptHost;
use checker::Checker;
use diagnostic::Sink;

/// Validates one component document. Short `{"ref": ...}` file references cannot
/// resolve here (there is no package) and are reported.
///
/// Returns every problem found (never only the first); empty when valid.
pub fn validate_component(
    value: &Value,
    catalog: &dyn Catalog,
    scripts: &ScriptHost,
) -> Vec<Diagnostic> {
    Checker::new(catalog, scripts, None, None).run(value).1
}

/// Validates a package: `files` are `(path, document)` pairs; references resolve
/// against the package's own components and files, then against `extra`.
/// Each diagnostic carries its file's path. Two files defining the same
/// component version are reported too.
pub fn validate_package(
    files: &[(String, Value)],
    extra: Option<&dyn Catalog>,
    scripts: &ScriptHost,
) -> Vec<Diagnostic> {
    package::validate(files, extra, scripts)
}

/// Validates one component and returns it parsed when it has no problem.
///
/// # Errors
/// Every diagnostic [`validate_component`] reports.
pub fn check_component(
    value: &Value,
    catalog: &dyn Catalog,
    scripts: &ScriptHost,
) -> Result<Component, Vec<Diagnostic>> {
    match Checker::new(catalog, scripts, None, None).run(value) {
        (Some(component), diagnostics) if diagnostics.is_empty() => Ok(component),
        (_, diagnostics) => Err(diagnostics),
    }
}

/// Parses a document into the typed model without applying any rule.
///
/// # Errors
/// Diagnostics for a malformed envelope (missing or mistyped fields, unknown
/// flow) or attributes that do not fit the model, with pointers.
pub fn parse_component(value: &Value) -> Result<Component, Vec<Diagnostic>> {
    let mut sink = Sink::new(None);
    sink.component = envelope::label(value);
    let parsed = envelope::read(value, &mut sink)
        .and_then(|parts| parse::component(value, &parts, &mut sink));
    match parsed {
        Some(component) if sink.out.is_empty() => Ok(component),
        _ => Err(sink.out),
    }
}

/// True when a JSON document looks like a component (an object with `flow` or
/// `attributes`, so a component missing one of them is still validated and
/// reported); tools use it to skip other JSON files such as `vnext.config.json`.
pub fn looks_like_component(value: &Value) -> bool {
    value.get("flow").is_some() || value.get("attributes").is_some()
}
