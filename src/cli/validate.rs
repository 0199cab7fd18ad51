//! `vnext validate PATH`: offline diagnostics for component files.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A component JSON file or a folder of them.
    pub path: PathBuf,
    /// Print diagnostics as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("validate: not yet implemented");
    ExitCode::FAILURE
}
