//! Instance data, now or at a past data version.
//!
//! Every transition that changed data stored a full snapshot with its data
//! version in the history, so a past version is one indexed lookup. A version
//! is named by its semantic version (`1.0.2`) or by its sequence number (`3`).

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use vnext_core::version::VersionSelector;

use super::FlowScope;
use crate::engine::InstanceSnapshot;
use crate::error::{ApiError, ErrorCode};

/// The `functions/data` answer: the engine's `{data, eTag, entityEtag,
/// extensions}` and ours (`dataVersion`, `dataVersionNo`, `isLatest`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataAnswer {
    pub data: Value,
    /// Quoted: the instance's ETag for the current version, else the data
    /// ETag of the version read.
    #[serde(rename = "eTag")]
    pub etag: String,
    /// Quoted: the data ETag of the version read (see `api::envelope::entity_etag`).
    pub entity_etag: String,
    pub extensions: Map<String, Value>,
    pub data_version: String,
    pub data_version_no: i64,
    pub is_latest: bool,
}

fn data_etag(instance: &InstanceSnapshot, version_no: i64) -> String {
    format!("\"{}-{version_no}\"", instance.id.simple())
}

/// Which data version to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataVersion {
    Semver(String),
    Number(i64),
}

/// Parses `?version=`.
///
/// # Errors
/// [`ErrorCode::InvalidParameter`] when it is neither a version nor a number.
pub fn parse_version(raw: &str) -> Result<DataVersion, ApiError> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>()
        && n >= 0
    {
        return Ok(DataVersion::Number(n));
    }
    if matches!(VersionSelector::parse(raw), Some(VersionSelector::Exact(_))) {
        return Ok(DataVersion::Semver(raw.to_string()));
    }
    Err(ApiError::new(
        ErrorCode::InvalidParameter,
        format!("`version` must be a data version like 1.0.2 or a version number like 3, found `{}`", crate::error::printable(raw)),
    ))
}

/// The data of `instance` at `version` (current data when `None`).
///
/// # Errors
/// [`ErrorCode::DataVersionNotFound`] when the instance never had that version.
pub async fn data_at(scope: &FlowScope, instance: &InstanceSnapshot, version: Option<&DataVersion>) -> Result<DataAnswer, ApiError> {
    let current = || DataAnswer {
        data: instance.data.clone(),
        data_version: instance.data_version.clone(),
        data_version_no: instance.data_version_no,
        etag: format!("\"{}\"", instance.etag),
        entity_etag: data_etag(instance, instance.data_version_no),
        extensions: Map::new(),
        is_latest: true,
    };
    let Some(version) = version else { return Ok(current()) };
    let is_current = match version {
        DataVersion::Semver(v) => *v == instance.data_version,
        DataVersion::Number(n) => *n == instance.data_version_no,
    };
    if is_current {
        return Ok(current());
    }
    let (column, bind) = match version {
        DataVersion::Semver(v) => ("data_version", v.clone()),
        DataVersion::Number(n) => ("data_version_no", n.to_string()),
    };
    let cast = if column == "data_version_no" { "::bigint" } else { "" };
    let sql = format!(
        "SELECT data, data_version, data_version_no FROM {} \
          WHERE instance_id = $1 AND data IS NOT NULL AND {column} = $2{cast} \
          ORDER BY seq DESC LIMIT 1",
        scope.table("transitions")
    );
    let row: Option<(Value, Option<String>, Option<i64>)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(instance.id)
        .bind(bind)
        .fetch_optional(&scope.pool)
        .await
        .map_err(ApiError::database)?;
    let Some((data, data_version, data_version_no)) = row else {
        let shown = match version {
            DataVersion::Semver(v) => v.clone(),
            DataVersion::Number(n) => format!("#{n}"),
        };
        return Err(ApiError::new(
            ErrorCode::DataVersionNotFound,
            format!("instance `{}` never had data version {shown} (current: {} #{})", instance.id, instance.data_version, instance.data_version_no),
        ));
    };
    let data_version_no = data_version_no.unwrap_or_default();
    Ok(DataAnswer {
        data,
        data_version: data_version.unwrap_or_default(),
        data_version_no,
        etag: data_etag(instance, data_version_no),
        entity_etag: data_etag(instance, data_version_no),
        extensions: Map::new(),
        is_latest: false,
    })
}
