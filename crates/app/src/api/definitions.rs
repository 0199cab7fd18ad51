//! Definitions: publish, validate, read back components, drop caches.
//!
//! - `POST /api/v1/definitions/publish`: one component document. It is validated
//!   against the components already published (references must resolve), its
//!   domain is provisioned when new (only for an admin key; another key gets a
//!   404 `domain.not-found`, and needs `publish` on the domain; a key or
//!   identity provisions at most `app.max_domains_per_key` domains, then 403
//!   `domain.cap-reached`; a domain named like a route of the API is a 422
//!   `domain.reserved` pointing at `/domain`), and it is stored as an immutable version:
//!   201 `created`, 200 `unchanged` (same key, version and content), 409
//!   `definition.conflict` (same key and version, other content), 422
//!   `definition.invalid` with every diagnostic and its JSON pointer. Fields the
//!   model does not know come back as `warnings` (same shape as diagnostics);
//!   `?strict=true` refuses them like errors. The store
//!   notifies every app process (`NOTIFY vnext_definitions`) when the publish
//!   commits, so cached definitions of the domain are dropped everywhere.
//! - `POST /api/v1/definitions/validate`: the same validation, no write: 200
//!   `{valid, diagnostics, warnings}`.
//! - `GET /api/v1/definitions/re-initialize` (admin, the engine's endpoint): drops
//!   this process's cached definitions of every domain.
//! - `GET /api/v1/{domain}/definitions/{component-flow}/{key}?version=`: the stored
//!   text, byte for byte as first published (`version` is exact, a major, a
//!   major.minor or `latest`, the default).

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde_json::{Value, json};
use vnext_core::ident::DomainName;
use vnext_core::model::ComponentKind;
use vnext_core::validate::{self, Diagnostic, PackageCatalog};
use vnext_core::version::VersionSelector;
use vnext_init::components::{self, PublishOutcome};
use vnext_init::InitError;
use vnext_init::keys::Grant;
use vnext_init::provision::Provisioner;

use super::AppState;
use super::audit::AuditNote;
use super::auth::{self, Caller};
use super::body::JsonBody;
use super::params::{ApiPath, Params};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::query::scope;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(validate_only))
        .routes(routes!(re_initialize))
        .routes(routes!(read_back))
}

/// Drops every cached definition (the engine's `re-initialize`): the next
/// request of each domain reloads what is published. 200 `{reinitialized:true}`.
#[utoipa::path(get, path = "/api/v1/definitions/re-initialize", operation_id = "reinitializeDefinitions", tag = "definitions",
    responses((status = 200, description = "Every cached definition dropped", body = super::openapi::shapes::ReinitializeAnswer)))]
async fn re_initialize(State(state): State<AppState>) -> Json<Value> {
    state.engine.definitions().invalidate_all();
    Json(serde_json::json!({ "reinitialized": true }))
}

/// The document must be a JSON object; anything else is not a component.
fn component_document(body: &JsonBody) -> Result<&Value, ApiError> {
    match &body.value {
        Value::Object(_) => Ok(&body.value),
        Value::Null => Err(ApiError::new(ErrorCode::InvalidBody, "the body must be one component document (JSON object)")),
        _ => Err(ApiError::new(ErrorCode::InvalidBody, "the body must be one component document (a JSON object), not an array or a scalar")),
    }
}

/// Every domain a document names in a reference (`{"domain": …, "flow": "sys-…"}`),
/// plus its own.
fn referenced_domains(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(domain)), Some(Value::String(flow))) = (map.get("domain"), map.get("flow"))
                && ComponentKind::from_flow(flow).is_some()
            {
                out.insert(domain.clone());
            }
            map.values().for_each(|v| referenced_domains(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| referenced_domains(v, out)),
        _ => {}
    }
}

/// The published components references may resolve to: those of every domain
/// the document names that is provisioned here. A domain that is not known yet
/// contributes nothing (its references are then reported as unresolved).
async fn store_catalog(state: &AppState, value: &Value) -> Result<PackageCatalog, ApiError> {
    let mut domains = BTreeSet::new();
    referenced_domains(value, &mut domains);
    let mut catalog = PackageCatalog::new();
    for name in domains {
        let Ok(domain) = DomainName::new(&name) else { continue };
        let pool = match scope::domain_pool(state.engine.databases(), &domain).await {
            Ok(pool) => pool,
            Err(e) if e.code == ErrorCode::DomainNotFound => continue,
            Err(e) => return Err(e),
        };
        for (kind, domain, key, version) in components::inventory(&pool).await.map_err(ApiError::from)? {
            catalog.insert(kind, &domain, &key, &version);
        }
    }
    Ok(catalog)
}

fn diagnostics_json(diagnostics: &[Diagnostic]) -> Value {
    serde_json::to_value(diagnostics).unwrap_or_default()
}

/// Validates one component document against what is published; writes nothing.
#[utoipa::path(post, path = "/api/v1/definitions/validate", operation_id = "validateComponent", tag = "definitions",
    request_body(content = Object, description = "One component document", content_type = "application/json"),
    responses((status = 200, description = "The diagnostics (none when valid)", body = super::openapi::shapes::ValidateAnswer)))]
async fn validate_only(State(state): State<AppState>, body: JsonBody) -> Result<Json<Value>, ApiError> {
    let value = component_document(&body)?;
    let catalog = store_catalog(&state, value).await?;
    let diagnostics = validate::validate_component(value, &catalog, &state.scripts);
    let warnings = validate::unknown_fields(value);
    Ok(Json(json!({ "valid": diagnostics.is_empty(), "diagnostics": diagnostics_json(&diagnostics), "warnings": diagnostics_json(&warnings) })))
}

/// Publishes, and notes for the audit log which domain and component the
/// document names (when it names them), whatever the answer.
/// Publishes one component document as an immutable version (see the module docs).
#[utoipa::path(post, path = "/api/v1/definitions/publish", operation_id = "publishComponent", tag = "definitions",
    params(super::openapi::params::StrictQuery),
    request_body(content = Object, description = "One component document", content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = super::openapi::shapes::PublishAnswer, headers(("Location" = String, description = "Where to read it back"))),
        (status = 200, description = "Unchanged: the same key, version and content is published", body = super::openapi::shapes::PublishAnswer),
    ))]
async fn publish(state: State<AppState>, caller: Extension<Caller>, params: Params, body: JsonBody) -> Response {
    let note = publish_note(&body.value);
    let mut response = publish_component(state, caller, params, body).await.unwrap_or_else(IntoResponse::into_response);
    note.attach(&mut response);
    response
}

/// The document's domain (when it can be one) and component identity, as
/// named; identifiers only, cut at 200 characters.
fn publish_note(document: &Value) -> AuditNote {
    let text = |name: &str| document.get(name).and_then(Value::as_str).map(|v| v.chars().take(200).collect::<String>());
    let mut note = AuditNote { domain: text("domain").filter(|d| DomainName::new(d).is_ok()), ..AuditNote::default() };
    for name in ["flow", "key", "version"] {
        if let Some(value) = text(name) {
            note = note.with(name, value);
        }
    }
    note
}

async fn publish_component(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let value = component_document(&body)?;
    let strict = params.flag("strict", false)?;
    let catalog = store_catalog(&state, value).await?;
    let mut diagnostics = validate::validate_component(value, &catalog, &state.scripts);
    let warnings = validate::unknown_fields(value);
    if strict {
        diagnostics.extend(warnings.iter().cloned());
    }
    if !diagnostics.is_empty() {
        let summary = diagnostics.iter().map(ToString::to_string).take(3).collect::<Vec<_>>().join("; ");
        let more = if diagnostics.len() > 3 { format!(" (and {} more)", diagnostics.len() - 3) } else { String::new() };
        return Err(ApiError::new(ErrorCode::DefinitionInvalid, format!("{summary}{more}"))
            .with_errors(diagnostics.iter().map(|d| FieldError::coded(&d.pointer, &d.message, d.code)).collect()));
    }
    // Validation guarantees a well-formed envelope.
    let identity = components::ComponentIdentity::of(value).map_err(ApiError::from)?;
    if identity.domain.is_reserved() {
        return Err(InitError::ReservedDomain(identity.domain.to_string()).into());
    }
    if !caller.allows(identity.domain.as_str(), Grant::Publish) {
        return Err(auth::forbidden(&format!("`publish` on domain `{}`", identity.domain)).with_extra("missingGrant", "publish".into()));
    }
    let pool = provisioned_pool(&state, &caller, &identity.domain).await?;
    let outcome = components::publish(&pool, body.text()).await.map_err(ApiError::from)?;
    // The commit notified every process; drop this one's cache right away too.
    state.engine.invalidate(&identity.domain).await;
    if identity.kind == ComponentKind::Workflow && outcome == PublishOutcome::Created {
        // Its first start will want a flow schema: have a spare ready by then.
        let domain = identity.domain.clone();
        tokio::spawn(async move {
            if let Err(e) = vnext_init::flow_schema::replenish_spares(&pool, vnext_init::flow_schema::SPARE_FLOW_SCHEMAS).await {
                tracing::warn!(%domain, error = %e, "cannot prepare spare flow schemas");
            }
        });
    }
    let location = format!("/api/v1/{}/definitions/{}/{}?version={}", identity.domain, identity.kind, identity.key, identity.version);
    let (status, word) = match outcome {
        PublishOutcome::Created => (StatusCode::CREATED, "created"),
        PublishOutcome::Unchanged => (StatusCode::OK, "unchanged"),
    };
    let answer = json!({
        "key": identity.key,
        "version": identity.version,
        "domain": identity.domain.to_string(),
        "flow": identity.kind.flow(),
        "outcome": word,
        "href": location,
        "warnings": diagnostics_json(&warnings),
    });
    let mut response = (status, Json(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The domain's pool, provisioning the domain first when it is new and the
/// caller may provision (an admin key, or an open development run).
async fn provisioned_pool(state: &AppState, caller: &Caller, domain: &DomainName) -> Result<sqlx::PgPool, ApiError> {
    match scope::domain_pool(state.engine.databases(), domain).await {
        Err(e) if e.code == ErrorCode::DomainNotFound && !caller.is_admin() => Err(ApiError::new(
            ErrorCode::DomainNotFound,
            format!("domain `{domain}` does not exist; only an admin key may create a domain by publishing into it"),
        )),
        Err(e) if e.code == ErrorCode::DomainNotFound => {
            provision(state, caller, domain).await?;
            tracing::info!(%domain, "provisioned a new domain on publish");
            scope::domain_pool(state.engine.databases(), domain).await
        }
        other => other,
    }
}

/// Provisions a new domain (database, role, system schemas); idempotent, and
/// safe when two publishes race (the init crate serialises provisioning). A
/// key or an identity provisions within `app.max_domains_per_key`; an open
/// development run is not counted.
async fn provision(state: &AppState, caller: &Caller, domain: &DomainName) -> Result<(), ApiError> {
    let databases = state.engine.databases();
    let done = match caller {
        Caller::Open => vnext_init::provision::provision_domain(databases, domain).await,
        _ => {
            let by = Provisioner { label: caller.label(), cap: state.settings.max_domains_per_key };
            vnext_init::provision::provision_domain_by(databases, domain, &by).await
        }
    };
    done.map_err(ApiError::from)
}

/// The stored text of a component, byte for byte as first published.
#[utoipa::path(get, path = "/api/v1/{domain}/definitions/{flow}/{key}", operation_id = "readComponent", tag = "definitions",
    params(
        ("domain" = String, Path, description = "The domain"),
        ("flow" = String, Path, description = "The component flow: sys-flows, sys-tasks, sys-schemas, sys-views, sys-functions, sys-extensions"),
        ("key" = String, Path, description = "The component's key"),
        super::openapi::params::ComponentVersionQuery,
    ),
    responses((status = 200, description = "The component document", content_type = "application/json", body = Object,
        headers(("ETag" = String, description = "SHA-256 of the text, quoted"), ("x-component-version" = String)))))]
async fn read_back(
    State(state): State<AppState>,
    ApiPath((domain, flow, key)): ApiPath<(String, String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let not_found = |what: String| ApiError::new(ErrorCode::DefinitionNotFound, what);
    let kind = ComponentKind::from_flow(&flow).ok_or_else(|| {
        not_found(format!(
            "`{}` is not a component flow (sys-flows, sys-tasks, sys-schemas, sys-views, sys-functions, sys-extensions)",
            flow.escape_debug()
        ))
    })?;
    let version = params.version()?;
    let raw_version = version.as_ref().map(|(raw, _)| *raw);
    let selector = version.map_or(VersionSelector::Latest, |(_, selector)| selector);
    let domain = super::params::domain_name(&domain)?;
    let pool = scope::domain_pool(state.engine.databases(), &domain).await?;
    let stored = components::fetch(&pool, kind, &key, &selector).await.map_err(ApiError::from)?.ok_or_else(|| {
        let version = raw_version.map(|v| format!(" version `{}`", v.escape_debug())).unwrap_or_default();
        not_found(format!("domain `{domain}` has no {kind} `{}`{version}", key.escape_debug()))
    })?;
    let mut response = stored.raw.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", stored.sha256)) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&stored.version) {
        headers.insert("x-component-version", v);
    }
    Ok(response)
}
