//! `{domain}/workflows/{workflow}` → the domain's pool and the workflow's schema.

use sqlx::PgPool;
use vnext_core::ident::{DomainName, FlowKey};

use crate::engine::Databases;
use crate::error::{ApiError, ErrorCode};

/// A workflow of a domain, ready to be queried.
#[derive(Clone)]
pub struct FlowScope {
    pub domain: DomainName,
    pub flow: FlowKey,
    pub pool: PgPool,
    /// False until the first instance starts (the schema is created then).
    pub has_schema: bool,
}

impl FlowScope {
    /// `"schema".table`, for SQL text.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.flow.quoted())
    }
}

/// The domain's pool.
///
/// # Errors
/// [`ErrorCode::DomainNotFound`] for unregistered domains; 503 when unreachable.
pub async fn domain_pool(databases: &Databases, domain: &DomainName) -> Result<PgPool, ApiError> {
    databases.domain(domain).await.map_err(ApiError::from)
}

/// Resolves a domain and a workflow that must have been published there.
///
/// # Errors
/// 404 `domain.not-found` / `workflow.not-found`; 503 when the database is unreachable.
pub async fn resolve(databases: &Databases, domain: DomainName, flow: FlowKey) -> Result<FlowScope, ApiError> {
    let pool = domain_pool(databases, &domain).await?;
    let (published, has_schema): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM sys_flows.components WHERE key = $1),
                EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2)",
    )
    .bind(flow.as_str())
    .bind(flow.ident())
    .fetch_one(&pool)
    .await
    .map_err(ApiError::database)?;
    if !published {
        return Err(ApiError::new(
            ErrorCode::WorkflowNotFound,
            format!("domain `{domain}` has no published workflow `{flow}`"),
        ));
    }
    Ok(FlowScope { domain, flow, pool, has_schema })
}
