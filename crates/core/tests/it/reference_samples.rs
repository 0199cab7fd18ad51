//! The real vNext component files kept as reference material parse into the
//! typed model, and validation reports what this runtime cannot run: their C#
//! scripts (with file and pointer), task types it does not execute, and short
//! references to files the sample package does not contain.
//!
//! The folder is `$VNEXT_REFERENCE_DIR`, by default `../shared/reference/vnext`
//! beside the workspace. When it is missing the tests say so and pass, unless
//! `VNEXT_REQUIRE_REFERENCE=1` demands it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vnext_core::model::{Component, TaskType};
use vnext_core::script::ScriptHost;
use vnext_core::validate::{Diagnostic, parse_component, validate_package};

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("VNEXT_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/vnext")
        });
    if dir.join("samples").is_dir() {
        return Some(dir);
    }
    if std::env::var("VNEXT_REQUIRE_REFERENCE").as_deref() == Ok("1") {
        panic!(
            "reference folder {} is missing and VNEXT_REQUIRE_REFERENCE=1",
            dir.display()
        );
    }
    eprintln!(
        "notice: reference folder {} not found; skipping the reference sample tests (set VNEXT_REFERENCE_DIR)",
        dir.display()
    );
    None
}

/// Every `*.json` under `dir`, as (path relative to `base` with `/`, document).
fn json_files(base: &Path, dir: &Path, out: &mut Vec<(String, Value)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("readable");
            let value: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let relative = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, value));
        }
    }
}

/// One sample package per top-level folder of `samples/`.
fn packages(dir: &Path) -> Vec<(String, Files)> {
    let samples = dir.join("samples");
    let mut names: Vec<_> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let mut files = Vec::new();
            json_files(&samples, &p, &mut files);
            (p.file_name().unwrap().to_string_lossy().into_owned(), files)
        })
        .collect()
}

/// Pointers of every script object whose location is a `.csx` file.
fn csx_scripts(value: &Value, pointer: String, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if map
                .get("location")
                .and_then(Value::as_str)
                .is_some_and(|l| l.ends_with(".csx"))
            {
                out.insert(pointer.clone());
            }
            for (k, v) in map {
                csx_scripts(
                    v,
                    format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                csx_scripts(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A package's files, each as (path, document).
type Files = Vec<(String, Value)>;

fn all_diagnostics(dir: &Path) -> Vec<(Files, Vec<Diagnostic>)> {
    let host = ScriptHost::new();
    packages(dir)
        .into_iter()
        .map(|(_, files)| {
            let d = validate_package(&files, None, &host);
            (files, d)
        })
        .collect()
}

#[test]
fn every_sample_parses_into_the_typed_model() {
    let Some(dir) = reference_dir() else { return };
    let mut count = 0;
    let mut workflows = 0;
    for (_, files) in packages(&dir) {
        for (path, value) in files {
            let component = parse_component(&value).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            assert_eq!(
                component.identity().0,
                value["key"].as_str().unwrap(),
                "{path}"
            );
            if let Component::Workflow(w) = &component {
                workflows += 1;
                assert!(!w.attributes.states.is_empty(), "{path}: states parsed");
            }
            count += 1;
        }
    }
    assert!(count >= 14, "found only {count} sample files");
    assert_eq!(workflows, 3);
}

#[test]
fn every_csharp_script_is_reported_with_file_and_pointer() {
    let Some(dir) = reference_dir() else { return };
    let mut total = 0;
    for (files, diagnostics) in all_diagnostics(&dir) {
        for (path, value) in &files {
            let mut expected = BTreeSet::new();
            csx_scripts(value, String::new(), &mut expected);
            let reported: BTreeSet<String> = diagnostics
                .iter()
                .filter(|d| d.code == "script.csharp" && d.file.as_deref() == Some(path))
                .map(|d| d.pointer.clone())
                .collect();
            assert_eq!(reported, expected, "{path}");
            for d in diagnostics
                .iter()
                .filter(|d| d.code == "script.csharp" && d.file.as_deref() == Some(path))
            {
                let location = value
                    .pointer(&format!("{}/location", d.pointer))
                    .and_then(Value::as_str)
                    .unwrap();
                let component = d.component.as_deref().expect("component named");
                assert!(
                    d.message.contains(location)
                        && d.message.contains(component)
                        && d.message.contains(&d.pointer),
                    "{d}"
                );
                assert!(d.message.contains("rhai"), "{d}");
            }
            total += expected.len();
        }
    }
    assert!(
        total >= 20,
        "expected the samples' many C# scripts, found {total}"
    );
}

#[test]
fn a_known_rule_is_reported_at_its_exact_place() {
    let Some(dir) = reference_dir() else { return };
    let all: Vec<Diagnostic> = all_diagnostics(&dir)
        .into_iter()
        .flat_map(|(_, d)| d)
        .collect();
    let d = all
        .iter()
        .find(|d| {
            d.file.as_deref()
                == Some(
                    "vnext-domain-discovery/discovery/Workflows/domain-health-check-workflow.json",
                )
                && d.pointer == "/attributes/states/0/transitions/0/rule"
        })
        .expect("the first auto rule of domain-health-check");
    assert_eq!(d.code, "script.csharp");
    assert!(d.message.contains("./src/InitialTransitionRule.csx"));
    assert_eq!(
        d.component.as_deref(),
        Some("sys-flows/domain-health-check@1.0.0")
    );
}

#[test]
fn task_types_the_runtime_does_not_run_are_reported_and_the_others_are_clean() {
    let Some(dir) = reference_dir() else { return };
    for (files, diagnostics) in all_diagnostics(&dir) {
        for (path, value) in files.iter().filter(|(_, v)| v["flow"] == "sys-tasks") {
            let code = value["attributes"]["type"].as_str().unwrap();
            let supported = TaskType::from_code(code).unwrap().is_supported();
            let mine: Vec<_> = diagnostics
                .iter()
                .filter(|d| d.file.as_deref() == Some(path.as_str()))
                .collect();
            if supported {
                assert!(mine.is_empty(), "{path}: {mine:?}");
            } else {
                assert!(
                    mine.iter()
                        .any(|d| d.code == "task.type.unsupported"
                            && d.pointer == "/attributes/type"),
                    "{path}: {mine:?}"
                );
            }
        }
    }
}

#[test]
fn short_references_resolve_against_the_sample_package() {
    let Some(dir) = reference_dir() else { return };
    let sys_flow = "vnext-sys-flow/core/Workflows/sys-flows.json";
    let all: Vec<Diagnostic> = all_diagnostics(&dir)
        .into_iter()
        .flat_map(|(_, d)| d)
        .collect();
    let of = |pointer: &str| {
        all.iter()
            .filter(|d| d.file.as_deref() == Some(sys_flow) && d.pointer == pointer)
            .collect::<Vec<_>>()
    };
    // Present in the package: resolves.
    assert!(of("/attributes/states/0/transitions/0/onExecutionTasks/0/task").is_empty());
    assert!(of("/attributes/extensions/0").is_empty());
    // Not part of the sample package: reported by path.
    let missing = of("/attributes/startTransition/schema");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].code, "reference.file.not-found");
    assert!(missing[0].message.contains("Schemas/workflow.json"));
}

#[test]
fn sample_json_schemas_compile() {
    let Some(dir) = reference_dir() else { return };
    for (files, diagnostics) in all_diagnostics(&dir) {
        for (path, _) in files.iter().filter(|(_, v)| v["flow"] == "sys-schemas") {
            let mine: Vec<_> = diagnostics
                .iter()
                .filter(|d| d.file.as_deref() == Some(path.as_str()))
                .collect();
            assert!(mine.is_empty(), "{path}: {mine:?}");
        }
    }
}
