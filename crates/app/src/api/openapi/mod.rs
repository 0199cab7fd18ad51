//! The OpenAPI 3.1 document of the public API (`GET /openapi.json`) and the
//! docs UI (`/docs`), both open like `/health`.
//!
//! The document is generated, not written: every public handler carries a
//! `#[utoipa::path]` annotation, and the public router is an
//! `utoipa_axum::OpenApiRouter` built with `routes!(handler)`, which adds the
//! handler to the axum router and its operation to the document from that one
//! annotation (see `super::public_routes`). [`finish`] then adds what follows
//! from the rest of the code rather than from annotations: the security of
//! each operation from `auth::requirement` (the function the auth middleware
//! itself asks), and the problem+json answers of each operation from the
//! error-code table ([`errors`]).
//!
//! The UI is Swagger UI, its assets compiled into the binary
//! (`utoipa-swagger-ui`'s `vendored` feature: the build downloads nothing and
//! the page loads nothing from elsewhere).

pub mod errors;
pub mod params;
pub mod shapes;

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::AppState;
use super::auth::{Need, requirement};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where the UI is served: the page (`/docs` redirects to `/docs/`) and its assets.
pub const DOCS_PATH: &str = "/docs";
/// The UI's route templates: the only public routes that are not operations
/// of the document (they serve the page, not the API).
pub const DOCS_UI_ROUTES: [&str; 3] = ["/docs", "/docs/", "/docs/{*rest}"];

/// The security schemes: an API key (or JWT) as a bearer token, or the key in `X-Api-Key`.
pub const BEARER: &str = "bearerAuth";
pub const API_KEY_HEADER: &str = "apiKeyHeader";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vNext runtime API",
        description = "The REST API of the workflow runtime: vNext-compatible paths and wire format \
            (camelCase, null members omitted, status codes as one-letter strings, quoted ETags). \
            docs/api.md has the prose. Errors are `application/problem+json` (`ProblemDetails`); each \
            operation lists its error codes per status (`x-error-codes`).\n\n\
            Authentication: an API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>` (a JWT \
            bearer token when an identity provider is configured). A loopback listener runs open until \
            the first key exists. Each operation says what it needs in `x-required-access`.",
        license(name = "MIT")
    ),
    modifiers(&Components),
    components(schemas(shapes::CommandBody, params::PayloadMode)),
    tags(
        (name = "definitions", description = "Publish, validate and read back components"),
        (name = "discovery", description = "The domains, workflows and components there are"),
        (name = "instances", description = "Start, read and list instances"),
        (name = "transitions", description = "Run a transition, retry a faulted instance, history"),
        (name = "functions", description = "The instance functions (state, data, view, schema, catalog, authorize)"),
        (name = "incidents", description = "An instance's incidents"),
        (name = "admin", description = "API keys and the control audit log (admin key)"),
        (name = "audit", description = "The audit log of mutating calls"),
        (name = "service", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes and the problem schema.
struct Components;

impl Modify for Components {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`vnk_…`), or a JWT when an identity provider is configured."))
                    .build(),
            ),
        );
        components.add_security_scheme(API_KEY_HEADER, SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
        components.schemas.insert(errors::PROBLEM_SCHEMA.to_string(), RefOr::T(errors::problem_schema()));
    }
}

/// Every operation of a path item, with its method.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
}

/// What an operation needs, in words (`x-required-access`).
fn access_words(need: &Need) -> String {
    match need {
        Need::Nothing => "nothing".into(),
        Need::AnyKey => "any key".into(),
        Need::Admin => "an admin key".into(),
        Need::Grant { grant, .. } => format!("`{}` on the domain", grant.as_str()),
    }
}

/// Completes the generated document: security and error answers per
/// operation (see the module docs).
pub fn finish(doc: &mut Document) {
    // The domain a template names, as the middleware sees it on a real call.
    let params = [("domain".to_string(), "{domain}".to_string())];
    let mut seen = std::collections::HashSet::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            let need = requirement(&method, Some(path), &params);
            if need != Need::Nothing {
                let schemes = [BEARER, API_KEY_HEADER];
                operation.security = Some(schemes.iter().map(|s| SecurityRequirement::new::<_, _, &str>(*s, [])).collect());
            }
            operation
                .extensions
                .get_or_insert_with(Default::default)
                .insert("x-required-access".into(), json!(access_words(&need)));
            errors::add_error_responses(operation, &need);
            // One handler serving several methods (custom functions) shares
            // its id; OpenAPI wants operation ids unique.
            if let Some(id) = operation.operation_id.as_mut()
                && !seen.insert(id.clone())
            {
                id.push_str(&method.as_str()[..1]);
                id.push_str(&method.as_str()[1..].to_ascii_lowercase());
            }
        }
    }
}

/// The route of the document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_document))
}

/// The docs UI (its page and assets), pointed at [`DOCUMENT_PATH`].
pub fn docs_ui() -> Router<AppState> {
    SwaggerUi::new(DOCS_PATH).config(Config::from(DOCUMENT_PATH)).into()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapiDocument",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
async fn openapi_document() -> Response {
    // Built once per process: the document depends on the code only.
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let text = DOCUMENT.get_or_init(|| Bytes::from(super::document().to_json().unwrap_or_default()));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_error_table_entry_and_an_id() {
        let mut doc = crate::api::document();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                let id = operation.operation_id.clone().unwrap_or_default();
                assert!(ids.insert(id.clone()), "{method} {path}: operation id `{id}` is not unique");
                // A repeated id carries its method as a suffix (see `finish`).
                let suffix = format!("{}{}", &method.as_str()[..1], method.as_str()[1..].to_ascii_lowercase());
                let base = id.strip_suffix(&suffix).filter(|b| errors::operation_codes(b).is_some()).unwrap_or(&id);
                assert!(errors::operation_codes(base).is_some(), "{method} {path}: operation `{id}` has no entry in the error table");
                assert!(operation.responses.responses.contains_key("500"), "{method} {path}");
            }
        }
    }

    #[test]
    fn the_problem_schema_enumerates_every_code() {
        let doc = serde_json::to_value(crate::api::document()).unwrap();
        let problem = &doc["components"]["schemas"][errors::PROBLEM_SCHEMA];
        let codes = problem["properties"]["code"]["enum"].as_array().unwrap();
        assert_eq!(codes.len(), crate::error::ErrorCode::ALL.len());
        assert_eq!(problem["x-error-codes"].as_array().unwrap().len(), codes.len());
        assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    }
}
