//! Command-line surface: parsing, logging set-up, and one module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod app;
mod client;
mod diagram;
mod echo;
mod execution;
mod init;
mod keys;
mod embedded_pg;
mod publish;
mod signals;
mod up;
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

/// Subcommands in the order a user meets them: run it, check and publish
/// components, drive it over its API, then administration and the services
/// one by one.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: init, the API and task execution (development).
    Up(up::Args),
    /// Validate a component file or a whole component folder, offline.
    Validate(validate::Args),
    /// Draw a workflow definition file as SVG or Mermaid text, offline.
    Diagram(diagram::Args),
    /// Publish a component folder into its domains.
    Publish(publish::Args),
    /// List the domains a running API serves.
    Domains(client::discovery::DomainsArgs),
    /// List a domain's workflows, their versions and instance counts.
    Workflows(client::discovery::WorkflowsArgs),
    /// Start, list, read and drive workflow instances over the API.
    Instances(client::instances::Args),
    /// List an instance's incidents (failures that stopped it), newest first.
    Incidents(client::incidents::Args),
    /// Manage API keys: create (the secret is shown once), list, revoke.
    Keys(keys::Args),
    /// Provision every domain, migrate every flow schema, publish the component folder.
    Init(init::Args),
    /// Run the orchestration service (the REST API) alone.
    App(app::Args),
    /// Run the execution service alone (invoke API and job scheduler).
    Execution(execution::Args),
    /// Measure the runtime against its performance budget.
    Bench(vnext_bench::Args),
    /// Print a shell completion script: `vnext completions bash > /etc/bash_completion.d/vnext`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    // Services log at info. The benchmark's in-process runtime would drown
    // its figures in info logs, and a client verb's output is its answer.
    let quiet = !matches!(cli.command, Command::Up(_) | Command::Publish(_) | Command::Init(_) | Command::App(_) | Command::Execution(_) | Command::Keys(_) | Command::Validate(_) | Command::Diagram(_));
    // Held until the command returns: dropping it sends the traces still buffered.
    let _telemetry = init_tracing(cli.config.as_deref(), if quiet { "warn" } else { "info" });
    vnext_telemetry::metrics::install();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Up(args) => up::run(config, args),
        Command::Validate(args) => validate::run(args),
        Command::Diagram(args) => diagram::run(config, args),
        Command::Publish(args) => publish::run(config, args),
        Command::Domains(args) => client::discovery::domains(config, args),
        Command::Workflows(args) => client::discovery::workflows(config, args),
        Command::Instances(args) => client::instances::run(config, args),
        Command::Incidents(args) => client::incidents::run(config, args),
        Command::Keys(args) => keys::run(config, args),
        Command::Init(args) => init::run(config, args),
        Command::App(args) => app::run(config, args),
        Command::Execution(args) => execution::run(config, args),
        Command::Bench(args) => vnext_bench::run(args, cli.config, |config, shutdown| Box::pin(up::launch(config, shutdown))),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "vnext", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// Logs go to stderr as `log.format` says (text or JSON lines); `RUST_LOG`
/// filters them (default `info`, `warn` for the benchmark). Traces go to
/// `telemetry.otlp_endpoint` when set (builds with the `otlp` feature). A
/// configuration that does not load leaves text and no traces: the
/// subcommand reports the error itself.
fn init_tracing(config: Option<&std::path::Path>, default: &str) -> vnext_telemetry::log::Guard {
    use vnext_init::config::{Config, LogFormat};
    use vnext_telemetry::log::{Format, Traces};
    let config = Config::load(config).ok();
    let format = match config.as_ref().map(|c| c.log.format) {
        Some(LogFormat::Json) => Format::Json,
        Some(LogFormat::Text) | None => Format::Text,
    };
    let traces = config.map_or_else(Traces::default, |c| Traces {
        otlp_endpoint: Some(c.telemetry.otlp_endpoint).filter(|e| !e.is_empty()),
        service_name: c.telemetry.service_name,
    });
    vnext_telemetry::log::init(format, default, &traces)
}

/// Runs a subcommand body on a fresh runtime; an error is printed with its cause.
fn block_on<F>(body: F) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
