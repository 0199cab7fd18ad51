//! Publish, validate and read back components through the API.

mod api_support;

use api_support::fixtures;
use vnext_core::script::ScriptHost;
use vnext_core::validate;

#[test]
fn the_test_package_is_valid() {
    let files: Vec<(String, serde_json::Value)> =
        fixtures::package().into_iter().enumerate().map(|(i, v)| (format!("f{i}.json"), v)).collect();
    let diagnostics = validate::validate_package(&files, None, &ScriptHost::new());
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
}
