//! `vnext diagram PATH`: draws a workflow definition file, offline, as SVG or
//! Mermaid text (the same rendering as the app's diagram endpoints). With
//! `--instance`, the running API draws that instance of the file's workflow
//! (domain and key from the file), its path and current state highlighted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vnext_app::diagram::{Diagram, mermaid, svg};
use vnext_core::model::Workflow;

/// Exit code of a file that cannot be read or is not a workflow.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Svg,
    Mermaid,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow component file (`sys-flows`, its `attributes` are drawn).
    pub path: PathBuf,
    /// `svg` (default) or `mermaid`.
    #[arg(long, value_enum, default_value = "svg")]
    pub format: Format,
    /// An instance (id or key) of the workflow: drawn by the API at `--url`,
    /// with the path it took and where it stands.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    #[command(flatten)]
    pub remote: crate::cli::client::Remote,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Mermaid => "mermaid",
        }
    }
}

pub fn run(config: Option<&Path>, args: Args) -> ExitCode {
    if let Some(instance) = args.instance.clone() {
        return draw_instance(config, args, instance);
    }
    match draw(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {}: {message}", args.path.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Asks the API for the instance's diagram; the workflow and its domain are
/// the file's `key` and `domain`.
fn draw_instance(config: Option<&Path>, args: Args, instance: String) -> ExitCode {
    let (domain, workflow) = match read_component(&args.path).and_then(|c| {
        let field = |name: &str| c.get(name).and_then(serde_json::Value::as_str).map(str::to_string);
        Ok((field("domain").ok_or("no `domain`: cannot tell where the instance runs")?, field("key").ok_or("no `key`")?))
    }) {
        Ok(names) => names,
        Err(message) => {
            eprintln!("error: {}: {message}", args.path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    crate::cli::client::run(config, args.remote, |api| async move {
        let path = [domain.as_str(), "workflows", &workflow, "instances", &instance, "diagram"];
        let answer = api.get(&path, &[("format", args.format.name().to_string())]).await?;
        print!("{}", answer.text);
        Ok(())
    })
}

fn read_component(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

fn draw(args: &Args) -> Result<String, String> {
    let component = read_component(&args.path)?;
    let attributes = component.get("attributes").cloned().ok_or("no `attributes`: not a workflow component")?;
    let workflow: Workflow = serde_json::from_value(attributes).map_err(|e| format!("not a workflow definition: {e}"))?;
    let diagram = Diagram::of(&workflow);
    Ok(match args.format {
        Format::Svg => svg::render(&diagram),
        Format::Mermaid => mermaid::render(&diagram),
    })
}
