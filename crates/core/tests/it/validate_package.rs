//! Package-level validation: files on diagnostics, duplicate components,
//! and broken files that do not hide the others' problems.

use crate::validate_support;

use serde_json::json;
use validate_support::*;
use vnext_core::validate::{codes, looks_like_component, validate_package};

#[test]
fn diagnostics_carry_the_file_and_component() {
    let mut files = package();
    set(&mut files[1].1, "/attributes/config/method", json!("FETCH"));
    let d = validate_package(&files, None, &host());
    let found = assert_only(&d, "task.config.invalid", "/attributes/config/method");
    assert_eq!(found.file.as_deref(), Some("shop/Tasks/charge.json"));
    assert_eq!(found.component.as_deref(), Some("sys-tasks/charge@1.0.0"));
    assert!(
        found
            .to_string()
            .starts_with("shop/Tasks/charge.json: /attributes/config/method: ")
    );
}

#[test]
fn two_files_defining_one_component_version_are_reported() {
    let mut files = package();
    files.push(("shop/Tasks/charge-copy.json".into(), http_task()));
    let d = validate_package(&files, None, &host());
    let found = assert_only(&d, "package.duplicate-component", "/version");
    assert_eq!(found.file.as_deref(), Some("shop/Tasks/charge-copy.json"));
    assert!(
        found.message.contains("shop/Tasks/charge.json"),
        "{}",
        found.message
    );
    // Another version of the same key is fine.
    let mut copy = http_task();
    set(&mut copy, "/version", json!("1.1.0"));
    let mut files = package();
    files.push(("shop/Tasks/charge-1.1.json".into(), copy));
    assert_clean(&validate_package(&files, None, &host()));
}

#[test]
fn a_broken_file_still_counts_as_defined_and_others_are_still_checked() {
    let mut files = package();
    // The task's attributes no longer fit the model, but workflows referencing it
    // must not get a cascade of unresolved references.
    set(&mut files[1].1, "/attributes/type", json!(6));
    set(&mut files[3].1, "/attributes/type", json!("one"));
    let d = validate_package(&files, None, &host());
    assert_has(&d, codes::COMPONENT_PARSE, "/attributes/type");
    assert_eq!(d.len(), 2, "{}", render(&d));
    assert!(d.iter().all(|d| d.code == codes::COMPONENT_PARSE));
    let mut paths: Vec<_> = d.iter().map(|d| d.file.clone().unwrap()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["shop/Tasks/charge.json", "shop/Views/order-view.json"]
    );
}

#[test]
fn only_component_documents_look_like_components() {
    assert!(looks_like_component(&workflow()));
    assert!(!looks_like_component(
        &json!({"version": "1.0.0", "domain": "shop", "paths": {"componentsRoot": "shop"}})
    ));
    assert!(!looks_like_component(&json!([1])));
    // A component that lost its `flow` is still a component, and reported.
    assert!(looks_like_component(&json!({"key": "x", "attributes": {}})));
}
