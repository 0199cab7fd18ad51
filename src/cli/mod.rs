//! Command-line surface: parsing, logging set-up, and one module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod validate;

#[derive(Debug, Parser)]
#[command(name = "vnext", version, about = "A vNext-style workflow runtime on PostgreSQL")]
pub struct Cli {
    /// Configuration file (default: ./vnext.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a component file or a whole component folder, offline.
    Validate(validate::Args),
    /// Measure the runtime against its performance budget.
    Bench(bench::Args),
}

pub fn run(cli: Cli) -> ExitCode {
    init_tracing();
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Bench(args) => bench::run(args, cli.config),
    }
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
