//! Building blocks shared by several component types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A label in one language: `{"label": "Approve", "language": "en-US"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub label: String,
    pub language: String,
}

/// How a data version is bumped when a transition or state writes data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum VersionStrategy {
    #[default]
    None,
    Patch,
    Minor,
    Major,
}

/// A reference from one component to another.
///
/// The explicit form names key (or id), domain, component flow and a version
/// selector (`1.2.3`, `latest`, `1`, `1.2`). The short `{"ref": "Tasks/x.json"}`
/// form points at a file of the same package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reference {
    File {
        #[serde(rename = "ref")]
        path: String,
    },
    Explicit(ExplicitReference),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplicitReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub flow: String,
    #[serde(default)]
    pub version: String,
}

/// How a script's `code` is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ScriptEncoding {
    /// Base64 of the source text (the vNext default).
    #[default]
    B64,
    /// The source text as it is.
    NAT,
    /// A reference to a shared mapping component (`sys-mappings`).
    REF,
}

/// The `scriptCode` envelope: `{location, code, encoding, type}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptCode {
    /// `L` local (default) or `G` global (built in, no code).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The source text (B64 or NAT), or a mapping reference (REF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Value>,
    /// Where the script lives in the package, e.g. `./src/approve.rhai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub encoding: ScriptEncoding,
}

impl ScriptCode {
    /// True for a global (built-in) script, which carries no code.
    pub fn is_global(&self) -> bool {
        self.kind.as_deref() == Some("G")
    }
}

/// A role grant: `{"role": "admin", "grant": "allow"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleGrant {
    pub role: String,
    pub grant: String,
}
