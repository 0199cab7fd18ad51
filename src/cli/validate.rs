//! `vnext validate PATH`: offline diagnostics for a component file or a whole
//! component folder.
//!
//! A folder is walked recursively as one package (so short `{"ref": ...}`
//! references resolve); `.meta` and other hidden folders and designer files
//! (`*.diagram.json`) are skipped, and JSON that is not a component (such as
//! `vnext.config.json`) is skipped with a note. A single file is checked as
//! part of the package it sits in: the nearest folder above it holding
//! `Workflows/`, `Tasks/`, `Schemas/`, `Views/`, `Functions/` or
//! `Extensions/` is read so its references resolve, and only the file's own
//! problems are reported. A file named explicitly that is not a component is a
//! problem (`component.not-a-component`), not a note. Fields the model does not know
//! are warnings (on stderr), problems with `--strict`. Exit code: 0 when clean,
//! 1 when any problem was found, 2 for usage or I/O errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;
use vnext_core::script::ScriptHost;
use vnext_core::validate::{Diagnostic, codes, looks_like_component, unknown_fields, validate_package};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A component JSON file or a folder of them.
    pub path: PathBuf,
    /// Print diagnostics as a JSON array on stdout (notes and summary go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Treat unknown fields as problems, as publishing with `strict=true` does.
    #[arg(long)]
    pub strict: bool,
}

const EXIT_PROBLEMS: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn run(args: Args) -> ExitCode {
    match validate(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Folders that mark a package root (vNext's layout).
const PACKAGE_FOLDERS: [&str; 6] = ["Workflows", "Tasks", "Schemas", "Views", "Functions", "Extensions"];

/// The package a single file sits in: the nearest folder above it (itself
/// excluded) that holds one of [`PACKAGE_FOLDERS`].
fn package_root(file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }).map(Path::to_path_buf)?;
    loop {
        if PACKAGE_FOLDERS.iter().any(|f| dir.join(f).is_dir()) {
            return Some(dir);
        }
        // Stay relative (as the user wrote it) while the path has parents to give.
        dir = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() && dir.file_name().is_some() => p.to_path_buf(),
            _ => std::fs::canonicalize(&dir).ok()?.parent()?.to_path_buf(),
        };
    }
}

/// What to read and what to report on.
struct Selection {
    paths: Vec<PathBuf>,
    /// The one file reported on (display name), when a single file was named.
    only: Option<String>,
}

fn select(path: &Path) -> Result<Selection, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Ok(Selection { paths: collect(path)?, only: None });
    }
    let Some(root) = package_root(path) else {
        return Ok(Selection { paths: vec![path.to_path_buf()], only: Some(display(path)) });
    };
    let mut paths = collect(&root)?;
    let wanted = std::fs::canonicalize(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let named = paths.iter().find(|p| std::fs::canonicalize(p).is_ok_and(|c| c == wanted)).cloned();
    let only = match named {
        Some(p) => display(&p),
        // A designer file or one in a hidden folder: checked with the package all the same.
        None => {
            paths.push(path.to_path_buf());
            display(path)
        }
    };
    eprintln!("note: checking {only} as part of the package in {}", display(&root));
    Ok(Selection { paths, only: Some(only) })
}

fn validate(args: &Args) -> Result<ExitCode, String> {
    let Selection { paths, only } = select(&args.path)?;
    let reported = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut diagnostics = Vec::new();
    let mut components = Vec::new();
    let mut skipped = 0usize;
    for path in &paths {
        let name = display(path);
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        match serde_json::from_str::<Value>(&text) {
            Err(e) => diagnostics.push(Diagnostic {
                file: Some(name.clone()),
                component: None,
                pointer: String::new(),
                code: codes::JSON_SYNTAX,
                message: format!("not valid JSON: {e}"),
            }),
            Ok(value) if !looks_like_component(&value) && only.as_deref() == Some(name.as_str()) => {
                diagnostics.push(Diagnostic {
                    file: Some(name.clone()),
                    component: None,
                    pointer: String::new(),
                    code: codes::COMPONENT_NOT_A_COMPONENT,
                    message: "not a component: it has neither `flow` nor `attributes`".into(),
                });
            }
            Ok(value) if !looks_like_component(&value) => {
                if reported(&name) {
                    skipped += 1;
                    eprintln!("note: {name}: skipped (not a component: neither `flow` nor `attributes`)");
                }
            }
            Ok(value) => components.push((name, value)),
        }
    }
    diagnostics.extend(validate_package(&components, None, &ScriptHost::new()));
    // A single file: its own problems only (the package was read to resolve references).
    diagnostics.retain(|d| d.file.as_deref().is_none_or(reported));
    let checked = components.iter().filter(|(name, _)| reported(name)).count();
    if only.is_some() && diagnostics.iter().any(|d| d.code == codes::REFERENCE_UNRESOLVED || d.code == codes::REFERENCE_FILE_NOT_FOUND) {
        eprintln!(
            "note: references resolve against the package the file sits in (the folder holding {}); keep the file in its package or validate the package folder",
            PACKAGE_FOLDERS.map(|f| format!("{f}/")).join(", ")
        );
    }
    let mut warnings = Vec::new();
    for (name, value) in components.iter().filter(|(name, _)| reported(name)) {
        warnings.extend(unknown_fields(value).into_iter().map(|mut w| {
            w.file = Some(name.clone());
            w
        }));
    }
    if args.strict {
        diagnostics.append(&mut warnings);
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let order = |d: &Diagnostic| {
        paths
            .iter()
            .position(|p| Some(display(p)) == d.file)
            .unwrap_or(usize::MAX)
    };
    diagnostics.sort_by_key(order);

    let files_with_problems = {
        let mut files: Vec<_> = diagnostics
            .iter()
            .filter_map(|d| d.file.as_deref())
            .collect();
        files.dedup();
        files.len()
    };
    let summary = if diagnostics.is_empty() {
        format!(
            "{} component(s) checked, no problems, {} warning(s) ({skipped} file(s) skipped)",
            checked,
            warnings.len()
        )
    } else {
        format!(
            "{} problem(s) in {files_with_problems} file(s); {} component(s) checked, {skipped} file(s) skipped",
            diagnostics.len(),
            checked
        )
    };
    if args.json {
        let json = serde_json::to_string_pretty(&diagnostics).map_err(|e| e.to_string())?;
        println!("{json}");
        eprintln!("{summary}");
    } else {
        for d in &diagnostics {
            println!("{d}");
        }
        println!("{summary}");
    }
    Ok(if diagnostics.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}

/// Every `*.json` below a folder, in a stable order.
fn collect(path: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    walk(path, &mut out)?;
    if out.is_empty() {
        return Err(format!("{} holds no *.json files", path.display()));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            // `.meta` holds designer layouts; other hidden folders are tooling.
            if !name.starts_with('.') && name != "node_modules" {
                walk(&path, out)?;
            }
        } else if name.ends_with(".json") && !name.ends_with(".diagram.json") {
            out.push(path);
        }
    }
    Ok(())
}

fn display(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    text.strip_prefix("./").map(str::to_string).unwrap_or(text)
}
