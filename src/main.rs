//! `vnext`: the workflow runtime's one binary. Each service is a subcommand;
//! `vnext up` runs them all in one process for development.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
