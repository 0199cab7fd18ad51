//! `vnext keys create|list|revoke`: API keys, managed in the control database
//! directly (like `vnext init`), so the first admin key can exist before any
//! server runs. The admin API (`/api/v1/admin/keys`) does the same over HTTP.

use std::path::Path;
use std::process::ExitCode;

use vnext_init::config::Config;
use vnext_init::db::Databases;
use vnext_init::audit::{self, AuditLog, AuditRecord};
use vnext_init::keys::{self, KeyScope, NewKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown this once only).
    Create(CreateArgs),
    /// List every key (never a secret).
    List,
    /// Revoke a key by id; it is refused from the next request on.
    Revoke {
        /// The key's id, as `vnext keys list` shows it.
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A name that says whose key it is.
    #[arg(long)]
    pub name: String,
    /// `admin`: everything, including provisioning domains and managing keys.
    #[arg(long, value_parser = ["admin"], conflicts_with = "domain", required_unless_present = "domain")]
    pub scope: Option<String>,
    /// The one domain a non-admin key is for.
    #[arg(long, requires = "grant")]
    pub domain: Option<String>,
    /// What the key may do in its domain: publish, write, read (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub grant: Vec<String>,
    /// A role of the workflow model (repeatable).
    #[arg(long = "role")]
    pub roles: Vec<String>,
}

pub fn run(config: Option<&Path>, args: Args) -> ExitCode {
    super::block_on(async move {
        let config = Config::load(config)?;
        let dbs = Databases::connect(&config).await?;
        match args.command {
            KeysCommand::Create(a) => {
                let request = match NewKey::from_parts(&a.name, a.scope.is_some(), a.domain.as_deref(), &a.grant, a.roles) {
                    Ok(request) => request,
                    Err(message) => {
                        eprintln!("error: {message}");
                        return Ok(ExitCode::from(2));
                    }
                };
                let (key, secret) = keys::create(&dbs, &request).await?;
                audit_cli(&dbs, AuditRecord::cli("key.create", key.id, 201, "ok")).await;
                println!("created key {} ({}, {})", key.id, key.name, describe(&key.scope));
                println!("secret (shown once; store it now, it cannot be read back):");
                println!("{secret}");
                Ok(ExitCode::SUCCESS)
            }
            KeysCommand::List => {
                let all = keys::list(dbs.control()).await?;
                if all.is_empty() {
                    println!("no API keys; create one with `vnext keys create --name admin --scope admin`");
                }
                for key in all {
                    let state = match key.revoked_at {
                        Some(t) => format!("revoked {}", t.format("%Y-%m-%d %H:%M:%S")),
                        None => "live".to_string(),
                    };
                    let used = key.last_used_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "never".into());
                    let roles = if key.roles.is_empty() { String::new() } else { format!(" roles={}", key.roles.join(",")) };
                    println!(
                        "{}  {}  {}{roles}  created {}  last used {used}  {state}",
                        key.id,
                        key.name,
                        describe(&key.scope),
                        key.created_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            KeysCommand::Revoke { id } => {
                let Ok(uuid) = id.trim().parse() else {
                    eprintln!("error: `{id}` is not a key id (a UUID, as `vnext keys list` shows it)");
                    return Ok(ExitCode::from(2));
                };
                let revoked = keys::revoke(dbs.control(), uuid).await?;
                let (status, outcome) = if revoked { (204, "ok") } else { (404, "key.not-found") };
                audit_cli(&dbs, AuditRecord::cli("key.revoke", uuid, status, outcome)).await;
                if revoked {
                    println!("revoked key {uuid}");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("error: no API key has id {uuid}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    })
}

/// Writes a key management step to the control audit log; a failure is
/// reported, not fatal (the step itself is done).
async fn audit_cli(dbs: &Databases, record: AuditRecord) {
    if let Err(e) = audit::record(dbs.control(), AuditLog::Control, &record).await {
        eprintln!("warning: could not write the audit log ({}): {e}", record.action);
    }
}

fn describe(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Admin => "admin".to_string(),
        KeyScope::Domain { domain, grants } => {
            format!("domain {domain}: {}", grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(","))
        }
    }
}
