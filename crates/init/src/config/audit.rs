//! `[audit]`: the audit log of mutating API calls.
//!
//! The app writes it (`vnext_app::api::audit`); where rows live and what they
//! hold is documented in `docs/api.md` and `docs/configuration.md`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Whether mutating calls are written to the audit log.
    pub enabled: bool,
    /// Whether calls refused for want of a valid credential (401) are written
    /// too, as caller `anonymous`. Off by default: anyone who reaches the port
    /// could otherwise grow the log without a key.
    pub record_unauthenticated: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { enabled: true, record_unauthenticated: false }
    }
}
