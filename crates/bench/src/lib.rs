//! `vnext bench`: measures the runtime scenario by scenario and checks the
//! performance budget (README, "Benchmarks"). The binary parses [`Args`] and
//! calls [`run`] with its way of starting the whole runtime ([`Launch`]); the
//! harness lives here so the production command line stays a thin layer.
//!
//! Without `--url` it starts the whole runtime in-process on the configured
//! PostgreSQL with its own database prefix (`vnextbench_`) and its own control
//! database, so it never touches other domains, and drops what it created at
//! the end. Each scenario sets up its own domain and components, warms up,
//! measures, and cleans up.

mod client;
mod components;
mod load;
mod raw;
mod scenarios;
mod stats;
mod target;
mod many_flows;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vnext_init::config::Config;

pub use stats::Summary;

/// Starts the whole runtime in-process with `config` (what `vnext up` runs) until
/// the token is cancelled, answering the API's address. The binary owns that
/// start-up; the harness only needs to call it when no `--url` is given.
pub type Launch = fn(Config, CancellationToken) -> BoxFuture<'static, Result<SocketAddr, String>>;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of a running runtime (default: start one in-process).
    #[arg(long)]
    pub url: Option<String>,
    /// Scenarios to run, by number (1-7) or name; default all.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// `full` runs the sizes the budget is written for; `tiny` a few iterations.
    #[arg(long, default_value = "full")]
    pub size: Size,
    /// Seconds each throughput measurement runs (full size).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent clients of the throughput runs.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Database prefix of the in-process runtime; every database with this
    /// prefix is dropped before and after the run.
    #[arg(long, default_value = "vnextbench_", hide = true)]
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    Tiny,
    Full,
}

/// One scenario's results and its budget verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub id: u8,
    pub name: &'static str,
    /// Named figures (throughput runs, single measurements).
    pub results: serde_json::Map<String, Value>,
    /// The budget line and whether it was met; `None` when the scenario has none
    /// or the size is too small to judge.
    pub budget: Option<Budget>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub rule: String,
    pub measured: String,
    pub met: bool,
}

impl ScenarioReport {
    fn new(id: u8, name: &'static str) -> Self {
        Self { id, name, results: serde_json::Map::new(), budget: None, notes: Vec::new() }
    }

    fn put(&mut self, key: &str, value: impl Serialize) {
        self.results.insert(key.to_string(), serde_json::to_value(value).unwrap_or(Value::Null));
    }
}

/// The whole run, as written by `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub size: Size,
    pub clients: usize,
    pub scenarios: Vec<ScenarioReport>,
}

pub fn run(args: Args, config: Option<PathBuf>, launch: Launch) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_async(args, config, launch)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: Args, config_path: Option<PathBuf>, launch: Launch) -> Result<(), String> {
    let report = run_report(&args, config_path, launch).await?;
    print_report(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

/// Runs the selected scenarios and returns their reports (used by the test suite
/// at `tiny` size).
///
/// # Errors
/// Set-up failures (database unreachable, runtime does not start), as text.
pub async fn run_report(args: &Args, config_path: Option<PathBuf>, launch: Launch) -> Result<Report, String> {
    let selected = select(&args.scenarios)?;
    let ctx = scenarios::Ctx::prepare(args, config_path, launch).await?;
    let mut out = Vec::new();
    for (id, name) in selected {
        if args.size == Size::Full {
            ctx.settle().await;
        }
        println!("== scenario {id}: {name}");
        let report = scenarios::run(&ctx, id).await;
        match report {
            Ok(r) => {
                print_scenario(&r);
                out.push(r);
            }
            Err(e) => {
                let mut r = ScenarioReport::new(id, name);
                r.notes.push(format!("failed: {e}"));
                println!("   failed: {e}");
                out.push(r);
            }
        }
    }
    ctx.finish().await;
    Ok(Report { size: args.size, clients: args.clients, scenarios: out })
}

/// The scenarios asked for (all when none is named), in their order; an
/// unknown number or name is refused before anything is set up.
fn select(asked: &[String]) -> Result<Vec<(u8, &'static str)>, String> {
    let known = |a: &String| scenarios::ALL.iter().any(|(id, name)| a == &id.to_string() || a == name);
    if let Some(unknown) = asked.iter().find(|a| !known(a)) {
        let names: Vec<String> = scenarios::ALL.iter().map(|(id, name)| format!("{id} ({name})")).collect();
        return Err(format!("--scenarios: no scenario `{unknown}`; known: {}", names.join(", ")));
    }
    Ok(scenarios::ALL
        .into_iter()
        .filter(|(id, name)| asked.is_empty() || asked.iter().any(|a| a == &id.to_string() || a == name))
        .collect())
}

fn print_scenario(r: &ScenarioReport) {
    for (k, v) in &r.results {
        match serde_json::from_value::<Summary>(v.clone()) {
            Ok(s) => println!("   {k:<28} {}", s.line()),
            Err(_) => println!("   {k:<28} {v}"),
        }
    }
    for n in &r.notes {
        println!("   note: {n}");
    }
    if let Some(b) = &r.budget {
        println!("   budget {}: {} -> {}", b.rule, b.measured, if b.met { "met" } else { "MISSED" });
    }
}

fn print_report(report: &Report) {
    println!("\n== summary ({:?} size, {} clients)", report.size, report.clients);
    for r in &report.scenarios {
        let verdict = match &r.budget {
            Some(b) => format!("{} ({}) {}", b.rule, b.measured, if b.met { "met" } else { "MISSED" }),
            None => "no verdict".to_string(),
        };
        println!("   {:>1} {:<18} {verdict}", r.id, r.name);
    }
}

/// Time budget of the fixed-duration runs for a size.
fn run_time(args: &Args) -> load::Stop {
    match args.size {
        Size::Full => load::Stop::After(Duration::from_secs(args.duration)),
        Size::Tiny => load::Stop::Count(args.clients.max(1) * 4),
    }
}

#[cfg(test)]
mod tests {
    use super::select;

    fn asked(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scenarios_are_picked_by_number_or_name_in_their_order() {
        assert_eq!(select(&[]).unwrap().len(), 7);
        let picked: Vec<u8> = select(&asked(&["timers", "1"])).unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(picked, [1, 5]);
    }

    #[test]
    fn an_unknown_scenario_is_refused_with_the_known_ones() {
        let err = select(&asked(&["1", "9"])).unwrap_err();
        assert!(err.contains("`9`") && err.contains("5 (timers)"), "{err}");
    }
}
