//! Path, query and header parameters of the document, shared by the handlers'
//! `#[utoipa::path]` annotations. The handlers read them with `Params` and
//! `ApiPath` (which report bad values as 400 problems); these types only
//! describe them.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `/api/v1/{domain}/…`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DomainPath {
    /// The domain (a provisioned business domain).
    pub domain: String,
}

/// `/api/v1/{domain}/workflows/{workflow}/…`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkflowPath {
    /// The domain (a provisioned business domain).
    pub domain: String,
    /// The workflow's key.
    pub workflow: String,
}

/// `/api/v1/{domain}/workflows/{workflow}/instances/{instance}/…`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InstancePath {
    /// The domain (a provisioned business domain).
    pub domain: String,
    /// The workflow's key.
    pub workflow: String,
    /// The instance's id (a UUID) or its key.
    pub instance: String,
}

/// `?sync=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// Run inside the request and answer 200 once committed (`true`), or
    /// record the work and answer 202 (`false`, the default). A transition's
    /// `executionType` overrides it.
    pub sync: Option<bool>,
}

/// `?sync=&version=` of a start.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// As for a transition: 200 when run inside the request, 202 when accepted.
    pub sync: Option<bool>,
    /// The workflow version: exact (`1.2.3`), a major (`1`), a major.minor (`1.2`) or `latest` (the default).
    pub version: Option<String>,
}

/// `?version=` of a component read-back.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComponentVersionQuery {
    /// Exact (`1.2.3`), a major (`1`), a major.minor (`1.2`) or `latest` (the default).
    pub version: Option<String>,
}

/// `?strict=` of a publish.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StrictQuery {
    /// Refuse fields the model does not know, like errors.
    pub strict: Option<bool>,
}

/// The instance list's query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// A JSON filter (`{"status":{"eq":"A"}}`) or the text form (`status=eq:A`);
    /// repeat to AND several. See docs/api.md, "Filters and sorting".
    pub filter: Option<Vec<String>>,
    #[param(minimum = 1, maximum = 1000)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// JSON (`{"field":"createdAt","direction":"desc"}`) or text (`-createdAt`, `key desc`).
    pub sort: Option<String>,
    /// As `sort`; wins over it.
    pub order_by: Option<String>,
}

/// `?page=&pageSize=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// `?version=` of the data function.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DataVersionQuery {
    /// A data version (`1.0.2`) or its sequence number (`3`); absent: the current data.
    pub version: Option<String>,
}

/// `?transitionKey=` of the view and schema functions.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TransitionKeyQuery {
    /// A transition; absent: the current state's view, or the workflow's master schema.
    pub transition_key: Option<String>,
    /// Read as `transitionKey` when that is absent.
    pub transition: Option<String>,
}

/// The authorize function's question: exactly one of these.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeQuery {
    /// May the caller run this transition now?
    pub transition_key: Option<String>,
    /// May the caller call this function?
    pub function_key: Option<String>,
    /// May the caller read the instance?
    pub query_roles: Option<bool>,
    /// May the caller acknowledge a long-poll?
    pub ack: Option<bool>,
}

/// The query of a domain's audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    /// Rows older than this row id (the previous page's `nextBefore`).
    pub before: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// e.g. `instance.start`.
    pub action: Option<String>,
    /// An instance id or key.
    pub instance: Option<String>,
    pub key_id: Option<Uuid>,
}

/// The query of the control audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ControlAuditQuery {
    /// Rows older than this row id (the previous page's `nextBefore`).
    pub before: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub action: Option<String>,
    pub instance: Option<String>,
    pub key_id: Option<Uuid>,
    /// Rows that name this domain.
    pub domain: Option<String>,
}

/// Header `x-vnext-payload-mode`: how a command body is read.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadMode {
    /// `{key?, tags?, attributes?}`.
    Standard,
    /// The whole body is `attributes`.
    Raw,
}
