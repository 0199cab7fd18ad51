//! The client verbs: `vnext domains`, `vnext workflows`, `vnext instances …`,
//! `vnext incidents`. They talk to a running API over REST (docs/api.md) and
//! print a table for people, or with `--json` the server's JSON as it came.
//!
//! Exit codes: 0 done; 1 the server answered with a problem (printed on
//! stderr); 2 the command line or a `--data` file is wrong; 3 the API could
//! not be reached.

use std::path::Path;
use std::process::ExitCode;

pub mod discovery;
mod http;
pub mod incidents;
pub mod instances;
mod output;

/// Where the API is and how to talk to it; every client verb takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Base URL of the API [default: `app.listen` of the configuration, else http://127.0.0.1:4201].
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// API key, sent as `Authorization: Bearer` (not needed by an open development run).
    #[arg(long = "api-key", env = "VNEXT_API_KEY", global = true, hide_env_values = true, value_name = "SECRET")]
    pub api_key: Option<String>,
    /// Print the server's JSON as it came instead of a table (on errors too, besides stderr).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Runs one client verb on a runtime of its own; `body` returns the exit code.
pub(crate) fn run<F, Fut>(config: Option<&Path>, remote: Remote, body: F) -> ExitCode
where
    F: FnOnce(http::Api) -> Fut,
    Fut: std::future::Future<Output = Result<(), http::Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = remote.json;
    let outcome = match http::Api::new(config, &remote) {
        Ok(api) => runtime.block_on(body(api)),
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(json),
    }
}
