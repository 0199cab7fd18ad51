//! `vnext instances list|start|get|history|transition|retry`: one workflow's
//! instances over the REST API.

use std::path::Path;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::Remote;
use super::http::{Answer, Failure};
use super::output::{self, cell, field, status_name, time};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: InstancesCommand,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, clap::Subcommand)]
pub enum InstancesCommand {
    /// List a workflow's instances, newest first, a page at a time.
    List(ListArgs),
    /// Start an instance.
    Start(StartArgs),
    /// Show one instance: where it is, its status and its data.
    Get(InstanceRef),
    /// The transitions an instance went through, with their task runs.
    History(InstanceRef),
    /// Run a transition on an instance.
    Transition(TransitionArgs),
    /// Run a faulted instance's failed transition again.
    Retry(RetryArgs),
}

#[derive(Debug, clap::Args)]
pub struct Workflow {
    /// The domain.
    pub domain: String,
    /// The workflow's key.
    pub workflow: String,
}

#[derive(Debug, clap::Args)]
pub struct InstanceRef {
    #[command(flatten)]
    pub workflow: Workflow,
    /// The instance's id (UUID) or its key.
    pub instance: String,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub workflow: Workflow,
    /// Only instances with this status: a code (A, B, C, F, P) or its name (Active, …).
    #[arg(long)]
    pub status: Option<String>,
    /// A filter as the API takes it, e.g. '{"currentState":{"eq":"draft"}}' (docs/api.md, Filters).
    #[arg(long)]
    pub filter: Option<String>,
    /// Sort, e.g. `-createdAt` or `attributes.amount:desc`.
    #[arg(long)]
    pub sort: Option<String>,
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// Instances per page, 1–100 [default: the server's, `app.default_page_size`].
    #[arg(long)]
    pub page_size: Option<u32>,
}

/// The payload and how to run it, shared by start and transition.
#[derive(Debug, clap::Args)]
pub struct Run {
    /// The payload (the transition's `attributes`): JSON text, `@file.json`, or `@-` for stdin.
    #[arg(long, value_name = "JSON|@FILE")]
    pub data: Option<String>,
    /// Wait until the run has committed (`sync=true`) and show where the instance is.
    #[arg(long)]
    pub sync: bool,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub workflow: Workflow,
    /// The new instance's key (starting with a key that exists returns that instance).
    #[arg(long, value_name = "INSTANCE_KEY")]
    pub key: Option<String>,
    #[command(flatten)]
    pub run: Run,
}

#[derive(Debug, clap::Args)]
pub struct TransitionArgs {
    #[command(flatten)]
    pub instance: InstanceRef,
    /// The transition's key.
    pub transition: String,
    #[command(flatten)]
    pub run: Run,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub instance: InstanceRef,
    /// Wait until the retried run has committed.
    #[arg(long)]
    pub sync: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> ExitCode {
    super::run(config, args.remote, |api| async move {
        match args.command {
            InstancesCommand::List(a) => {
                let query = list_query(&a)?;
                let w = &a.workflow;
                let answer = api.get(&[&w.domain, "workflows", &w.workflow, "instances"], &query).await?;
                api.show(&answer, |page| print_list(page, &a));
            }
            InstancesCommand::Start(a) => {
                let mut body = json!({ "attributes": payload(a.run.data.as_deref())? });
                if let Some(key) = &a.key {
                    body["key"] = json!(key);
                }
                let w = &a.workflow;
                let answer = api.call(Method::POST, &[&w.domain, "workflows", &w.workflow, "instances", "start"], &sync(a.run.sync), Some(&body)).await?;
                api.show(&answer, |_| print_command(&answer, w));
            }
            InstancesCommand::Get(a) => {
                let answer = api.get(&segments(&a), &[]).await?;
                api.show(&answer, print_instance);
            }
            InstancesCommand::History(a) => {
                let mut path = segments(&a);
                path.push("transitions");
                let answer = api.get(&path, &[]).await?;
                api.show(&answer, print_history);
            }
            InstancesCommand::Transition(a) => {
                let body = json!({ "attributes": payload(a.run.data.as_deref())? });
                let mut path = segments(&a.instance);
                path.extend(["transitions", a.transition.as_str()]);
                let answer = api.call(Method::PATCH, &path, &sync(a.run.sync), Some(&body)).await?;
                api.show(&answer, |_| print_command(&answer, &a.instance.workflow));
            }
            InstancesCommand::Retry(a) => {
                let mut path = segments(&a.instance);
                path.push("retry");
                let answer = api.call(Method::POST, &path, &sync(a.sync), Some(&json!({}))).await?;
                api.show(&answer, |v| {
                    output::details(vec![
                        ("id", field(v, "id")),
                        ("status", status_name(&field(v, "status"))),
                        ("retried", field(v, "retriedTransitionId")),
                    ]);
                });
            }
        }
        Ok(())
    })
}

/// `…/{domain}/workflows/{workflow}/instances/{instance}`, below `/api/v1`.
fn segments(r: &InstanceRef) -> Vec<&str> {
    vec![&r.workflow.domain, "workflows", &r.workflow.workflow, "instances", &r.instance]
}

fn sync(on: bool) -> Vec<(&'static str, String)> {
    if on { vec![("sync", "true".to_string())] } else { Vec::new() }
}

/// `--data`: JSON text, `@file`, or `@-` (stdin); none is `{}`.
fn payload(data: Option<&str>) -> Result<Value, Failure> {
    let Some(data) = data else { return Ok(json!({})) };
    let (text, origin) = match data.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| Failure::Usage(format!("--data @-: cannot read stdin: {e}")))?;
            (text, "stdin".to_string())
        }
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| Failure::Usage(format!("--data @{file}: {e}")))?;
            (text, file.to_string())
        }
        None => (data.to_string(), "--data".to_string()),
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{origin} is not JSON: {e}")))
}

/// The list's query: `--status` is AND-ed with `--filter` as JSON.
fn list_query(a: &ListArgs) -> Result<Vec<(&'static str, String)>, Failure> {
    let mut query = vec![("page", a.page.to_string())];
    if let Some(size) = a.page_size {
        query.push(("pageSize", size.to_string()));
    }
    let status = a.status.as_ref().map(|s| json!({ "status": { "eq": s } }));
    let filter = match (&a.filter, status) {
        (Some(f), None) => Some(f.clone()),
        (None, Some(s)) => Some(s.to_string()),
        (Some(f), Some(s)) => {
            let f: Value = serde_json::from_str(f)
                .map_err(|_| Failure::Usage("--status goes with a JSON --filter only; or put the status into the filter".into()))?;
            Some(json!({ "and": [f, s] }).to_string())
        }
        (None, None) => None,
    };
    if let Some(filter) = filter {
        query.push(("filter", filter));
    }
    if let Some(sort) = &a.sort {
        query.push(("sort", sort.clone()));
    }
    Ok(query)
}

fn print_list(page: &Value, a: &ListArgs) {
    let rows = output::items(page)
        .iter()
        .map(|i| {
            let meta = i.get("metadata").unwrap_or(&Value::Null);
            vec![
                field(i, "id"),
                field(i, "key"),
                field(meta, "currentState"),
                status_name(&field(meta, "status")),
                field(i, "flowVersion"),
                time(meta.get("createdAt").unwrap_or(&Value::Null)),
                time(meta.get("modifiedAt").unwrap_or(&Value::Null)),
            ]
        })
        .collect();
    let empty = if a.page > 1 { "no instances on this page" } else { "no instances" };
    output::table(&["id", "key", "state", "status", "version", "created", "modified"], rows, empty);
    let next = page.pointer("/links/next").and_then(Value::as_str).unwrap_or("");
    if !next.is_empty() {
        println!("more: --page {}", a.page + 1);
    }
}

/// A start or transition answer: where the instance is, or that it runs on.
fn print_command(answer: &Answer, w: &Workflow) {
    let v = &answer.value;
    let id = field(v, "id");
    let mut pairs = vec![("id", id.clone())];
    if !field(v, "key").is_empty() {
        pairs.push(("key", field(v, "key")));
    }
    if let Some(state) = v.pointer("/metadata/currentState") {
        pairs.push(("state", cell(state)));
    }
    let status = field(v, "status");
    pairs.push(("status", status_name(&status)));
    output::details(pairs);
    if answer.status == 202 || status == "B" {
        println!("it runs on; follow it with `vnext instances get {} {} {id}`", w.domain, w.workflow);
    }
}

fn print_instance(v: &Value) {
    let meta = v.get("metadata").unwrap_or(&Value::Null);
    let at = |name: &str| time(meta.get(name).unwrap_or(&Value::Null));
    let incident = match meta.pointer("/incident/hasActiveIncident").and_then(Value::as_bool) {
        Some(true) => "active (see `vnext incidents`)".to_string(),
        Some(false) => "none".to_string(),
        None => String::new(),
    };
    output::details(vec![
        ("id", field(v, "id")),
        ("key", field(v, "key")),
        ("domain", field(v, "domain")),
        ("workflow", format!("{} {}", field(v, "flow"), field(v, "flowVersion"))),
        ("state", field(meta, "currentState")),
        ("status", status_name(&field(meta, "status"))),
        ("created", at("createdAt")),
        ("modified", at("modifiedAt")),
        ("completed", at("completedAt")),
        ("incident", incident),
        ("data version", field(meta, "dataVersion")),
        ("tags", field(v, "tags")),
        ("eTag", field(v, "eTag")),
    ]);
    let data = v.get("attributes").cloned().unwrap_or(Value::Null);
    println!("data:");
    println!("{}", serde_json::to_string_pretty(&data).unwrap_or_default());
}

fn print_history(v: &Value) {
    let rows = v
        .get("transitions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|t| {
            let tasks = t
                .get("tasks")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|r| format!("{} {}", field(r, "taskKey"), field(r, "status")))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                field(t, "seq"),
                field(t, "transitionId"),
                field(t, "fromState"),
                field(t, "toState"),
                field(t, "triggerType"),
                time(t.get("startedAt").unwrap_or(&Value::Null)),
                t.get("durationMs").and_then(Value::as_f64).map_or_else(String::new, |ms| format!("{ms:.1}")),
                tasks,
            ]
        })
        .collect();
    output::table(&["#", "transition", "from", "to", "trigger", "started", "ms", "tasks"], rows, "no transitions");
}
