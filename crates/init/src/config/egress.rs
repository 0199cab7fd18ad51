//! `[egress]`: where HTTP tasks may connect.
//!
//! The fields are plain text here; the execution crate parses and applies
//! them (`vnext_execution::tasks::egress`) and refuses to start on an entry it
//! cannot read. Semantics are documented in `docs/configuration.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Global egress rules, with per-domain overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// URL schemes HTTP tasks may use (a subset of `http`, `https`).
    pub allow_schemes: Vec<String>,
    /// Hosts HTTP tasks may call: names (`api.example.com`), wildcards
    /// (`*.example.com`), IP addresses or CIDR blocks. Empty: any host.
    pub allow_hosts: Vec<String>,
    /// CIDR blocks that may be reached although they are loopback, private,
    /// link-local or otherwise not public (`10.20.0.0/16`).
    pub allow_networks: Vec<String>,
    /// Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10).
    pub allow_private: bool,
    /// Loopback (127/8, ::1): `true`, `false`, or `"auto"` (allowed only by
    /// `vnext up` listening on a loopback address).
    pub allow_loopback: LoopbackSetting,
    /// Per-domain rules; a field set there replaces the global one.
    pub domains: BTreeMap<String, EgressOverride>,
}

/// A domain's egress rules; unset fields inherit the global ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_schemes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_networks: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_loopback: Option<LoopbackSetting>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_schemes: vec!["http".into(), "https".into()],
            allow_hosts: Vec::new(),
            allow_networks: Vec::new(),
            allow_private: false,
            allow_loopback: LoopbackSetting::Auto,
            domains: BTreeMap::new(),
        }
    }
}

/// Whether loopback addresses may be called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoopbackSetting {
    /// Allowed when the runtime runs as `vnext up` on a loopback listen address.
    #[default]
    Auto,
    Allow,
    Deny,
}

impl LoopbackSetting {
    /// Whether loopback is allowed, given whether this is a development run.
    pub fn allowed(self, development: bool) -> bool {
        match self {
            LoopbackSetting::Auto => development,
            LoopbackSetting::Allow => true,
            LoopbackSetting::Deny => false,
        }
    }
}

impl Serialize for LoopbackSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LoopbackSetting::Auto => s.serialize_str("auto"),
            LoopbackSetting::Allow => s.serialize_bool(true),
            LoopbackSetting::Deny => s.serialize_bool(false),
        }
    }
}

/// Accepts `true`, `false` and `"auto"`, also as text (environment variables
/// arrive as text).
impl<'de> Deserialize<'de> for LoopbackSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(LoopbackSetting::Allow),
            Raw::Bool(false) => Ok(LoopbackSetting::Deny),
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "auto" => Ok(LoopbackSetting::Auto),
                "true" => Ok(LoopbackSetting::Allow),
                "false" => Ok(LoopbackSetting::Deny),
                other => Err(serde::de::Error::custom(format!("allow_loopback must be true, false or \"auto\", not `{other}`"))),
            },
        }
    }
}
