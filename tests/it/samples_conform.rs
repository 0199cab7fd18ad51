//! The sample package in `flows/` is what `vnext up` and `vnext init` publish and
//! what the end-to-end tests drive, so it has to be valid vNext in every sense:
//!
//! - every component file conforms to the published vNext JSON Schema of its kind
//!   (read from the reference folder, see [`reference_dir`]), and every failure is
//!   reported with the file and the JSON pointer;
//! - it parses into the typed model, and every reference resolves inside the package;
//! - every embedded script equals its `src/*.rhai` file (refresh them with
//!   `python3 flows/embed.py`), compiles, and defines the function its position
//!   requires: `handler` for transition mappings, rules and timers, `input` and/or
//!   `output` for task mappings;
//! - every script does what `docs/samples.md` says, run here with sample contexts;
//! - the example payloads of `docs/samples.md` pass the start schemas, broken ones fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vnext_core::model::{Component, ScriptCode, Timer, Transition, Workflow};
use vnext_core::script::{ScriptHost, decode_source};

// ---------------------------------------------------------------------------
// The package on disk

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn flows_dir() -> PathBuf {
    workspace_root().join("flows")
}

/// A component file: where it is and what it says.
struct PackageFile {
    path: PathBuf,
    json: Value,
}

impl PackageFile {
    fn name(&self) -> String {
        self.path.strip_prefix(workspace_root()).unwrap_or(&self.path).display().to_string()
    }

    fn str_field(&self, field: &str) -> &str {
        self.json.get(field).and_then(Value::as_str).unwrap_or_default()
    }
}

/// Files below `dir` with the given extension, sorted; `.meta` folders (designer
/// layout files in vNext packages) are skipped as publishers skip them.
fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != ".meta") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn package() -> Vec<PackageFile> {
    let files: Vec<PackageFile> = files_with_extension(&flows_dir(), "json")
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            PackageFile { path, json }
        })
        .collect();
    assert!(files.len() >= 10, "expected the sample package under {}, found {} files", flows_dir().display(), files.len());
    files
}

/// Calls `visit(pointer, object)` for every JSON object below `value`.
fn each_object<'a>(value: &'a Value, pointer: &str, visit: &mut dyn FnMut(&str, &'a serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            visit(pointer, map);
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                each_object(child, &format!("{pointer}/{escaped}"), visit);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                each_object(child, &format!("{pointer}/{i}"), visit);
            }
        }
        _ => {}
    }
}

/// Script envelopes in a file: objects that carry a `location` and a `code`.
fn script_codes(file: &PackageFile) -> Vec<(String, ScriptCode)> {
    let mut found = Vec::new();
    each_object(&file.json, "", &mut |pointer, map| {
        if map.contains_key("location") || (map.contains_key("code") && map.contains_key("encoding")) {
            let code: ScriptCode = serde_json::from_value(Value::Object(map.clone()))
                .unwrap_or_else(|e| panic!("{} {pointer}: not a scriptCode: {e}", file.name()));
            found.push((pointer.to_string(), code));
        }
    });
    found
}

// ---------------------------------------------------------------------------
// (a) conformance to the vNext JSON Schemas

/// Where the vNext reference material is: `VNEXT_REFERENCE_DIR`, by default
/// `<workspace root>/../shared/reference/vnext`. `None` (with a notice) when it is
/// absent, unless `VNEXT_REQUIRE_REFERENCE=1`, which turns absence into a failure.
fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("VNEXT_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/reference/vnext"));
    if dir.join("schemas").is_dir() {
        return Some(dir);
    }
    let required = std::env::var("VNEXT_REQUIRE_REFERENCE").is_ok_and(|v| v == "1");
    assert!(!required, "VNEXT_REQUIRE_REFERENCE=1 but {} has no schemas/ folder; set VNEXT_REFERENCE_DIR", dir.display());
    eprintln!(
        "NOTICE: vNext reference schemas not found at {}; skipping the JSON Schema conformance check \
         (set VNEXT_REFERENCE_DIR to the folder holding schemas/, or VNEXT_REQUIRE_REFERENCE=1 to make this fatal)",
        dir.display()
    );
    None
}

/// The vNext JSON Schema file that governs a component flow.
fn schema_file_for(flow: &str) -> Option<&'static str> {
    Some(match flow {
        "sys-flows" => "workflow-definition.schema.json",
        "sys-tasks" => "task-definition.schema.json",
        "sys-schemas" => "schema-definition.schema.json",
        "sys-views" => "view-definition.schema.json",
        "sys-functions" => "function-definition.schema.json",
        "sys-extensions" => "extension-definition.schema.json",
        _ => return None,
    })
}

#[test]
fn every_component_conforms_to_the_vnext_json_schemas() {
    let Some(reference) = reference_dir() else { return };
    let mut validators = BTreeMap::new();
    let mut failures = Vec::new();
    let files = package();
    for file in &files {
        let flow = file.str_field("flow");
        let Some(schema_name) = schema_file_for(flow) else {
            failures.push(format!("{}: unknown component flow `{flow}`", file.name()));
            continue;
        };
        let validator = validators.entry(schema_name).or_insert_with(|| {
            let path = reference.join("schemas").join(schema_name);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
        });
        for error in validator.iter_errors(&file.json) {
            failures.push(format!(
                "{}: at `{}`: {} (schema {}: {})",
                file.name(),
                error.instance_path(),
                error,
                schema_name,
                error.schema_path()
            ));
        }
    }
    assert!(failures.is_empty(), "{} schema violations:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{} component files conform to the vNext JSON Schemas", files.len());
}

#[test]
fn envelopes_belong_to_the_demo_domain_and_carry_tags() {
    let mut failures = Vec::new();
    let mut identities = BTreeSet::new();
    for file in package() {
        let (flow, key, version) = (file.str_field("flow"), file.str_field("key"), file.str_field("version"));
        if file.str_field("domain") != "demo" {
            failures.push(format!("{}: domain is `{}`, expected `demo`", file.name(), file.str_field("domain")));
        }
        if file.json["tags"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!("{}: needs at least one tag", file.name()));
        }
        let stem = file.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if stem != key {
            failures.push(format!("{}: file name should be the key `{key}`", file.name()));
        }
        if !identities.insert((flow.to_string(), key.to_string(), version.to_string())) {
            failures.push(format!("{}: {flow}/{key}@{version} is defined twice", file.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Typed model and references

fn workflows() -> Vec<(String, Workflow)> {
    package()
        .into_iter()
        .filter(|f| f.str_field("flow") == "sys-flows")
        .map(|f| match Component::from_json(&f.json) {
            Ok(Component::Workflow(envelope)) => (f.name(), envelope.attributes),
            Ok(other) => panic!("{}: parsed as {:?}", f.name(), other.kind()),
            Err(e) => panic!("{}: {e}", f.name()),
        })
        .collect()
}

#[test]
fn every_component_parses_into_the_typed_model() {
    let mut failures = Vec::new();
    for file in package() {
        if let Err(e) = Component::from_json(&file.json) {
            failures.push(format!("{}: {e}", file.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let keys: BTreeSet<String> = workflows().into_iter().map(|(name, _)| name).collect();
    assert_eq!(keys.len(), 3, "three sample workflows expected: {keys:?}");
}

#[test]
fn every_reference_resolves_inside_the_package() {
    let files = package();
    let defined: BTreeSet<(String, String, String)> = files
        .iter()
        .map(|f| (f.str_field("flow").into(), f.str_field("key").into(), f.str_field("version").into()))
        .collect();
    let mut failures = Vec::new();
    let mut resolved = 0;
    for file in &files {
        let attributes = &file.json["attributes"];
        each_object(attributes, "/attributes", &mut |pointer, map| {
            let Some(flow) = map.get("flow").and_then(Value::as_str) else { return };
            if !flow.starts_with("sys-") {
                return;
            }
            let field = |name: &str| map.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
            if field("domain") != "demo" {
                failures.push(format!("{} {pointer}: reference leaves the demo domain", file.name()));
            }
            if !defined.contains(&(flow.to_string(), field("key"), field("version"))) {
                failures.push(format!("{} {pointer}: {flow}/{}@{} is not in the package", file.name(), field("key"), field("version")));
            }
            resolved += 1;
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(resolved >= 20, "only {resolved} references found; the walk is broken");
}

// ---------------------------------------------------------------------------
// (c) the runtime's own validator (what `vnext validate flows` and publishing run)

#[test]
fn the_package_passes_the_runtime_validator() {
    let files: Vec<(String, Value)> = package().into_iter().map(|f| (f.name(), f.json)).collect();
    let diagnostics = vnext_core::validate::validate_package(&files, None, &ScriptHost::new());
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert!(lines.is_empty(), "{} diagnostics:\n{}", lines.len(), lines.join("\n"));
}

// ---------------------------------------------------------------------------
// (b) embedded scripts

#[test]
fn embedded_scripts_equal_their_source_files() {
    let mut failures = Vec::new();
    let mut referenced = BTreeSet::new();
    for file in package() {
        for (pointer, code) in script_codes(&file) {
            let Some(location) = code.location.clone() else {
                failures.push(format!("{} {pointer}: script without a `location`", file.name()));
                continue;
            };
            if !location.starts_with("./src/") || !location.ends_with(".rhai") {
                failures.push(format!("{} {pointer}: location `{location}` should be ./src/<name>.rhai", file.name()));
                continue;
            }
            let source_path = file.path.parent().expect("file has a folder").join(&location);
            let Ok(source) = std::fs::read_to_string(&source_path) else {
                failures.push(format!("{} {pointer}: {location} does not exist next to the file", file.name()));
                continue;
            };
            referenced.insert(source_path.canonicalize().expect("existing file"));
            match decode_source(&code) {
                Ok(embedded) if embedded == source => {}
                Ok(_) => failures.push(format!(
                    "{} {pointer}: embedded code differs from {location}; run `python3 flows/embed.py`",
                    file.name()
                )),
                Err(e) => failures.push(format!("{} {pointer}: {e}", file.name())),
            }
        }
    }
    for script in files_with_extension(&flows_dir(), "rhai") {
        if !referenced.contains(&script.canonicalize().expect("existing file")) {
            failures.push(format!("{}: no component uses this script", script.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(referenced.len() >= 20, "only {} scripts referenced", referenced.len());
}

/// Where a script sits decides the function it must define.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hook {
    TransitionMapping,
    Rule,
    Timer,
    TaskMapping,
}

fn hooks_of(workflow: &Workflow) -> Vec<(String, Hook, ScriptCode)> {
    let mut hooks = Vec::new();
    let transition = |at: String, t: &Transition, hooks: &mut Vec<(String, Hook, ScriptCode)>| {
        if let Some(m) = &t.mapping {
            hooks.push((format!("{at} mapping"), Hook::TransitionMapping, m.clone()));
        }
        if let Some(r) = &t.rule {
            hooks.push((format!("{at} rule"), Hook::Rule, r.clone()));
        }
        if let Some(Timer::Script(s)) = &t.timer {
            hooks.push((format!("{at} timer"), Hook::Timer, s.clone()));
        }
        for task in &t.on_execution_tasks {
            if let Some(m) = &task.mapping {
                hooks.push((format!("{at} task {}", task.order), Hook::TaskMapping, m.clone()));
            }
        }
    };
    transition("start".into(), &workflow.start_transition, &mut hooks);
    for t in &workflow.shared_transitions {
        transition(format!("shared {}", t.key), t, &mut hooks);
    }
    for (kind, t) in [("cancel", &workflow.cancel), ("exit", &workflow.exit), ("updateData", &workflow.update_data)] {
        if let Some(t) = t {
            transition(format!("{kind} {}", t.key), t, &mut hooks);
        }
    }
    for state in &workflow.states {
        for t in &state.transitions {
            transition(format!("{} -> {}", state.key, t.key), t, &mut hooks);
        }
        for entry in state.on_entries.iter().chain(&state.on_exits) {
            if let Some(m) = &entry.mapping {
                hooks.push((format!("{} task {}", state.key, entry.order), Hook::TaskMapping, m.clone()));
            }
        }
    }
    hooks
}

#[test]
fn scripts_compile_and_define_the_function_their_position_requires() {
    let host = ScriptHost::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, workflow) in workflows() {
        for (at, hook, code) in hooks_of(&workflow) {
            let location = code.location.clone().unwrap_or_default();
            let compiled = match host.compile(&code) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{name} {at} ({location}): {e}"));
                    continue;
                }
            };
            let ok = match hook {
                Hook::TransitionMapping | Hook::Rule | Hook::Timer => compiled.has_function("handler"),
                Hook::TaskMapping => compiled.has_function("input") || compiled.has_function("output"),
            };
            if !ok {
                failures.push(format!("{name} {at} ({location}): a {hook:?} script must define the function for that position"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The typed walk above must see every script the JSON holds.
    let in_json: usize = package().iter().filter(|f| f.str_field("flow") == "sys-flows").map(|f| script_codes(f).len()).sum();
    assert_eq!(checked, in_json, "scripts in positions the check does not know");
}

// ---------------------------------------------------------------------------
// Script behaviour

#[path = "samples_conform/behaviour.rs"]
mod behaviour;

// ---------------------------------------------------------------------------
// Example payloads of docs/samples.md against the payload schemas

fn payload_schema(key: &str) -> jsonschema::Validator {
    let file = package()
        .into_iter()
        .find(|f| f.str_field("flow") == "sys-schemas" && f.str_field("key") == key)
        .unwrap_or_else(|| panic!("no schema `{key}` in the package"));
    jsonschema::validator_for(&file.json["attributes"]["schema"]).unwrap_or_else(|e| panic!("{}: {e}", file.name()))
}

#[test]
fn every_payload_schema_compiles_as_draft_2020_12() {
    for file in package().into_iter().filter(|f| f.str_field("flow") == "sys-schemas") {
        let schema = &file.json["attributes"]["schema"];
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{}", file.name());
        jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{}: {e}", file.name()));
    }
}

#[test]
fn documented_payloads_pass_and_broken_ones_fail_with_a_pointer() {
    let accepted = [
        ("customer-onboarding-start", json!({
            "applicant": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                          "birthDate": "1990-12-10", "country": "GB"},
            "product": "current-account"})),
        ("customer-documents", json!({"documents": {"idDocument": "passport", "proofOfAddress": true, "selfieMatch": 0.93}})),
        ("customer-documents", json!({"documents": {"idDocument": "national-id"}})),
        ("review-decision", json!({"reviewer": "rita", "note": "documents checked by phone"})),
        ("review-rejection", json!({"reviewer": "rita", "reason": "address could not be verified"})),
        ("payment-start", json!({"merchantId": "coffee-corner", "amount": 12500, "currency": "EUR", "method": "card",
                                 "notifyUrl": "http://127.0.0.1:9000/callback", "confirmationWindow": "PT2S"})),
        ("payment-confirmation", json!({"authorizationCode": "AUTH42"})),
        ("document-start", json!({"title": "Supplier contract 2027", "documentType": "contract", "author": "dora"})),
        ("document-details", json!({"summary": "Adds the 2027 price list"})),
        ("document-comment", json!({"author": "bob", "text": "Clause 4 needs a date"})),
        ("cancellation-reason", json!({"reason": "superseded", "requestedBy": "dora"})),
    ];
    for (schema, payload) in accepted {
        let validator = payload_schema(schema);
        let errors: Vec<String> = validator.iter_errors(&payload).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{schema} should accept {payload}: {errors:?}");
    }
    let rejected = [
        ("customer-onboarding-start", json!({"applicant": {"firstName": "Ada"}, "product": "current-account"}), "/applicant"),
        ("customer-onboarding-start", json!({"applicant": {"firstName": "Ada", "lastName": "L", "email": "not-an-email",
            "birthDate": "1990-12-10", "country": "GB"}, "product": "current-account"}), "/applicant/email"),
        ("customer-documents", json!({"documents": {"idDocument": "passport", "selfieMatch": 1.5}}), "/documents/selfieMatch"),
        ("payment-start", json!({"merchantId": "coffee-corner", "amount": 12.5, "currency": "EUR", "method": "card"}), "/amount"),
        ("payment-start", json!({"merchantId": "coffee-corner", "amount": 100, "currency": "EUR", "method": "card",
            "confirmationWindow": "30 minutes"}), "/confirmationWindow"),
        ("payment-confirmation", json!({"authorizationCode": "x"}), "/authorizationCode"),
        ("document-start", json!({"title": "T", "documentType": "poem", "author": "dora"}), "/documentType"),
        ("document-details", json!({"author": "mallory"}), ""),
        ("review-rejection", json!({"reviewer": "rita"}), ""),
    ];
    for (schema, payload, pointer) in rejected {
        let validator = payload_schema(schema);
        let pointers: Vec<String> = validator.iter_errors(&payload).map(|e| e.instance_path().to_string()).collect();
        assert!(pointers.iter().any(|p| p == pointer), "{schema} should reject {payload} at `{pointer}`, got {pointers:?}");
    }
}

// ---------------------------------------------------------------------------
// Container files: every VNEXT_<SECTION>__<FIELD> they set is a real setting

#[test]
fn container_files_set_only_real_configuration_fields() {
    let config = serde_json::to_value(vnext_init::config::Config::default()).expect("config serializes");
    let mut failures = Vec::new();
    let mut seen = 0;
    for name in ["docker-compose.yml", "Dockerfile"] {
        let text = std::fs::read_to_string(workspace_root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (at, _) in text.match_indices("VNEXT_") {
            let var: String = text[at..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            if var.len() == "VNEXT_".len() {
                continue; // prose such as VNEXT_<SECTION>__<FIELD>
            }
            let Some((section, field)) = var["VNEXT_".len()..].split_once("__") else {
                failures.push(format!("{name}: `{var}` is not VNEXT_<SECTION>__<FIELD>"));
                continue;
            };
            if config.get(section.to_ascii_lowercase()).and_then(|s| s.get(field.to_ascii_lowercase())).is_none() {
                failures.push(format!("{name}: `{var}` names no configuration field"));
            }
            seen += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(seen >= 8, "only {seen} settings found");
}
