//! The problem+json side of the document: the `ProblemDetails` schema (with
//! every [`ErrorCode`] enumerated from the code table itself) and, per
//! operation, the error codes it can answer, grouped into one response per
//! status.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde_json::{Value, json};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, RefOr, Response, schema::Schema};

use crate::api::auth::Need;
use crate::error::{ErrorCode, PROBLEM_JSON};

/// Name of the problem schema in `components/schemas`.
pub const PROBLEM_SCHEMA: &str = "ProblemDetails";

/// Every code as `{code, errorCode, status, title}`, in documentation order.
pub fn code_table() -> Value {
    Value::Array(
        ErrorCode::ALL
            .iter()
            .map(|c| json!({ "code": c.as_str(), "errorCode": c.error_code(), "status": c.status().as_u16(), "title": c.title() }))
            .collect(),
    )
}

/// The problem body of every 4xx and 5xx answer (see `crate::error`).
pub fn problem_schema() -> Schema {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let error_codes: Vec<String> = ErrorCode::ALL.iter().map(|c| c.error_code()).collect();
    let listing: String = ErrorCode::ALL
        .iter()
        .map(|c| format!("\n- `{}` ({}): {}", c.as_str(), c.status().as_u16(), c.title()))
        .collect();
    let schema = json!({
        "type": "object",
        "description": format!(
            "An error, as `application/problem+json` (RFC 9457, in the engine's ProblemDetails form). \
             Clients branch on `code`; `errorCode` is `{{prefix}}.{{code}}`. Members beyond those listed \
             here are named per code in docs/api.md (e.g. `missingGrant`, `available`, `limit`). Every code:{listing}"
        ),
        "required": ["type", "title", "status", "errorCode", "prefix", "code", "detail"],
        "properties": {
            "type": { "type": "string", "description": "`https://httpstatuses.com/{status}/{prefix}/{code with / for .}`" },
            "title": { "type": "string", "description": "Fixed summary of the code." },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "errorCode": { "type": "string", "enum": error_codes },
            "prefix": {
                "type": "string",
                "enum": ["validation", "unauthorized", "forbidden", "notfound", "conflict", "transient", "dependency", "unsupported", "internal"],
                "description": "The engine's error category of the status."
            },
            "code": { "type": "string", "enum": codes, "description": "Stable machine-readable code." },
            "detail": { "type": "string", "description": "What was wrong and where, for humans (opaque for `internal`)." },
            "instance": { "type": "string", "description": "The request path." },
            "traceId": { "type": "string", "description": "The request id (`x-request-id`); quote it when reporting a 500." },
            "errors": {
                "type": "object",
                "description": "The engine's map of member (a JSON pointer) to messages.",
                "additionalProperties": { "type": "array", "items": { "type": "string" } }
            },
            "violations": {
                "type": "array",
                "description": "The same findings with their pointers (and codes, for component diagnostics).",
                "items": {
                    "type": "object",
                    "required": ["pointer", "message"],
                    "properties": {
                        "pointer": { "type": "string" },
                        "message": { "type": "string" },
                        "code": { "type": "string" }
                    }
                }
            }
        },
        "x-error-codes": code_table(),
    });
    serde_json::from_value(schema).expect("the problem schema is a valid schema")
}

/// What the caller's credentials can be refused with, by what the route needs.
fn auth_codes(need: &Need) -> &'static [ErrorCode] {
    use ErrorCode::*;
    match need {
        Need::Nothing => &[],
        Need::AnyKey => &[AuthMissingKey, AuthInvalidKey, AuthInvalidToken, AuthUntrustedIdentity, RateLimited, ConcurrencyLimited],
        Need::Admin | Need::Grant { .. } => {
            &[AuthMissingKey, AuthInvalidKey, AuthInvalidToken, AuthUntrustedIdentity, AuthForbidden, RateLimited, ConcurrencyLimited]
        }
    }
}

/// Codes of an operation's own checks, by operation id; `None` for an id
/// this table does not know (a unit test keeps every operation listed).
pub fn operation_codes(operation_id: &str) -> Option<&'static [ErrorCode]> {
    use ErrorCode::*;
    const INSTANCE: [ErrorCode; 5] = [DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, Unavailable];
    Some(match operation_id {
        "health" | "metrics" | "openapiDocument" => &[],
        "ready" => &[Unavailable],
        "reinitializeDefinitions" => &[],
        "publishComponent" => &[
            InvalidJson, NulCharacter, InvalidBody, BodyTooLarge, InvalidParameter, DefinitionInvalid, DomainReserved,
            DomainNotFound, DomainCapReached, DomainDatabaseTaken, DefinitionConflict, Unavailable,
        ],
        "validateComponent" => &[InvalidJson, NulCharacter, InvalidBody, BodyTooLarge, Unavailable],
        "readComponent" => &[DomainNotFound, DefinitionNotFound, InvalidParameter, Unavailable],
        "startInstance" => &[
            DomainNotFound, WorkflowNotFound, WorkflowVersionNotFound, InvalidParameter, InvalidJson, NulCharacter, InvalidBody,
            BodyTooLarge, StartsLimited, PayloadTooLarge, PayloadInvalid, InstanceBusy, ScriptFailed, ScriptsBusy, ChainTooDeep,
            DefinitionUnusable, DefinitionUnsupported, AuthRoleDenied, Unavailable,
        ],
        "runTransition" => &[
            DomainNotFound, WorkflowNotFound, InstanceNotFound, TransitionNotFound, TransitionNotAvailable, InstanceFinished,
            InstanceKeyTaken, InvalidParameter, InvalidJson, NulCharacter, InvalidBody, BodyTooLarge, PayloadTooLarge,
            PayloadInvalid, InstanceBusy, ScriptFailed, ScriptsBusy, ChainTooDeep, DefinitionUnusable, DefinitionUnsupported,
            AuthRoleDenied, Unavailable,
        ],
        "retryInstance" => &[
            DomainNotFound, WorkflowNotFound, InstanceNotFound, InstanceNotFaulted, InvalidParameter, InvalidJson, NulCharacter,
            InvalidBody, BodyTooLarge, PayloadTooLarge, PayloadInvalid, InstanceBusy, ScriptFailed, ScriptsBusy, ChainTooDeep,
            DefinitionUnusable, DefinitionUnsupported, AuthRoleDenied, Unavailable,
        ],
        "listInstances" => &[DomainNotFound, WorkflowNotFound, InvalidFilter, InvalidSort, InvalidParameter, AuthRoleDenied, Unavailable],
        "getInstance" | "listTransitions" | "catalogFunction" | "longPollAck" => &INSTANCE,
        "stateFunction" => &INSTANCE,
        "listIncidents" | "listActiveIncidents" => {
            &[DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, InvalidParameter, Unavailable]
        }
        "dataFunction" => &[DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, InvalidParameter, DataVersionNotFound, Unavailable],
        "viewFunction" => &[DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, TransitionNotFound, ViewNotFound, Unavailable],
        "schemaFunction" => {
            &[DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, TransitionNotFound, SchemaNotFound, Unavailable]
        }
        "authorizeFunction" => &[DomainNotFound, WorkflowNotFound, InstanceNotFound, InvalidParameter, Unavailable],
        "customFunction" | "domainFunction" => &[
            DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, FunctionNotFound, FunctionVerbNotAllowed, InvalidJson,
            InvalidBody, BodyTooLarge, PayloadInvalid, FunctionTaskFailed, FunctionOutputInvalid, Unavailable,
        ],
        "createKey" => &[InvalidJson, NulCharacter, InvalidBody, BodyTooLarge, Unavailable],
        "listKeys" => &[Unavailable],
        "revokeKey" => &[InvalidParameter, KeyNotFound, Unavailable],
        "listDomains" => &[InvalidParameter, Unavailable],
        "listWorkflows" | "listComponents" => &[DomainNotFound, InvalidParameter, Unavailable],
        "workflowSummary" | "workflowDiagram" => {
            &[DomainNotFound, WorkflowNotFound, WorkflowVersionNotFound, InvalidParameter, DefinitionUnusable, Unavailable]
        }
        "instanceDiagram" => &[DomainNotFound, WorkflowNotFound, InstanceNotFound, AuthRoleDenied, InvalidParameter, DefinitionUnusable, Unavailable],
        "domainAudit" => &[DomainNotFound, InvalidParameter, Unavailable],
        "controlAudit" => &[InvalidParameter, Unavailable],
        _ => return None,
    })
}

/// Adds to `operation` one problem+json response per status its codes can
/// have (with those codes in `x-error-codes` and the description), the
/// answer to a bug (500) included.
pub fn add_error_responses(operation: &mut Operation, need: &Need) {
    let own = operation.operation_id.as_deref().and_then(operation_codes).unwrap_or(&[]);
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in auth_codes(need).iter().chain(own).chain([&ErrorCode::Internal]) {
        let list = by_status.entry(code.status().as_u16()).or_default();
        if !list.contains(code) {
            list.push(*code);
        }
    }
    for (status, codes) in by_status {
        let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        let description = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let problem = json!({ "schema": { "$ref": format!("#/components/schemas/{PROBLEM_SCHEMA}") } });
        let problem: Content = serde_json::from_value(problem).expect("a valid content object");
        match operation.responses.responses.entry(status.to_string()) {
            // A status the handler answers with a body of its own too
            // (authorize's 403 `{allowed:false}`): the problem is the other media type.
            Entry::Occupied(mut existing) => {
                if let RefOr::T(response) = existing.get_mut() {
                    response.content.entry(PROBLEM_JSON.to_string()).or_insert(RefOr::T(problem));
                    response.description = format!("{}; or a problem: {description}", response.description);
                    response.extensions.get_or_insert_with(Extensions::default).insert("x-error-codes".into(), json!(names));
                }
            }
            Entry::Vacant(slot) => {
                let mut response = Response::new(description);
                response.content.insert(PROBLEM_JSON.to_string(), RefOr::T(problem));
                response.extensions.get_or_insert_with(Extensions::default).insert("x-error-codes".into(), json!(names));
                slot.insert(RefOr::T(response));
            }
        }
    }
}
