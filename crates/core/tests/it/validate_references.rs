//! Reference rules: completeness, flow, version selectors, resolution against a
//! catalog, and short file references inside a package.

use crate::validate_support;

use serde_json::json;
use validate_support::*;
use vnext_core::model::ComponentKind;
use vnext_core::validate::{ChainCatalog, PackageCatalog, validate_component, validate_package};

const TASK: &str = "/attributes/states/0/transitions/0/onExecutionTasks/0/task";

#[test]
fn every_version_selector_form_resolves() {
    let mut w = workflow();
    for selector in ["1.0.0", "latest", "1", "1.0"] {
        set(&mut w, &format!("{TASK}/version"), json!(selector));
        assert_clean(&check(&w));
    }
}

#[test]
fn a_selector_that_matches_no_version_is_unresolved() {
    let mut w = workflow();
    set(&mut w, &format!("{TASK}/version"), json!("2"));
    let d = assert_only(&check(&w), "reference.unresolved", TASK);
    assert!(
        d.message.contains("`2`") && d.message.contains("1.0.0"),
        "names the selector and the known versions: {}",
        d.message
    );
    set(&mut w, &format!("{TASK}/version"), json!("1.1.0"));
    assert_only(&check(&w), "reference.unresolved", TASK);
}

#[test]
fn an_unknown_component_is_unresolved() {
    let mut w = workflow();
    set(&mut w, &format!("{TASK}/key"), json!("refund"));
    let d = assert_only(&check(&w), "reference.unresolved", TASK);
    assert!(
        d.message.contains("sys-tasks/refund") && d.message.contains("`shop`"),
        "{}",
        d.message
    );
    // Another domain's component of the same key is not the same component.
    let mut w = workflow();
    set(&mut w, &format!("{TASK}/domain"), json!("billing"));
    assert_only(&check(&w), "reference.unresolved", TASK);
}

#[test]
fn a_malformed_selector_is_reported() {
    let mut w = workflow();
    set(&mut w, &format!("{TASK}/version"), json!("1.x"));
    let d = assert_only(
        &check(&w),
        "reference.version.invalid",
        &format!("{TASK}/version"),
    );
    assert!(d.message.contains("1.x"));
}

#[test]
fn references_point_at_the_right_flow() {
    let mut w = workflow();
    set(&mut w, &format!("{TASK}/flow"), json!("sys-views"));
    let d = assert_only(&check(&w), "reference.wrong-flow", &format!("{TASK}/flow"));
    assert!(d.message.contains("sys-views") && d.message.contains("sys-tasks"));
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/2/subFlow/process/flow",
        json!("sys-tasks"),
    );
    assert_only(
        &check(&w),
        "reference.wrong-flow",
        "/attributes/states/2/subFlow/process/flow",
    );
}

#[test]
fn explicit_references_are_complete() {
    let mut w = workflow();
    remove(&mut w, &format!("{TASK}/domain"));
    remove(&mut w, &format!("{TASK}/version"));
    let d = assert_only(&check(&w), "reference.incomplete", TASK);
    assert!(
        d.message.contains("`domain`") && d.message.contains("`version`"),
        "{}",
        d.message
    );
    let mut w = workflow();
    set(
        &mut w,
        TASK,
        json!({"id": "0b5c", "domain": "shop", "flow": "sys-tasks", "version": "1.0.0"}),
    );
    assert_only(&check(&w), "reference.by-id-unsupported", TASK);
}

#[test]
fn every_reference_kind_is_checked() {
    let catalog = PackageCatalog::new();
    let d = validate_component(&workflow(), &catalog, &host());
    for (pointer, flow) in [
        ("/attributes/startTransition/schema", "sys-schemas"),
        ("/attributes/states/0/view/view", "sys-views"),
        ("/attributes/states/0/transitions/0/schema", "sys-schemas"),
        ("/attributes/states/0/transitions/0/view/view", "sys-views"),
        (TASK, "sys-tasks"),
        ("/attributes/states/1/onEntries/0/task", "sys-tasks"),
        ("/attributes/states/2/subFlow/process", "sys-flows"),
        ("/attributes/functions/0", "sys-functions"),
        ("/attributes/extensions/0", "sys-extensions"),
        ("/attributes/schema", "sys-schemas"),
    ] {
        let found = assert_has(&d, "reference.unresolved", pointer);
        assert!(found.message.contains(flow), "{pointer}: {}", found.message);
    }
    let f = validate_component(&function_component(), &catalog, &host());
    assert_only(&f, "reference.unresolved", "/attributes/task/task");
    let e = validate_component(&extension_component(), &catalog, &host());
    assert_only(&e, "reference.unresolved", "/attributes/task/task");
}

#[test]
fn view_rules_resolve_their_views_and_compile_their_rules() {
    let mut w = workflow();
    set(
        &mut w,
        "/attributes/states/0/view",
        json!({
            "rules": [{"rule": rule(), "view": reference("order-view", "sys-views", "1")}],
            "default": {"view": reference("missing-view", "sys-views", "1.0.0")}
        }),
    );
    assert_only(
        &check(&w),
        "reference.unresolved",
        "/attributes/states/0/view/default/view",
    );
    set(
        &mut w,
        "/attributes/states/0/view/default/view/key",
        json!("order-view"),
    );
    assert_clean(&check(&w));
}

#[test]
fn a_chained_catalog_resolves_from_either_side() {
    let mut store = PackageCatalog::new();
    store.insert(ComponentKind::Task, "shop", "refund", "3.1.0");
    let package = catalog();
    let chain = ChainCatalog::new(&package, &store);
    let mut w = workflow();
    set(&mut w, TASK, reference("refund", "sys-tasks", "3"));
    assert_clean(&validate_component(&w, &chain, &host()));
    assert_only(
        &validate_component(&w, &package, &host()),
        "reference.unresolved",
        TASK,
    );
}

#[test]
fn short_file_references_resolve_inside_a_package() {
    let mut files = package();
    let order = files
        .iter_mut()
        .find(|(p, _)| p.ends_with("order.json"))
        .unwrap();
    set(&mut order.1, TASK, json!({"ref": "Tasks/charge.json"}));
    set(
        &mut order.1,
        "/attributes/schema",
        json!({"ref": "Schemas/order-payload.json"}),
    );
    assert_clean(&validate_package(&files, None, &host()));

    let order = files
        .iter_mut()
        .find(|(p, _)| p.ends_with("order.json"))
        .unwrap();
    set(&mut order.1, TASK, json!({"ref": "Tasks/missing.json"}));
    set(
        &mut order.1,
        "/attributes/schema",
        json!({"ref": "Views/order-view.json"}),
    );
    let d = validate_package(&files, None, &host());
    let missing = assert_has(&d, "reference.file.not-found", TASK);
    assert_eq!(missing.file.as_deref(), Some("shop/Workflows/order.json"));
    assert!(missing.message.contains("Tasks/missing.json"));
    let wrong = assert_has(&d, "reference.wrong-flow", "/attributes/schema");
    assert!(
        wrong.message.contains("sys-views/order-view@1.0.0")
            && wrong.message.contains("sys-schemas"),
        "{}",
        wrong.message
    );
    assert_eq!(d.len(), 2, "{}", render(&d));
}

#[test]
fn short_file_references_outside_a_package_are_a_clear_error() {
    let mut w = workflow();
    set(&mut w, TASK, json!({"ref": "Tasks/charge.json"}));
    let d = assert_only(&check(&w), "reference.file.outside-package", TASK);
    assert!(
        d.message.contains("Tasks/charge.json") && d.message.contains("package"),
        "{}",
        d.message
    );
}

#[test]
fn package_references_also_resolve_against_the_extra_catalog() {
    let files: Vec<_> = package()
        .into_iter()
        .filter(|(p, _)| !p.ends_with("charge.json"))
        .collect();
    let d = validate_package(&files, None, &host());
    assert_only(&d, "reference.unresolved", TASK);
    let mut store = PackageCatalog::new();
    store.insert(ComponentKind::Task, "shop", "charge", "1.0.0");
    assert_clean(&validate_package(&files, Some(&store), &host()));
}
