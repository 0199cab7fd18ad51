//! `vnext diagram`: every sample workflow drawn offline, a node per state in
//! the SVG, a Mermaid flowchart naming each state; a missing file exits 2.

use std::path::PathBuf;
use std::process::Command;

fn workflows() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flows/demo/Workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("sample workflows")
        .flatten()
        .flat_map(|dir| std::fs::read_dir(dir.path()).into_iter().flatten().flatten().map(|f| f.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn vnext(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vnext")).args(args).output().expect("run vnext");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_sample_workflow_draws_a_node_per_state() {
    let files = workflows();
    assert!(!files.is_empty());
    for file in files {
        let component: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let Some(states) = component["attributes"]["states"].as_array() else { continue };
        let path = file.to_str().unwrap();
        let (code, svg) = vnext(&["diagram", path]);
        assert_eq!(code, 0, "{path}");
        let (code, mermaid) = vnext(&["diagram", path, "--format", "mermaid"]);
        assert_eq!(code, 0, "{path}");
        assert!(mermaid.starts_with("flowchart TD"), "{mermaid}");
        for state in states {
            let key = state["key"].as_str().unwrap();
            assert_eq!(svg.matches(&format!("data-state=\"{key}\"")).count(), 1, "{key} in {path}");
            assert!(mermaid.contains(&format!("\"{key}\"")), "{key} in {mermaid}");
        }
    }
}

#[test]
fn a_missing_file_exits_2() {
    assert_eq!(vnext(&["diagram", "no-such-workflow.json"]).0, 2);
}
