//! The fixture package is valid as a whole and component by component, so every
//! failing case in the other tests fails for the one thing it breaks.

use crate::validate_support;

use validate_support::*;
use vnext_core::validate::{EmptyCatalog, check_component, validate_package};

#[test]
fn every_fixture_component_is_valid_against_the_catalog() {
    for (path, value) in package() {
        let diagnostics = check(&value);
        assert!(diagnostics.is_empty(), "{path}:\n{}", render(&diagnostics));
    }
}

#[test]
fn the_fixture_package_is_valid_on_its_own() {
    assert_clean(&validate_package(&package(), None, &host()));
}

#[test]
fn check_component_returns_the_parsed_workflow_when_clean() {
    let component = check_component(&workflow(), &catalog(), &host()).expect("valid");
    assert_eq!(component.identity(), ("order", "1.0.0", "shop"));
    let errors = check_component(&workflow(), &EmptyCatalog, &host())
        .expect_err("references cannot resolve");
    assert!(
        errors.iter().all(|d| d.code == "reference.unresolved"),
        "{}",
        render(&errors)
    );
    assert_eq!(errors.len(), 10, "{}", render(&errors));
}
