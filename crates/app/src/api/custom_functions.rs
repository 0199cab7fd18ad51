//! Custom functions (`sys-functions`), run on request.
//!
//! - `GET|POST|PATCH|DELETE /api/v1/{domain}/functions/{function}`: a function
//!   of scope `D`, published in the domain.
//! - `GET|POST|PATCH|DELETE …/instances/{instance}/functions/{function}`: a
//!   function of scope `F` or `I` that the instance's workflow references, run
//!   with the instance in `ctx.instance`.
//!
//! The definition's `verbs` (405 for another), `roles` (403) and `inputSchema`
//! (422 with a pointer per error) are checked before anything runs; see
//! [`crate::engine::FunctionCall`] for how the tasks and the answer are made.

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vnext_core::model::{Component, ComponentKind, Function};
use vnext_core::version::VersionSelector;

use super::access;
use super::auth::Caller;
use super::body::JsonBody;
use super::params::{ApiPath, Params, domain_name, flow_key, headers_map, instance_ref};
use super::AppState;
use crate::engine::{FunctionCall, FunctionError, InstanceSnapshot};
use crate::error::{ApiError, ErrorCode, FieldError, printable};
use crate::query::functions::{self as fq, StoredContent};
use crate::query::{instance, scope};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(instance_function)).routes(routes!(domain_function))
}

/// A function of scope F or I on an instance.
#[utoipa::path(method(get, post, patch, delete), path = "/api/v1/{domain}/workflows/{workflow}/instances/{instance}/functions/{function}", operation_id = "customFunction", tag = "functions",
    params(super::openapi::params::InstancePath, ("function" = String, Path, description = "The function's name")),
    request_body(content = Option<Object>, description = "The function's input (POST, PATCH)"),
    responses((status = 200, description = "The function's answer: `{data}`, or the task's response as it came for `rawResponse`", body = Object)))]
async fn instance_function(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, workflow, instance_id, function)): ApiPath<(String, String, String, String)>,
    method: Method,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let scope = scope::resolve(state.engine.databases(), domain_name(&domain)?, flow_key(&workflow)?).await?;
    let snapshot = instance::get(&scope, &instance_ref(&instance_id)?).await?;
    access::check_read(&state, &caller.roles(), &scope, &snapshot).await?;
    let stored = fq::referenced_function(&scope, &snapshot, &function).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::FunctionNotFound,
            format!("workflow `{}` references no function `{}`", scope.flow, printable(&function)),
        )
    })?;
    let definition = parse(&stored)?;
    if definition.scope.eq_ignore_ascii_case("D") {
        return Err(ApiError::new(
            ErrorCode::FunctionNotFound,
            format!("function `{}` has scope D: call it at /api/v1/{}/functions/{}", stored.key, scope.domain, stored.key),
        ));
    }
    run(&state, &caller, scope.domain, stored.key, definition, Some(snapshot), Request { method, params, headers, body }).await
}

/// A function of scope D.
#[utoipa::path(method(get, post, patch, delete), path = "/api/v1/{domain}/functions/{function}", operation_id = "domainFunction", tag = "functions",
    params(("domain" = String, Path, description = "The domain"), ("function" = String, Path, description = "The function's name")),
    request_body(content = Option<Object>, description = "The function's input (POST, PATCH)"),
    responses((status = 200, description = "The function's answer: `{data}`, or the task's response as it came for `rawResponse`", body = Object)))]
async fn domain_function(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((domain, function)): ApiPath<(String, String)>,
    method: Method,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let domain = domain_name(&domain)?;
    let pool = scope::domain_pool(state.engine.databases(), &domain).await?;
    let not_found = || ApiError::new(ErrorCode::FunctionNotFound, format!("domain `{domain}` has no function `{}`", printable(&function)));
    let stored = fq::component(&pool, ComponentKind::Function, &function, &VersionSelector::Latest).await?.ok_or_else(not_found)?;
    let definition = parse(&stored)?;
    if !definition.scope.eq_ignore_ascii_case("D") {
        return Err(ApiError::new(
            ErrorCode::FunctionNotFound,
            format!("function `{}` has scope {}: call it on an instance of a workflow that references it", stored.key, definition.scope),
        ));
    }
    run(&state, &caller, domain, stored.key, definition, None, Request { method, params, headers, body }).await
}

struct Request {
    method: Method,
    params: Params,
    headers: HeaderMap,
    body: JsonBody,
}

fn parse(stored: &StoredContent) -> Result<Function, ApiError> {
    match Component::from_json(&stored.content) {
        Ok(Component::Function(f)) => Ok(f.attributes),
        Ok(_) | Err(_) => Err(ApiError::new(
            ErrorCode::DefinitionUnusable,
            format!("stored function `{}` version {} cannot be read", stored.key, stored.version),
        )),
    }
}

async fn run(
    state: &AppState,
    caller: &Caller,
    domain: vnext_core::ident::DomainName,
    key: String,
    function: Function,
    instance: Option<InstanceSnapshot>,
    request: Request,
) -> Result<Response, ApiError> {
    let verb = request.method.as_str().to_ascii_uppercase();
    if let Some(verbs) = function.verbs.as_ref().filter(|v| !v.is_empty())
        && !verbs.iter().any(|v| v.eq_ignore_ascii_case(&verb))
    {
        return Err(ApiError::new(
            ErrorCode::FunctionVerbNotAllowed,
            format!("function `{key}` takes {}, not {verb}", verbs.join(", ")),
        )
        .with_extra("verbs", json!(verbs)));
    }
    if !caller.roles().allowed_by(function.roles.as_deref()) {
        return Err(ApiError::new(ErrorCode::AuthRoleDenied, format!("the caller's roles do not allow function `{key}`"))
            .with_extra("function", Value::String(key)));
    }
    // GET and DELETE carry no input; an absent body is an empty object.
    let body = match (&verb[..], request.body.value) {
        ("GET" | "DELETE", _) | (_, Value::Null) => json!({}),
        (_, v) => v,
    };
    let call = FunctionCall {
        domain,
        key: key.clone(),
        function,
        instance,
        verb,
        body,
        headers: headers_map(&request.headers),
        query: request.params.to_map(),
    };
    match state.engine.call_function(call).await {
        Ok(answer) => Ok(Json(answer).into_response()),
        Err(FunctionError::InvalidInput(errors)) => Err(ApiError::new(
            ErrorCode::PayloadInvalid,
            format!("input of function `{key}` fails its inputSchema ({} errors)", errors.len()),
        )
        .with_errors(errors.into_iter().map(|e| FieldError::new(e.pointer, e.message)).collect())),
        Err(FunctionError::InvalidOutput(errors)) => Err(ApiError::new(
            ErrorCode::FunctionOutputInvalid,
            format!("the answer of function `{key}` fails its outputSchema ({} errors)", errors.len()),
        )
        .with_errors(errors.into_iter().map(|e| FieldError::new(e.pointer, e.message)).collect())),
        Err(FunctionError::TaskFailed { task, error, status_code }) => Err(ApiError::new(
            ErrorCode::FunctionTaskFailed,
            format!("task `{task}` of function `{key}` failed: {}", error.message),
        )
        .with_extra("task", Value::String(task))
        .with_extra("taskError", json!({ "code": error.code, "message": error.message, "retryable": error.retryable, "statusCode": status_code }))),
        Err(FunctionError::Engine(e)) => Err(e.into()),
    }
}
