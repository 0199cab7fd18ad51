//! `vnext publish DIR`: publish a component folder into its domains.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vnext_init::InitError;
use vnext_init::config::Config;
use vnext_init::db::Databases;
use vnext_init::package::{self, FileStatus, PublishProgress, PublishReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component folder (Workflows/, Tasks/, Schemas/, ... at any depth).
    pub dir: PathBuf,
}

pub fn run(config: Option<&Path>, args: Args) -> ExitCode {
    super::block_on(async move {
        let config = Config::load(config)?;
        let dbs = Databases::connect(&config).await?;
        let result = package::publish_folder(&dbs, &args.dir, print_progress).await;
        Ok(print_outcome(&result))
    })
}

/// One line per file.
pub fn print_progress(p: &PublishProgress) {
    let component = p.component.as_deref().unwrap_or("");
    match &p.status {
        FileStatus::Created => println!("  published  {}  {component}", p.path),
        FileStatus::Unchanged => println!("  unchanged  {}  {component}", p.path),
        FileStatus::Held => println!("  held       {}  {component} (not published: other files failed)", p.path),
        FileStatus::Failed(reason) => println!("  FAILED     {}: {reason}", p.path),
    }
}

/// The summary line; the exit code says whether every file made it.
pub fn print_outcome(result: &Result<PublishReport, InitError>) -> ExitCode {
    match result {
        Ok(report) => {
            println!("{}", summary(report));
            ExitCode::SUCCESS
        }
        Err(InitError::Package(report)) => {
            println!("{}", summary(report));
            if report.created.is_empty() {
                println!("nothing was published");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn summary(r: &PublishReport) -> String {
    format!(
        "{} published, {} unchanged, {} failed, {} held, {} other JSON file(s) skipped; domains: {}",
        r.created.len(),
        r.unchanged.len(),
        r.failures.len(),
        r.held.len(),
        r.skipped.len(),
        if r.domains.is_empty() { "none".to_string() } else { r.domains.join(", ") }
    )
}
