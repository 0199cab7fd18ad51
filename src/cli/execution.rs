//! `vnext execution`: the execution service alone. It serves the invoke API
//! (`execution.listen`) that the app calls for tasks with external I/O, and
//! runs the job scheduler over every registered domain, firing due timers,
//! timeouts, async transitions, retries and lease recoveries into the app
//! (`app.url`). Both directions authenticate with `execution.shared_secret`.

use std::path::Path;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use vnext_execution::service::{ExecutionService, ServiceOptions};
use vnext_init::config::Config;
use vnext_init::db::Databases;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides execution.listen), e.g. 0.0.0.0:4202.
    #[arg(long)]
    pub listen: Option<String>,
    /// Serve the invoke API only; leave the jobs to other execution processes.
    #[arg(long)]
    pub no_scheduler: bool,
}

pub fn run(config_path: Option<&Path>, args: Args) -> ExitCode {
    let mut config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("  every setting is described in docs/configuration.md");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        config.execution.listen = listen;
    }
    if let Err(e) = config.check_exposed_secrets() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let databases = match Databases::connect(&config).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let options = ServiceOptions { scheduler: !args.no_scheduler };
        let service = match ExecutionService::bind(databases, options).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("vnext execution: invoke API on http://{}", service.local_addr());
        if options.scheduler {
            println!("  job scheduler: firing transitions into {}", config.app.url);
        }
        let shutdown = CancellationToken::new();
        super::signals::spawn_signal_handler(shutdown.clone(), "tasks and jobs");
        match service.run(shutdown).await {
            Ok(()) => {
                eprintln!("vnext execution stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

