//! Query and path parameters, parsed strictly: a value that cannot be read is a
//! 400 naming the parameter, never a silent default; a path segment that cannot
//! name a domain, workflow or instance is the 404 of what it would name.

use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use vnext_core::ident::{DomainName, FlowKey};
use vnext_core::version::VersionSelector;

use crate::error::{ApiError, ErrorCode, printable};
use crate::store::InstanceRef;

/// Parses a domain path segment; an impossible name is simply not a domain.
///
/// # Errors
/// [`ErrorCode::DomainNotFound`].
pub fn domain_name(raw: &str) -> Result<DomainName, ApiError> {
    DomainName::new(raw).map_err(|e| ApiError::new(ErrorCode::DomainNotFound, format!("unknown domain `{}`: {e}", printable(raw))))
}

/// Parses a workflow path segment.
///
/// # Errors
/// [`ErrorCode::WorkflowNotFound`].
pub fn flow_key(raw: &str) -> Result<FlowKey, ApiError> {
    FlowKey::new(raw).map_err(|e| ApiError::new(ErrorCode::WorkflowNotFound, format!("unknown workflow `{}`: {e}", printable(raw))))
}

/// Parses an `{instance}` path segment.
///
/// # Errors
/// [`ErrorCode::InstanceNotFound`] for text that cannot be a key.
pub fn instance_ref(raw: &str) -> Result<InstanceRef, ApiError> {
    if raw.is_empty() || raw.contains('\0') || raw.chars().count() > 200 {
        return Err(ApiError::new(
            ErrorCode::InstanceNotFound,
            format!("`{}` is neither an instance id nor a possible key", printable(raw)),
        ));
    }
    Ok(InstanceRef::parse(raw))
}

/// The query string as name/value pairs, in order (names may repeat).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, detail)
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| invalid(format!("the query string cannot be read: {}", e.body_text())))?
            .0;
        if let Some((name, _)) = pairs.iter().find(|(n, v)| n.contains('\0') || v.contains('\0')) {
            return Err(invalid(format!("query parameter `{}` contains a NUL character", name.escape_debug())));
        }
        Ok(Params(pairs))
    }
}

impl Params {
    /// The last value of `name` (later parameters win, as in most frameworks).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A boolean flag: `true`/`false`/`1`/`0` (an empty value means true).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParameter`] for any other value.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "" | "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(invalid(format!("`{name}` must be true or false, found `{}`", v.escape_debug()))),
            },
        }
    }

    /// `version`: a version (1.2.3), a major (1), a major.minor (1.2) or
    /// `latest`; absent or blank is `None`. Returned as given (trimmed) with
    /// what it selects.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParameter`] for anything else.
    pub fn version(&self) -> Result<Option<(&str, VersionSelector)>, ApiError> {
        let Some(raw) = self.get("version").map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
        match VersionSelector::parse(raw) {
            Some(selector) => Ok(Some((raw, selector))),
            None => Err(invalid(format!(
                "`version` must be a version (1.2.3), a major (1), a major.minor (1.2) or latest, found `{}`",
                printable(raw)
            ))),
        }
    }

    /// A whole number within `min..=max`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParameter`] when it is not a number in range.
    pub fn number(&self, name: &str, default: u32, min: u32, max: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.get(name) else { return Ok(default) };
        match raw.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(invalid(format!("`{name}` must be a whole number from {min} to {max}, found `{}`", raw.escape_debug()))),
        }
    }

    /// The parameters as a JSON map for scripts (`ctx.query`); a repeated name
    /// becomes an array.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (name, value) in &self.0 {
            match map.get_mut(name) {
                Some(Value::Array(items)) => items.push(Value::String(value.clone())),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, Value::String(value.clone())]);
                }
                None => {
                    map.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        map
    }
}

/// Path parameters; a segment that cannot be decoded is a 400, not axum's text.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| invalid(format!("a path segment cannot be read: {}", e.body_text())))
    }
}

/// Request headers as a JSON map for scripts (`ctx.headers`): names lower-cased,
/// values that are not text skipped, repeated headers joined with `, `.
pub fn headers_map(headers: &HeaderMap) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in headers {
        let Ok(text) = value.to_str() else { continue };
        let key = name.as_str().to_ascii_lowercase();
        match map.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(text);
            }
            _ => {
                map.insert(key, Value::String(text.to_string()));
            }
        }
    }
    map
}
