//! `vnext app`: the orchestration service alone (the REST API and the pipeline).
//!
//! Tasks with external I/O go to the execution service (`execution.url`); the
//! execution service fires timers and async transitions back through this
//! service's internal endpoint, served on a listener of its own
//! (`app.internal_listen`, reached as `app.internal_url`). Both authenticate
//! with `execution.shared_secret`.
//!
//! Also home of what `vnext up` shares with it: loading the configuration,
//! connecting with a readable error, the signal handling, and serving the API.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vnext_app::engine::{Databases, Engine, EngineDeps, EngineSettings, SystemClock};
use vnext_app::server::{Server, ServerConfig};
use vnext_execution::{HttpClients, RemoteExecutor};
use vnext_init::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides app.listen), e.g. 0.0.0.0:4201.
    #[arg(long)]
    pub listen: Option<String>,
}

pub fn run(config_path: Option<&Path>, args: Args) -> ExitCode {
    let Some(mut config) = load_config(config_path) else { return ExitCode::from(2) };
    if let Some(listen) = args.listen {
        config.app.listen = listen;
    }
    if let Err(e) = config.check_exposed_secrets() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    runtime().block_on(async move {
        // Tasks with external I/O run in the execution service.
        let executor = match RemoteExecutor::from_config(&config, &HttpClients::new()) {
            Ok(executor) => executor,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        };
        let Some(databases) = connect(&config).await else { return ExitCode::FAILURE };
        let shutdown = CancellationToken::new();
        super::signals::spawn_signal_handler(shutdown.clone(), "requests");
        let engine = Engine::new(EngineDeps {
            databases,
            executor: Arc::new(executor),
            clock: Arc::new(SystemClock),
            settings: EngineSettings::from_config(&config),
        });
        if let Err(message) = check_auth(&config.app.listen, engine.databases()).await {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
        let listener = match bind(&config.app.listen).await {
            Ok(listener) => listener,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        };
        let internal = match bind(&config.app.internal_listen).await {
            Ok(listener) => listener,
            Err(message) => {
                eprintln!("error: {message} (app.internal_listen)");
                return ExitCode::FAILURE;
            }
        };
        let internal = match start_internal(internal, engine.clone(), shutdown.clone()) {
            Ok(addr) => addr,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        };
        let api = match start_api(listener, engine, shutdown.clone()) {
            Ok(api) => api,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        };
        println!("vnext app: API listening on http://{}", api.addr);
        println!("  internal trigger endpoint on http://{internal} (app.internal_url of the execution service)");
        println!("  tasks with external I/O go to the execution service at {}", config.execution.url);
        println!("  health: curl -s http://{}/health", api.addr);
        api.wait(&shutdown).await
    })
}

/// Loads the configuration, printing what is wrong when it cannot.
pub(super) fn load_config(path: Option<&Path>) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("  every setting is described in docs/configuration.md");
            None
        }
    }
}

/// A multi-threaded runtime for a service.
pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("cannot start the async runtime")
}

/// Connects to the control database, or says why not and how to fix it.
pub(super) async fn connect(config: &Config) -> Option<Databases> {
    match Databases::connect(config).await {
        Ok(databases) => Some(databases),
        Err(e) => {
            eprintln!("error: {e}");
            // An unreachable server's message already says how to start one.
            if !matches!(e, vnext_init::db::DbError::Unreachable { .. }) {
                eprintln!("  check database.url ({}) or VNEXT_DATABASE__URL", redact(&config.database.url));
            }
            None
        }
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}


/// The API running in the background.
pub struct RunningApi {
    pub addr: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` (`host:port`; port 0 picks a free port).
pub(super) async fn bind(listen: &str) -> Result<TcpListener, String> {
    TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))
}

/// Refuses to serve without authentication beyond loopback (before binding);
/// logs the one WARN line of an open loopback run (see `vnext_app::api::auth`).
pub(super) async fn check_auth(listen: &str, databases: &vnext_init::db::Databases) -> Result<(), String> {
    vnext_app::api::auth::check_startup(databases, listen).await.map(|_| ())
}

/// Starts serving the API on `listener`.
pub fn start_api(listener: TcpListener, engine: Engine, shutdown: CancellationToken) -> Result<RunningApi, String> {
    let config = ServerConfig::new(engine, shutdown);
    let (addr, serve) = Server::serve(listener, config).map_err(|e| e.to_string())?;
    let server = tokio::spawn(serve);
    Ok(RunningApi { addr, server })
}

/// Serves the internal trigger endpoint on `listener` in the background,
/// until `shutdown`; returns its address.
pub fn start_internal(listener: TcpListener, engine: Engine, shutdown: CancellationToken) -> Result<SocketAddr, String> {
    let config = ServerConfig::new(engine, shutdown);
    let (addr, serve) = Server::serve_internal(listener, config).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = serve.await {
            eprintln!("error: the internal endpoint's server failed: {e}");
        }
    });
    Ok(addr)
}

impl RunningApi {
    /// Runs until shutdown completes; a server failure cancels `shutdown` too.
    pub async fn wait(self, shutdown: &CancellationToken) -> ExitCode {
        let result = self.server.await;
        shutdown.cancel();
        match result {
            Ok(Ok(())) => {
                eprintln!("stopped");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                eprintln!("error: the API server failed: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: the API server stopped unexpectedly: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
