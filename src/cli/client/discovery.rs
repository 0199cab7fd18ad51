//! `vnext domains` and `vnext workflows DOMAIN`: what the runtime serves.

use std::path::Path;
use std::process::ExitCode;

use super::Remote;
use super::output::{self, cell, field};

#[derive(Debug, clap::Args)]
pub struct DomainsArgs {
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, clap::Args)]
pub struct WorkflowsArgs {
    /// The domain whose workflows to list.
    pub domain: String,
    #[command(flatten)]
    pub remote: Remote,
}

/// `GET /api/v1/domains`.
pub fn domains(config: Option<&Path>, args: DomainsArgs) -> ExitCode {
    super::run(config, args.remote, |api| async move {
        let answer = api.get(&["domains"], &[]).await?;
        api.show(&answer, |page| {
            let rows = output::items(page)
                .iter()
                .map(|d| vec![field(d, "domain"), field(d, "status"), field(d, "database"), field(d, "flowCount")])
                .collect();
            output::table(&["domain", "status", "database", "workflows"], rows, "no domains; publish a component folder with `vnext publish DIR`");
        });
        Ok(())
    })
}

/// `GET /api/v1/{domain}/workflows`.
pub fn workflows(config: Option<&Path>, args: WorkflowsArgs) -> ExitCode {
    super::run(config, args.remote, |api| async move {
        let answer = api.get(&[&args.domain, "workflows"], &[]).await?;
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
        });
        Ok(())
    })
}
