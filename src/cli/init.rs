//! `vnext init`: provision every domain, migrate every flow schema, publish the
//! component folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vnext_init::bootstrap::{self, InitOptions};
use vnext_init::config::Config;
use vnext_init::db::Databases;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Component folder to publish (default: runtime.flows_dir of the configuration).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also provision this domain (repeatable), even if no component names it.
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
}

pub fn run(config: Option<&Path>, args: Args) -> ExitCode {
    super::block_on(async move {
        let config = Config::load(config)?;
        let dbs = Databases::connect(&config).await?;
        let options = InitOptions { dir: args.dir, domains: args.domains, ..InitOptions::default() };
        let report = bootstrap::run(&dbs, &options, super::publish::print_progress).await?;
        for d in &report.domains {
            match (&d.provision, &d.flows) {
                (Ok(p), Some(Ok(flows))) => {
                    let migrated: usize = flows.schemas.iter().map(|s| s.applied.len()).sum();
                    println!(
                        "domain {}: database {}{}, {} flow schema(s), {} flow migration(s) applied",
                        d.domain,
                        p.database,
                        if p.changed_nothing() { " up to date" } else { " provisioned" },
                        flows.schemas.len(),
                        migrated
                    );
                }
                _ => println!("domain {}: FAILED", d.domain),
            }
        }
        if let Some(result) = &report.publish {
            if let Some(dir) = &report.dir {
                println!("folder {}:", dir.display());
            }
            let _ = super::publish::print_outcome(result);
        }
        let problems = report.problems();
        for p in &problems {
            eprintln!("error: {p}");
        }
        Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}
