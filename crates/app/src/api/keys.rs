//! The admin API of API keys; every route needs an admin key (see [`super::auth`]).
//!
//! - `POST /api/v1/admin/keys`: `{"name", "scope": "admin"}` or `{"name",
//!   "domain", "grants": ["publish", "write", "read"], "roles": [..]}`; 201 with
//!   the key and its `secret`, the only time the secret is shown.
//! - `GET /api/v1/admin/keys`: every key, revoked ones included, never a secret.
//! - `DELETE /api/v1/admin/keys/{id}`: revokes the key (204); it is refused from
//!   the next request on, since every request looks its key up.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use vnext_init::keys::{self, NewKey};

use super::AppState;
use super::audit::AuditNote;
use super::body::JsonBody;
use super::params::ApiPath;
use crate::error::{ApiError, ErrorCode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    scope: Option<String>,
    domain: Option<String>,
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Creates an API key; its `secret` is shown this once.
#[utoipa::path(post, path = "/api/v1/admin/keys", operation_id = "createKey", tag = "admin",
    request_body(content = super::openapi::shapes::CreateKeyBody, content_type = "application/json"),
    responses((status = 201, description = "The key, with its secret", body = super::openapi::shapes::ApiKey)))]
async fn create(State(state): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let request: CreateKey = serde_json::from_value(body.value)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("not a key request: {e}")))?;
    let admin = match request.scope.as_deref() {
        None | Some("domain") => false,
        Some("admin") => true,
        Some(other) => {
            return Err(ApiError::new(ErrorCode::InvalidBody, format!("scope: `{}` is neither admin nor domain", other.escape_debug())));
        }
    };
    let key = NewKey::from_parts(&request.name, admin, request.domain.as_deref(), &request.grants, request.roles)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, e))?;
    let (key, secret) = keys::create(state.engine.databases(), &key).await.map_err(ApiError::from)?;
    tracing::info!(key_id = %key.id, name = %key.name, "API key created");
    let mut answer = key.to_json();
    answer["secret"] = Value::String(secret);
    let mut response = (StatusCode::CREATED, Json(answer)).into_response();
    AuditNote::default().with("keyId", key.id.to_string()).attach(&mut response);
    Ok(response)
}

/// Every key, revoked ones included, never a secret.
#[utoipa::path(get, path = "/api/v1/admin/keys", operation_id = "listKeys", tag = "admin",
    responses((status = 200, description = "The keys", body = super::openapi::shapes::KeyList)))]
async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = keys::list(state.engine.databases().control()).await.map_err(ApiError::from)?;
    Ok(Json(json!({ "items": all.iter().map(keys::ApiKey::to_json).collect::<Vec<_>>() })))
}

/// Revokes a key; it is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/admin/keys/{id}", operation_id = "revokeKey", tag = "admin",
    params(("id" = String, Path, description = "The key's id (a UUID)")),
    responses((status = 204, description = "Revoked")))]
async fn revoke(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, format!("`{}` is not a key id (a UUID)", id.escape_debug())))?;
    if !keys::revoke(state.engine.databases().control(), id).await.map_err(ApiError::from)? {
        return Err(ApiError::new(ErrorCode::KeyNotFound, format!("no API key has id {id}")));
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
