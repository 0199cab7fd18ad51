//! `vnext init`: bring every database up to this build and publish the
//! component folder.
//!
//! 1. the control schema and its migrations;
//! 2. every domain of the folder, every registered domain and every domain asked
//!    for is provisioned (names are validated before any SQL runs);
//! 3. pending flow migrations reach every existing flow schema of every domain,
//!    each schema on its own, with the outcome recorded per schema in
//!    `vnext_control.rollouts` and `sys_schemas.flow_schemas.last_error`;
//! 4. the folder is published.
//!
//! A failure in one domain or schema is recorded and the run goes on; the
//! report says what failed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use vnext_core::ident::DomainName;

use crate::db::Databases;
use crate::error::InitError;
use crate::flow_schema::{self, FlowMigrationReport};
use crate::migrate::Migrations;
use crate::package::{self, PublishProgress, PublishReport};
use crate::provision::{self, ProvisionReport};

/// What to initialise.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The component folder; `None` uses `runtime.flows_dir`, and then a missing
    /// folder is not an error (there is nothing to publish).
    pub dir: Option<PathBuf>,
    /// Domains to provision in addition to the folder's and the registered ones.
    pub domains: Vec<String>,
    pub migrations: Migrations,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions { dir: None, domains: Vec::new(), migrations: Migrations::embedded().clone() }
    }
}

/// What one domain went through.
#[derive(Debug)]
pub struct DomainInit {
    pub domain: String,
    pub provision: Result<ProvisionReport, InitError>,
    /// `None` when provisioning failed.
    pub flows: Option<Result<FlowMigrationReport, InitError>>,
}

/// What [`run`] did.
#[derive(Debug, Default)]
pub struct InitReport {
    pub domains: Vec<DomainInit>,
    /// Names that were refused before any SQL ran.
    pub invalid_domains: Vec<(String, InitError)>,
    /// The folder that was published, if any.
    pub dir: Option<PathBuf>,
    pub publish: Option<Result<PublishReport, InitError>>,
}

impl InitReport {
    /// Every failure, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.invalid_domains.iter().map(|(n, e)| format!("domain `{n}`: {e}")).collect();
        for d in &self.domains {
            if let Err(e) = &d.provision {
                out.push(format!("domain {}: provisioning failed: {e}", d.domain));
            }
            match &d.flows {
                Some(Err(e)) => out.push(format!("domain {}: flow migrations: {e}", d.domain)),
                Some(Ok(report)) => out.extend(report.failures().map(|s| {
                    format!("domain {}: flow schema {}: {}", d.domain, s.schema, s.error.as_ref().map_or("", |e| e.message.as_str()))
                })),
                None => {}
            }
        }
        if let Some(Err(e)) = &self.publish {
            out.push(e.to_string());
        }
        out
    }

    pub fn is_success(&self) -> bool {
        self.problems().is_empty()
    }
}

/// Runs the whole initialisation. Per-domain and per-schema failures are in
/// the report; only failures that stop everything are errors.
///
/// # Errors
/// The control schema cannot be prepared, the registry cannot be read, or the
/// explicitly given folder cannot be read.
pub async fn run(
    dbs: &Databases,
    options: &InitOptions,
    progress: impl FnMut(&PublishProgress),
) -> Result<InitReport, InitError> {
    let mut report = InitReport::default();
    // Names are checked before any SQL runs.
    let mut asked = Vec::new();
    for name in &options.domains {
        match DomainName::new(name) {
            Ok(d) => asked.push(d),
            Err(e) => report.invalid_domains.push((name.clone(), InitError::domain_name(e))),
        }
    }
    provision::prepare_control(dbs, &options.migrations).await?;

    let (dir, required) = match &options.dir {
        Some(dir) => (dir.clone(), true),
        None => (dbs.config().runtime.flows_dir.clone(), false),
    };
    let scan = if dir.is_dir() || required {
        Some(package::scan_folder(&dir)?)
    } else {
        tracing::info!(dir = %dir.display(), "no component folder; nothing to publish");
        None
    };

    let mut domains: BTreeSet<DomainName> = asked.into_iter().collect();
    domains.extend(provision::registered_domains(dbs).await?);
    if let Some(scan) = &scan {
        // A file with an invalid domain fails, per file, when the folder is published.
        domains.extend(scan.files.iter().filter_map(|f| DomainName::new(f.value.get("domain")?.as_str()?).ok()));
    }

    for domain in domains {
        let provisioned = provision::provision_domain_with(dbs, &domain, &options.migrations).await;
        let flows = match &provisioned {
            Ok(_) => Some(migrate_flows(dbs, &domain, &options.migrations).await),
            Err(_) => None,
        };
        report.domains.push(DomainInit { domain: domain.to_string(), provision: provisioned, flows });
    }

    if let Some(scan) = scan {
        report.dir = Some(dir);
        report.publish = Some(package::publish_scan(dbs, scan, progress).await);
    }
    Ok(report)
}

/// Migrates every flow schema of a domain and records each outcome as a rollout,
/// then tops up the domain's spare flow schemas.
async fn migrate_flows(dbs: &Databases, domain: &DomainName, migrations: &Migrations) -> Result<FlowMigrationReport, InitError> {
    let pool = dbs.domain(domain).await?;
    let report = flow_schema::migrate_flow_schemas_with(&pool, domain, migrations).await?;
    for schema in &report.schemas {
        match &schema.error {
            None => provision::record_applied(dbs, domain, &schema.schema, &schema.applied).await,
            Some(e) => provision::record_failure(dbs, domain, &schema.schema, e.migration.clone(), &e.message).await,
        }
    }
    // Spare flow schemas make the first start of a new workflow cheap.
    if let Err(e) = flow_schema::replenish_spares_with(&pool, flow_schema::SPARE_FLOW_SCHEMAS, migrations).await {
        tracing::warn!(domain = %domain, error = %e, "cannot prepare spare flow schemas; first starts create their schema themselves");
    }
    Ok(report)
}
