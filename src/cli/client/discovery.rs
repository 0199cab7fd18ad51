//! `vnext domains` and `vnext workflows DOMAIN`: what the runtime serves.

use std::path::Path;
use std::process::ExitCode;

use super::Remote;
use super::output::{self, cell, field};

#[derive(Debug, clap::Args)]
pub struct DomainsArgs {
    #[command(flatten)]
    pub page: Paging,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, clap::Args)]
pub struct WorkflowsArgs {
    /// The domain whose workflows to list.
    pub domain: String,
    #[command(flatten)]
    pub page: Paging,
    #[command(flatten)]
    pub remote: Remote,
}

/// Both lists are paged like the instance list.
#[derive(Debug, clap::Args)]
pub struct Paging {
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// Items per page, 1–100 [default: the server's, `app.default_page_size`].
    #[arg(long)]
    pub page_size: Option<u32>,
}

impl Paging {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("page", self.page.to_string())];
        if let Some(size) = self.page_size {
            query.push(("pageSize", size.to_string()));
        }
        query
    }

    /// `more: --page N` when the answer links a next page.
    fn print_more(&self, page: &serde_json::Value) {
        if page.pointer("/links/next").and_then(serde_json::Value::as_str).is_some_and(|n| !n.is_empty()) {
            println!("more: --page {}", self.page + 1);
        }
    }
}

/// `GET /api/v1/domains`.
pub fn domains(config: Option<&Path>, args: DomainsArgs) -> ExitCode {
    super::run(config, args.remote, |api| async move {
        let answer = api.get(&["domains"], &args.page.query()).await?;
        api.show(&answer, |page| {
            let rows = output::items(page)
                .iter()
                .map(|d| vec![field(d, "domain"), field(d, "status"), field(d, "database"), field(d, "flowCount")])
                .collect();
            output::table(&["domain", "status", "database", "workflows"], rows, "no domains; publish a component folder with `vnext publish DIR`");
            args.page.print_more(page);
        });
        Ok(())
    })
}

/// `GET /api/v1/{domain}/workflows`.
pub fn workflows(config: Option<&Path>, args: WorkflowsArgs) -> ExitCode {
    super::run(config, args.remote, |api| async move {
        let answer = api.get(&[&args.domain, "workflows"], &args.page.query()).await?;
        api.show(&answer, |page| {
            let rows = output::items(page)
                .iter()
                .map(|w| {
                    let schema = match w.get("schemaExists").and_then(|v| v.as_bool()) {
                        Some(true) => "yes".to_string(),
                        Some(false) => "no".to_string(),
                        None => String::new(),
                    };
                    let instances = w.get("instances").map(output::counts_by_status).unwrap_or_default();
                    vec![field(w, "key"), field(w, "latest"), cell(w.get("versions").unwrap_or(&serde_json::Value::Null)), schema, instances]
                })
                .collect();
            output::table(&["workflow", "latest", "versions", "schema", "instances"], rows, "no workflows published in this domain");
            args.page.print_more(page);
        });
        Ok(())
    })
}
