//! `vnext diagram PATH`: draws a workflow definition file, offline, as SVG or
//! Mermaid text (the same rendering as the app's diagram endpoints).

use std::path::PathBuf;
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
}

pub fn run(args: Args) -> ExitCode {
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

fn draw(args: &Args) -> Result<String, String> {
    let text = std::fs::read_to_string(&args.path).map_err(|e| e.to_string())?;
    let component: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let attributes = component.get("attributes").cloned().ok_or("no `attributes`: not a workflow component")?;
    let workflow: Workflow = serde_json::from_value(attributes).map_err(|e| format!("not a workflow definition: {e}"))?;
    let diagram = Diagram::of(&workflow);
    Ok(match args.format {
        Format::Svg => svg::render(&diagram),
        Format::Mermaid => mermaid::render(&diagram),
    })
}
