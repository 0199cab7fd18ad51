//! `vnext incidents DOMAIN WORKFLOW ID [--active]`: an instance's incidents,
//! newest first (`…/incidents`, `…/incidents/active`).

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::Remote;
use super::output::{self, field, time};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The domain.
    pub domain: String,
    /// The workflow's key.
    pub workflow: String,
    /// The instance's id (UUID) or its key.
    pub instance: String,
    /// Only incidents not resolved yet.
    #[arg(long)]
    pub active: bool,
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// Incidents per page, 1–100.
    #[arg(long)]
    pub page_size: Option<u32>,
    #[command(flatten)]
    pub remote: Remote,
}

pub fn run(config: Option<&Path>, args: Args) -> ExitCode {
    super::run(config, args.remote, |api| async move {
        let mut path = vec![args.domain.as_str(), "workflows", &args.workflow, "instances", &args.instance, "incidents"];
        if args.active {
            path.push("active");
        }
        let mut query = vec![("page", args.page.to_string())];
        if let Some(size) = args.page_size {
            query.push(("pageSize", size.to_string()));
        }
        let answer = api.get(&path, &query).await?;
        api.show(&answer, |page| {
            let rows = output::items(page)
                .iter()
                .map(|i| {
                    let resolved = match i.get("resolved").and_then(Value::as_bool) {
                        Some(true) => format!("resolved {}", time(i.get("resolvedAt").unwrap_or(&Value::Null))).trim_end().to_string(),
                        _ => "open".to_string(),
                    };
                    vec![
                        time(i.get("createdAt").unwrap_or(&Value::Null)),
                        field(i, "errorCode"),
                        field(i, "state"),
                        field(i, "transition"),
                        field(i, "task"),
                        field(i, "retryCount"),
                        resolved,
                        field(i, "message"),
                    ]
                })
                .collect();
            let empty = if args.active { "no open incidents" } else { "no incidents" };
            output::table(&["created", "code", "state", "transition", "task", "retries", "resolved", "message"], rows, empty);
            let pages = page.pointer("/pagination/totalPages").and_then(Value::as_i64).unwrap_or(0);
            if i64::from(args.page) < pages {
                println!("more: --page {}", args.page + 1);
            }
        });
        Ok(())
    })
}
