//! Which domains the scheduler serves, and how it reaches their databases.

use futures::future::BoxFuture;
use sqlx::PgPool;
use vnext_core::ident::DomainName;
use vnext_init::db::Databases;
use vnext_init::provision::active_domains;

/// A domain list or pool could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where the scheduler finds domains and their pools.
pub trait DomainSource: Send + Sync + 'static {
    /// Every domain whose jobs should run.
    fn domains(&self) -> BoxFuture<'_, Result<Vec<DomainName>, SourceError>>;
    /// The pool of one domain's database. Called on every round, so a source
    /// may hand out a fresh pool after the previous one was closed.
    fn pool<'a>(&'a self, domain: &'a DomainName) -> BoxFuture<'a, Result<PgPool, SourceError>>;
}

/// Every domain of the control database's registry whose provisioning finished
/// (before that its job table may not exist yet).
impl DomainSource for Databases {
    fn domains(&self) -> BoxFuture<'_, Result<Vec<DomainName>, SourceError>> {
        Box::pin(async move { active_domains(self).await.map_err(|e| SourceError(e.to_string())) })
    }

    fn pool<'a>(&'a self, domain: &'a DomainName) -> BoxFuture<'a, Result<PgPool, SourceError>> {
        Box::pin(async move { self.domain(domain).await.map_err(|e| SourceError(e.to_string())) })
    }
}

/// A fixed set of domains with their pools (embedding, tests).
#[derive(Debug, Clone, Default)]
pub struct StaticDomains {
    domains: Vec<(DomainName, PgPool)>,
}

impl StaticDomains {
    pub fn new(domains: Vec<(DomainName, PgPool)>) -> Self {
        Self { domains }
    }

    pub fn single(domain: DomainName, pool: PgPool) -> Self {
        Self { domains: vec![(domain, pool)] }
    }
}

impl DomainSource for StaticDomains {
    fn domains(&self) -> BoxFuture<'_, Result<Vec<DomainName>, SourceError>> {
        Box::pin(async move { Ok(self.domains.iter().map(|(d, _)| d.clone()).collect()) })
    }

    fn pool<'a>(&'a self, domain: &'a DomainName) -> BoxFuture<'a, Result<PgPool, SourceError>> {
        Box::pin(async move {
            self.domains
                .iter()
                .find(|(d, _)| d == domain)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| SourceError(format!("unknown domain `{domain}`")))
        })
    }
}
