//! `[identity]`: identities vouched for by a gateway, besides API keys.
//!
//! Two optional sources, both off by default:
//! - **trusted headers**: a proxy in front of the API authenticates the user
//!   and passes the subject, roles and grants in headers. They are believed
//!   only from a peer in `trusted_proxies` and/or with the proxy's shared
//!   secret in `header_secret_name`.
//! - **JWT bearer tokens** (OIDC access or ID tokens): verified against the
//!   issuer's JWKS (a file or a URL), with issuer, audience and expiry checked.
//!
//! The fields are plain text here; `vnext_app::api::identity` parses them
//! (CIDR blocks, algorithms) and refuses to start on one it cannot read. Flat
//! field names keep every field settable from the environment
//! (`VNEXT_IDENTITY__JWT_ISSUER`). Semantics: `docs/configuration.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Identity sources besides API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Header carrying the authenticated subject; empty turns trusted-header
    /// identities off.
    pub header_subject: String,
    /// Header carrying the subject's roles, comma-separated.
    pub header_roles: String,
    /// Header carrying the subject's grants (`admin`, `<domain>:<grant>`), comma-separated.
    pub header_grants: String,
    /// Peers (CIDR blocks or addresses) whose identity headers are believed.
    pub trusted_proxies: Vec<String>,
    /// Header in which the proxy presents `header_secret`.
    pub header_secret_name: String,
    /// Secret the proxy must present; empty: only `trusted_proxies` is checked.
    pub header_secret: String,
    /// Expected `iss` of JWT bearer tokens; empty turns JWT identities off.
    pub jwt_issuer: String,
    /// Accepted `aud` values (at least one must match).
    pub jwt_audience: Vec<String>,
    /// JWKS file (JSON Web Key Set) of the issuer.
    pub jwt_jwks_file: String,
    /// JWKS URL of the issuer (used when no file is given).
    pub jwt_jwks_url: String,
    /// Signature algorithms accepted (`RS256`, `ES256`, `EdDSA`, …). `none`
    /// and the HMAC algorithms are never accepted.
    pub jwt_algorithms: Vec<String>,
    /// Claim holding the subject.
    pub jwt_subject_claim: String,
    /// Claim holding the roles: an array of strings or a space-separated
    /// string; a dotted path reaches nested claims (`realm_access.roles`).
    pub jwt_roles_claim: String,
    /// Claim holding the grants (`admin`, `<domain>:<grant>`), same forms.
    pub jwt_grants_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub jwt_leeway_seconds: u64,
    /// The JWKS is fetched again after this long (and sooner when a token
    /// names an unknown key, at most every 10 seconds).
    pub jwt_jwks_refresh_seconds: u64,
    /// Grants given by a role (`"payments-clerk" = ["payments:read", "payments:write"]`),
    /// for identities of both sources.
    pub role_grants: BTreeMap<String, Vec<String>>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            header_subject: String::new(),
            header_roles: "x-vnext-roles".into(),
            header_grants: "x-vnext-grants".into(),
            trusted_proxies: Vec::new(),
            header_secret_name: "x-vnext-proxy-secret".into(),
            header_secret: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: Vec::new(),
            jwt_jwks_file: String::new(),
            jwt_jwks_url: String::new(),
            jwt_algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            jwt_subject_claim: "sub".into(),
            jwt_roles_claim: "roles".into(),
            jwt_grants_claim: "vnext_grants".into(),
            jwt_leeway_seconds: 30,
            jwt_jwks_refresh_seconds: 300,
            role_grants: BTreeMap::new(),
        }
    }
}

/// The shortest proxy secret accepted.
pub const MIN_HEADER_SECRET_LEN: usize = 32;

impl IdentityConfig {
    pub fn header_enabled(&self) -> bool {
        !self.header_subject.trim().is_empty()
    }

    pub fn jwt_enabled(&self) -> bool {
        !self.jwt_issuer.trim().is_empty()
    }

    /// Whether any source besides API keys is configured.
    pub fn any_enabled(&self) -> bool {
        self.header_enabled() || self.jwt_enabled()
    }

    /// Checks what a source needs to be safe.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.header_enabled() {
            if self.trusted_proxies.is_empty() && self.header_secret.is_empty() {
                return Err("identity.header_subject is set: also set identity.trusted_proxies or identity.header_secret, \
                            or anyone could claim any identity"
                    .into());
            }
            if !self.header_secret.is_empty() && self.header_secret.chars().count() < MIN_HEADER_SECRET_LEN {
                return Err(format!("identity.header_secret must be at least {MIN_HEADER_SECRET_LEN} characters"));
            }
            if !self.header_secret.is_empty() && self.header_secret_name.trim().is_empty() {
                return Err("identity.header_secret_name must name the header that carries identity.header_secret".into());
            }
        }
        if self.jwt_enabled() {
            if self.jwt_audience.iter().all(|a| a.trim().is_empty()) {
                return Err("identity.jwt_issuer is set: identity.jwt_audience must name at least one audience".into());
            }
            if self.jwt_jwks_file.trim().is_empty() == self.jwt_jwks_url.trim().is_empty() {
                return Err("identity.jwt_issuer is set: give exactly one of identity.jwt_jwks_file and identity.jwt_jwks_url".into());
            }
            if self.jwt_algorithms.is_empty() {
                return Err("identity.jwt_algorithms must name at least one algorithm".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_need_their_safeguards() {
        assert!(IdentityConfig::default().check().is_ok());
        assert!(!IdentityConfig::default().any_enabled());
        let mut c = IdentityConfig { header_subject: "x-user".into(), ..IdentityConfig::default() };
        assert!(c.check().unwrap_err().contains("trusted_proxies"));
        c.header_secret = "short".into();
        assert!(c.check().unwrap_err().contains("at least 32"));
        c.header_secret = "s".repeat(32);
        assert!(c.check().is_ok());
        let mut j = IdentityConfig { jwt_issuer: "https://idp.example".into(), ..IdentityConfig::default() };
        assert!(j.check().unwrap_err().contains("jwt_audience"));
        j.jwt_audience = vec!["vnext".into()];
        assert!(j.check().unwrap_err().contains("exactly one"));
        j.jwt_jwks_url = "https://idp.example/jwks".into();
        assert!(j.check().is_ok());
        assert!(j.any_enabled());
    }
}
