//! `vnext up`: the whole runtime in one process, for development.
//!
//! 1. init: the control schema, every domain of the component folder (and every
//!    registered one) provisioned and migrated, the folder published;
//! 2. the engine, with tasks (HTTP, instance tasks) run in-process, and the
//!    job scheduler firing timers, timeouts, retries and async transitions;
//! 3. the API (`app.listen`), until Ctrl-C / SIGTERM: the API and the
//!    scheduler drain with deadlines; a second signal exits at once;
//! 4. a callback echo on loopback (`--echo-listen`, default
//!    `127.0.0.1:4209`) that the samples' HTTP tasks call ([`super::echo`]).
//!
//! It prints where the API listens and a first request to try. When PostgreSQL
//! is unreachable it says so and how to fix it.
//!
//! With no server to use (see `database.embedded`), it runs a private
//! PostgreSQL cluster for the duration of the run ([`super::embedded_pg`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use vnext_app::engine::{Databases, Engine, EngineDeps, EngineSettings, SystemClock};
use vnext_execution::{HttpClients, LocalExecutor, Scheduler, SchedulerConfig};
use vnext_core::ident::DomainName;
use vnext_core::model::ComponentKind;
use vnext_init::bootstrap::{self, InitOptions, InitReport};
use vnext_init::config::Config;
use vnext_init::package::{FileStatus, PublishProgress};

use super::app;
use super::embedded_pg::{self, Cluster};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides app.listen), e.g. 127.0.0.1:0 for any free port.
    #[arg(long)]
    pub listen: Option<String>,
    /// Component folder to publish (overrides runtime.flows_dir).
    #[arg(long)]
    pub flows: Option<PathBuf>,
    /// Wipe the private PostgreSQL cluster (runtime.data_dir) and start with an empty one.
    #[arg(long)]
    pub fresh: bool,
    /// Loopback address of the callback echo that sample HTTP tasks can call
    /// (docs/samples.md); port 0 picks a free one.
    #[arg(long, default_value = super::echo::DEFAULT_LISTEN)]
    pub echo_listen: String,
    /// Do not serve the callback echo.
    #[arg(long)]
    pub no_echo: bool,
}

pub fn run(config_path: Option<&Path>, args: Args) -> ExitCode {
    let Some(mut config) = app::load_config(config_path) else { return ExitCode::from(2) };
    if let Some(listen) = args.listen {
        config.app.listen = listen;
    }
    if let Some(flows) = args.flows {
        config.runtime.flows_dir = flows;
    }
    let runtime = app::runtime();
    let cluster = match runtime.block_on(embedded_pg::prepare(&mut config, args.fresh)) {
        Ok(cluster) => cluster,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let echo = (!args.no_echo).then_some(args.echo_listen);
    let code = runtime.block_on(async move {
        let Some(databases) = app::connect(&config).await else { return ExitCode::FAILURE };

        println!("vnext up: preparing databases and publishing {}", config.runtime.flows_dir.display());
        let options = InitOptions { dir: Some(config.runtime.flows_dir.clone()), ..InitOptions::default() };
        let options = if config.runtime.flows_dir.exists() { options } else { InitOptions { dir: None, ..options } };
        let report = match bootstrap::run(&databases, &options, print_failures).await {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: initialisation failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let problems = report.problems();
        for p in &problems {
            eprintln!("warning: {p}");
        }
        print_published(&report);

        let shutdown = CancellationToken::new();
        super::signals::spawn_signal_handler(shutdown.clone(), "requests, tasks and jobs");
        let running = match serve(config, databases.clone(), shutdown.clone()).await {
            Ok(running) => running,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        };
        let (api, scheduler) = (running.api, running.scheduler);
        let base = format!("http://{}", api.addr);
        println!();
        println!("vnext is up. API: {base}/api/v1   (health: {base}/health, metrics: {base}/metrics)");
        if let Some(listen) = echo {
            match super::echo::start(&listen, shutdown.clone()).await {
                Ok(addr) => println!("Callback echo for sample HTTP tasks: http://{addr}/callback (answers any path with 200)"),
                Err(e) => eprintln!("warning: no callback echo: {e} (choose another address with --echo-listen)"),
            }
        }
        match first_workflow(&databases, &report).await {
            Some((domain, flow)) => {
                println!("Try:");
                println!("  curl -s {base}/api/v1/{domain}/workflows/{flow}/instances");
                println!("  (start and drive instances: README.md, docs/samples.md; every endpoint: docs/api.md)");
            }
            None => {
                println!("Try:");
                println!("  curl -s {base}/health");
                println!("  (no workflow is published yet: POST one component to {base}/api/v1/definitions/publish)");
            }
        }
        println!("Press Ctrl-C to stop.");
        let code = api.wait(&shutdown).await;
        let _ = scheduler.await;
        code
    });
    // Every connection is closed before the private cluster stops.
    drop(runtime);
    match cluster.map(Cluster::stop) {
        Some(Err(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Some(Ok(())) => {
            eprintln!("private PostgreSQL stopped");
            code
        }
        None => code,
    }
}


/// The API and the scheduler of a runtime started by [`serve`].
pub struct Running {
    pub api: app::RunningApi,
    pub scheduler: tokio::task::JoinHandle<()>,
}

/// Binds the API (`app.listen`; port 0 picks one), builds the engine with the
/// in-process executor, and starts the job scheduler and the API until `shutdown`.
///
/// # Errors
/// A message when the listener cannot be bound or the executor not built.
pub async fn serve(mut config: Config, databases: Databases, shutdown: CancellationToken) -> Result<Running, String> {
    config.check_exposed_secrets().map_err(|e| e.to_string())?;
    app::check_auth(&config.app.listen, &databases).await?;
    // Bind first: instance tasks call this API, so its address must be known
    // before the executor is built.
    let listener = app::bind(&config.app.listen).await?;
    if let Ok(addr) = listener.local_addr()
        && config.app.listen.ends_with(":0")
    {
        config.app.url = format!("http://{addr}");
    }
    // The scheduler fires in this process, so nothing here needs the internal
    // endpoint; it is served on a free loopback port (unless configured) for an
    // extra `vnext execution` process, and its port is one the egress guard denies.
    let internal_listen = if config.is_set("app.internal_listen") { config.app.internal_listen.clone() } else { "127.0.0.1:0".to_string() };
    let internal = app::bind(&internal_listen).await?;
    if let Ok(addr) = internal.local_addr() {
        config.app.internal_listen = addr.to_string();
        config.app.internal_url = format!("http://{addr}");
    }
    let executor = LocalExecutor::from_config(&config, HttpClients::new())?;
    let engine = Engine::new(EngineDeps { databases: databases.clone(), executor: Arc::new(executor), clock: Arc::new(SystemClock), settings: EngineSettings::from_config(&config) });
    // Timers, timeouts, retries, async transitions and lease recovery, fired
    // through the engine in this process.
    let scheduler = Scheduler::new(Arc::new(databases), engine.trigger(), SchedulerConfig::from_config(&config));
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
    app::start_internal(internal, engine.clone(), shutdown.clone())?;
    let api = app::start_api(listener, engine, shutdown)?;
    Ok(Running { api, scheduler })
}

/// Everything `vnext up` does, for callers in this binary (the benchmark): init
/// (provision, migrate, publish `runtime.flows_dir` when it exists), then [`serve`].
///
/// # Errors
/// A message saying what failed.
pub async fn launch(config: Config, shutdown: CancellationToken) -> Result<std::net::SocketAddr, String> {
    let databases = Databases::connect(&config).await.map_err(|e| e.to_string())?;
    let dir = config.runtime.flows_dir.exists().then(|| config.runtime.flows_dir.clone());
    let options = InitOptions { dir, ..InitOptions::default() };
    let report = bootstrap::run(&databases, &options, |_| {}).await.map_err(|e| e.to_string())?;
    if let Some(problem) = report.problems().first() {
        return Err(format!("initialisation: {problem}"));
    }
    let running = serve(config, databases, shutdown).await?;
    Ok(running.api.addr)
}

/// Publishing progress: only what failed (the summary follows).
fn print_failures(p: &PublishProgress) {
    if let FileStatus::Failed(reason) = &p.status {
        eprintln!("  FAILED  {}: {reason}", p.path);
    }
}

fn print_published(report: &InitReport) {
    let domains: Vec<&str> = report.domains.iter().map(|d| d.domain.as_str()).collect();
    match &report.publish {
        Some(Ok(p)) => println!(
            "  domains: {}; components: {} published, {} unchanged",
            if domains.is_empty() { "none".to_string() } else { domains.join(", ") },
            p.created.len(),
            p.unchanged.len()
        ),
        Some(Err(_)) => println!("  domains: {}; some components could not be published (see above)", domains.join(", ")),
        None => println!("  domains: {}; no component folder to publish", if domains.is_empty() { "none".into() } else { domains.join(", ") }),
    }
}

/// The first published workflow of the first domain, for the example request.
async fn first_workflow(databases: &Databases, report: &InitReport) -> Option<(String, String)> {
    for d in &report.domains {
        let Ok(domain) = DomainName::new(&d.domain) else { continue };
        let Ok(pool) = databases.domain(&domain).await else { continue };
        let Ok(inventory) = vnext_init::components::inventory(&pool).await else { continue };
        let key = inventory.into_iter().filter(|(kind, ..)| *kind == ComponentKind::Workflow).map(|(_, _, key, _)| key).min();
        if let Some(key) = key {
            return Some((d.domain.clone(), key));
        }
    }
    None
}
