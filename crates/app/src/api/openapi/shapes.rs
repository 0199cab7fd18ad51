//! Schemas of the answers and bodies that handlers build as JSON values
//! (`serde_json::json!`) rather than from a typed struct, as docs/api.md
//! ("Shapes", the endpoint table) describes them. They only describe: no
//! handler serializes them, so a member a handler adds must be added here too
//! (the schemathesis test in `tests/it/api_schemathesis.rs` checks answers
//! against these schemas). Members whose presence depends on the data are
//! left out of `required`; the objects stay open (no `additionalProperties:
//! false`), as the engine's wire format may grow.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// A start, transition or retry body: vNext's standard payload. A JSON
/// object that is not in this shape is taken whole as `attributes`; the
/// header `x-vnext-payload-mode: standard|raw` forces either reading. An
/// empty body is `{}`.
#[derive(Serialize, ToSchema)]
pub struct CommandBody {
    /// Names the instance on start (an existing key returns that instance);
    /// sets the key of a transition's instance when it has none. `""` is no key.
    #[schema(max_length = 100)]
    pub key: Option<String>,
    pub tags: Option<Vec<String>>,
    /// The payload the transition's schema validates, merged into the instance data.
    pub attributes: Option<Map<String, Value>>,
}

/// The retry answer (always 200).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryAnswer {
    pub id: Uuid,
    /// The instance's status code (`A`, `B`, `C`, `F`, `P`).
    pub status: String,
    /// The key of the faulted transition that was re-run (`""` when none is known).
    pub retried_transition_id: String,
}

/// `{href}`.
#[derive(Serialize, ToSchema)]
pub struct Link {
    pub href: String,
}

/// `POST /api/v1/definitions/publish` answer (201 created, 200 unchanged).
#[derive(Serialize, ToSchema)]
pub struct PublishAnswer {
    pub key: String,
    pub version: String,
    pub domain: String,
    /// The component flow (`sys-flows`, `sys-tasks`, `sys-schemas`, `sys-views`, `sys-functions`, `sys-extensions`).
    pub flow: String,
    #[schema(pattern = "^(created|unchanged)$")]
    pub outcome: String,
    /// Where the stored text is read back (also the `Location` header).
    pub href: String,
    /// Fields the model does not know (code `component.unknown-field`).
    pub warnings: Vec<Diagnostic>,
}

/// One finding of component validation.
#[derive(Serialize, ToSchema)]
pub struct Diagnostic {
    /// JSON pointer into the document.
    pub pointer: String,
    pub message: String,
    /// Stable code of the finding (e.g. `component.unknown-field`).
    pub code: String,
}

/// `POST /api/v1/definitions/validate` answer.
#[derive(Serialize, ToSchema)]
pub struct ValidateAnswer {
    pub valid: bool,
    pub diagnostics: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// `GET /api/v1/definitions/re-initialize` answer.
#[derive(Serialize, ToSchema)]
pub struct ReinitializeAnswer {
    pub reinitialized: bool,
}

/// `GET /health` answer.
#[derive(Serialize, ToSchema)]
pub struct HealthAnswer {
    /// Always `ok`.
    pub status: String,
    /// The app's version.
    pub version: String,
}

/// `GET /ready` answer.
#[derive(Serialize, ToSchema)]
pub struct ReadyAnswer {
    /// Always `ready`.
    pub status: String,
    /// Always `ok`.
    pub database: String,
}

/// `POST /api/v1/admin/keys` body: either `{"name", "scope": "admin"}` or
/// `{"name", "domain", "grants", "roles"}`. Unknown members are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub name: String,
    /// `admin` or `domain` (the default).
    pub scope: Option<String>,
    /// The domain a domain key is for.
    pub domain: Option<String>,
    /// `publish`, `write`, `read`.
    pub grants: Option<Vec<String>>,
    /// Roles the workflow model's `roles` and `queryRoles` are checked against.
    pub roles: Option<Vec<String>>,
}

/// An API key as the admin API shows it (never its secret, but in the create answer).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// `admin` or `domain`.
    pub scope: String,
    pub domain: Option<String>,
    pub grants: Vec<String>,
    pub roles: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Only in the create answer: the key itself, shown this once.
    pub secret: Option<String>,
}

/// `GET /api/v1/admin/keys` answer.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<ApiKey>,
}

/// One row of an audit log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `key:<id>`, `jwt:<subject>`, `header:<subject>`, `open`, `anonymous` or `cli`.
    pub caller: String,
    pub key_id: Option<Uuid>,
    pub roles: Vec<String>,
    /// `definition.publish`, `instance.start`, `instance.transition`, `instance.retry`, `key.create`, `key.revoke` or `call`.
    pub action: String,
    pub method: String,
    /// The route template.
    pub route: String,
    pub domain: Option<String>,
    /// Identifiers of what the call was about.
    pub target: Map<String, Value>,
    pub status: u16,
    /// `ok`, or the answer's error code.
    pub outcome: String,
    pub trace_id: Option<String>,
    pub duration_ms: Option<f64>,
}

/// An audit log page, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub items: Vec<AuditRow>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// `{hasView, loadData, href}` of the state function.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewLink {
    pub has_view: bool,
    pub load_data: bool,
    pub href: String,
}

/// `{hasSchema, href}` of a transition in the state function.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaLink {
    pub has_schema: bool,
    pub href: String,
}

/// A transition the client may call now, or an armed timer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateTransition {
    pub name: String,
    /// `stateTransition`, `sharedTransition`, `cancel`, `exit`, `updateData`;
    /// `scheduled` and `$timeout` for timers.
    pub kind: String,
    pub href: String,
    pub schema: Option<SchemaLink>,
    pub view: Option<ViewLink>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub labels: Option<Value>,
    /// `{key}` of the target state.
    #[schema(value_type = Option<Object>)]
    pub target: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub annotations: Option<Value>,
    /// Timers only: when it fires.
    pub execute_at_utc: Option<chrono::DateTime<chrono::Utc>>,
}

/// `{hasFunctions, href}` of the state function.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionsLink {
    pub has_functions: bool,
    pub href: String,
}

/// `interaction` of the state function: whether to keep long-polling.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    pub terminate_long_poll: bool,
    pub fallback_timeout_seconds: u64,
    pub ack: Link,
}

/// `incident` of the state function.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentLink {
    pub has_active_incident: bool,
    pub active: Option<Link>,
    pub history: Link,
}

/// The state function: where the instance is and what a client may do now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateFunction {
    pub data: Link,
    pub view: ViewLink,
    pub master: Link,
    pub state: String,
    pub state_type: String,
    pub state_sub_type: String,
    /// Status code (`A`, `B`, `C`, `F`, `P`).
    pub status: String,
    /// The subflow children not completed yet.
    #[schema(value_type = Vec<Object>)]
    pub active_correlations: Vec<Value>,
    /// The subflow children the instance started.
    #[schema(value_type = Vec<Object>)]
    pub correlations: Vec<Value>,
    pub transitions: Vec<StateTransition>,
    pub functions: FunctionsLink,
    pub interaction: Interaction,
    pub incident: IncidentLink,
    #[serde(rename = "eTag")]
    pub etag: String,
    pub entity_etag: String,
}

/// The view function: the current state's (or a transition's) view.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewFunction {
    pub key: String,
    /// An object for Json and DeepLink views, else text.
    pub content: Value,
    /// `Json`, `Html`, `Markdown`, `DeepLink`, `Http`, `Urn`.
    #[serde(rename = "type")]
    pub view_type: Value,
    pub display: Value,
    pub label: String,
    pub renderer: Option<Value>,
    pub version: String,
    pub load_data: bool,
    /// When the binding loads data: the instance data.
    pub data: Option<Value>,
}

/// The schema function: a transition's JSON Schema (or the workflow's master schema).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaFunction {
    pub key: String,
    #[serde(rename = "type")]
    pub schema_type: Value,
    /// The JSON Schema.
    pub schema: Value,
    pub labels: Value,
    #[serde(rename = "eTag")]
    pub etag: String,
    pub transition_key: Option<String>,
    pub version: String,
}

/// One function the workflow references.
#[derive(Serialize, ToSchema)]
pub struct CatalogEntry {
    pub name: String,
    pub version: Value,
    /// `I` (instance), `F` (workflow) or `D` (domain).
    pub scope: Value,
    pub href: String,
}

/// The catalog function.
#[derive(Serialize, ToSchema)]
pub struct Catalog {
    pub functions: Vec<CatalogEntry>,
}

/// The authorize function (200 when allowed, 403 when not).
#[derive(Serialize, ToSchema)]
pub struct Authorization {
    pub allowed: bool,
}

/// A transition in a workflow summary.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryTransition {
    pub key: String,
    /// The state it leaves (null for shared, cancel, exit, update-data and timeout transitions without one).
    pub from: Option<String>,
    pub target: Option<String>,
    /// `manual`, `automatic`, `scheduled`, `event`.
    pub trigger_type: String,
    /// `start`, `state`, `shared`, `cancel`, `exit`, `updateData`, `timeout`.
    pub scope: String,
    /// Shared transitions: the states they are offered in.
    pub available_in: Option<Vec<String>>,
}

/// A state in a workflow summary.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryState {
    pub key: String,
    /// `initial`, `intermediate`, `finish`, `subFlow`, `wizard`.
    #[serde(rename = "type")]
    pub state_type: String,
    /// The subflow's reference (`{key, domain, flow, version}` or `{ref}`), when it starts one.
    #[schema(value_type = Option<Object>)]
    pub sub_flow: Option<Value>,
}

/// `GET /api/v1/{domain}/workflows/{workflow}` answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    pub domain: String,
    pub key: String,
    /// The version summarised.
    pub version: String,
    pub latest: String,
    pub versions: Vec<String>,
    /// The workflow's `type`.
    #[serde(rename = "type")]
    pub flow_type: Value,
    pub start_transition: SummaryTransition,
    pub states: Vec<SummaryState>,
    pub transitions: Vec<SummaryTransition>,
    /// References of every task the workflow runs.
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<Value>,
}
