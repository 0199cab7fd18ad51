//! `vnext app`: the orchestration service alone (the REST API and the pipeline).
//!
//! Tasks with external I/O go to the execution service (`execution.url`); the
//! execution service fires timers and async transitions back through this
//! service's internal endpoint. Both authenticate with `execution.shared_secret`.
//!
//! Also home of what `vnext up` shares with it: loading the configuration,
//! connecting with a readable error, the signal handling, and serving the API.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vnext_app::engine::{Databases, Engine};
use vnext_app::server::{Server, ServerConfig};
use vnext_core::traits::{TaskError, TaskExecutor, TaskInvocation, TaskResponse};
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
    runtime().block_on(async move {
        let Some(databases) = connect(&config).await else { return ExitCode::FAILURE };
        let shutdown = CancellationToken::new();
        spawn_signal_handler(shutdown.clone());
        let engine = Engine::new(vnext_app::engine::EngineDeps {
            databases,
            executor: remote_executor(&config),
            clock: Arc::new(vnext_app::engine::SystemClock),
        });
        let api = match start_api(engine, shutdown.clone()).await {
            Ok(api) => api,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        };
        println!("vnext app: API listening on http://{}", api.addr);
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

/// First Ctrl-C or SIGTERM: cancel `token` (graceful shutdown). Second: exit now.
pub(super) fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("shutting down: finishing requests in flight (press Ctrl-C again to exit at once)");
        token.cancel();
        wait_for_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The API running in the background.
pub(super) struct RunningApi {
    pub addr: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
    listener: JoinHandle<()>,
}

/// Binds the API (`app.listen`) and starts serving it, with the listener that
/// drops cached definitions when any process publishes.
pub(super) async fn start_api(engine: Engine, shutdown: CancellationToken) -> Result<RunningApi, String> {
    let (addr, serve) = Server::bind(ServerConfig::new(engine.clone(), shutdown.clone())).await.map_err(|e| e.to_string())?;
    let server = tokio::spawn(serve);
    let listener = tokio::spawn(engine.listen_for_publish(shutdown));
    Ok(RunningApi { addr, server, listener })
}

impl RunningApi {
    /// Runs until shutdown completes; a server failure cancels `shutdown` too.
    pub(super) async fn wait(self, shutdown: &CancellationToken) -> ExitCode {
        let result = self.server.await;
        shutdown.cancel();
        let _ = self.listener.await;
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

/// How `vnext app` runs tasks with external I/O.
fn remote_executor(config: &Config) -> Arc<dyn TaskExecutor> {
    Arc::new(UnavailableExecutor { execution_url: config.execution.url.clone() })
}

/// Stands in for the execution service's client: every I/O task fails with an
/// error that says so (the error boundary or an incident records it).
pub(super) struct UnavailableExecutor {
    pub execution_url: String,
}

impl TaskExecutor for UnavailableExecutor {
    fn execute(&self, invocation: TaskInvocation) -> Pin<Box<dyn Future<Output = TaskResponse> + Send + '_>> {
        Box::pin(async move {
            let error = TaskError::new(
                "Task:unavailable",
                format!(
                    "task `{}` ({:?}) needs the execution service ({}), which this build cannot call yet",
                    invocation.task_key, invocation.task_type, self.execution_url
                ),
                false,
            );
            TaskResponse { is_success: false, error: Some(error), ..TaskResponse::default() }
        })
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
