//! Identities besides API keys, for deployments behind a gateway
//! (`[identity]`, see `vnext_init::config::identity`).
//!
//! - [`header`]: a trusted proxy passes the subject, roles and grants in
//!   headers; believed only from a trusted peer and/or with the proxy's secret.
//! - [`jwt`]: a bearer JWT verified against the issuer's JWKS.
//!
//! Both end as an [`Identity`]: a subject with grants and roles. Grants are
//! written `admin` or `<domain>:<grant>` (`payments:read`; `payments:*` for
//! publish, write and read), and also come from the roles through
//! `identity.role_grants`. Grants that cannot be read are ignored (logged at
//! debug): a token meant for several systems carries values of theirs too.

pub mod header;
pub mod jwt;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use axum::http::HeaderMap;
use vnext_init::config::identity::IdentityConfig;
use vnext_init::keys::Grant;

use crate::error::{ApiError, ErrorCode};

/// Where an identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// Headers of a trusted proxy.
    Header,
    /// A verified JWT bearer token.
    Jwt,
}

impl IdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Header => "header",
            IdentitySource::Jwt => "jwt",
        }
    }
}

/// Someone a gateway or an identity provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub source: IdentitySource,
    pub subject: String,
    /// Provision domains, manage keys, every domain (like an admin key).
    pub admin: bool,
    /// Grants per domain.
    pub grants: BTreeMap<String, BTreeSet<Grant>>,
    pub roles: Vec<String>,
}

impl Identity {
    /// An identity whose grants come from `grants` and from its roles'
    /// entries in `role_grants`.
    pub fn new(source: IdentitySource, subject: String, roles: Vec<String>, grants: &[String], role_grants: &BTreeMap<String, Vec<String>>) -> Identity {
        let mut identity = Identity { source, subject, admin: false, grants: BTreeMap::new(), roles };
        let from_roles: Vec<String> = identity.roles.iter().filter_map(|r| role_grants.get(r)).flatten().cloned().collect();
        for raw in grants.iter().chain(&from_roles) {
            identity.add_grant(raw);
        }
        identity
    }

    fn add_grant(&mut self, raw: &str) {
        let raw = raw.trim();
        if raw == "admin" {
            self.admin = true;
            return;
        }
        let parsed = raw.split_once(':').and_then(|(domain, grant)| {
            let grants: Vec<Grant> = match grant.trim() {
                "*" => Grant::ALL.to_vec(),
                g => vec![Grant::parse(g).ok()?],
            };
            let domain = domain.trim();
            vnext_core::ident::DomainName::new(domain).ok().map(|_| (domain.to_string(), grants))
        });
        match parsed {
            Some((domain, grants)) => self.grants.entry(domain).or_default().extend(grants),
            None => tracing::debug!(subject = %self.subject, grant = raw, "ignoring a grant that is not `admin` or `<domain>:<grant>`"),
        }
    }

    pub fn allows(&self, domain: &str, grant: Grant) -> bool {
        self.admin || self.grants.get(domain).is_some_and(|g| g.contains(&grant))
    }

    /// `jwt:<subject>` or `header:<subject>`: who this is in logs and records.
    pub fn label(&self) -> String {
        format!("{}:{}", self.source.as_str(), self.subject)
    }
}

/// The configured identity sources of one server.
pub struct Identities {
    header: Option<header::HeaderSource>,
    jwt: Option<jwt::JwtSource>,
    /// Why the configured sources could not be read: every request that
    /// would use them is refused (a broken setting never opens the API).
    broken: Option<String>,
}

impl Identities {
    /// Reads `[identity]`. Nothing is fetched yet (see [`Identities::preload`]).
    ///
    /// # Errors
    /// A message naming the field that cannot be read.
    pub fn from_config(config: &IdentityConfig) -> Result<Identities, String> {
        config.check()?;
        let header = config.header_enabled().then(|| header::HeaderSource::from_config(config)).transpose()?;
        let jwt = config.jwt_enabled().then(|| jwt::JwtSource::from_config(config)).transpose()?;
        Ok(Identities { header, jwt, broken: None })
    }

    /// No source configured.
    pub fn none() -> Identities {
        Identities { header: None, jwt: None, broken: None }
    }

    /// The sources `config` names; when they cannot be read (the services
    /// check that before they start), sources that refuse every request.
    pub fn from_config_or_refusing(config: &IdentityConfig) -> Identities {
        Identities::from_config(config).unwrap_or_else(|message| {
            tracing::error!(error = %message, "identity settings cannot be read; identities are refused");
            Identities { broken: Some(message), ..Identities::none() }
        })
    }

    /// Whether any source is configured (then requests always need credentials).
    pub fn enabled(&self) -> bool {
        self.header.is_some() || self.jwt.is_some() || self.broken.is_some()
    }

    fn refused(&self) -> Option<ApiError> {
        self.broken.as_ref().map(|_| ApiError::new(ErrorCode::Unavailable, "the identity settings cannot be read; see the server's log"))
    }

    /// Loads the JWKS now, so a server with an unreadable one does not start.
    ///
    /// # Errors
    /// What went wrong reading or fetching it.
    pub async fn preload(&self) -> Result<(), String> {
        match &self.jwt {
            Some(jwt) => jwt.preload().await,
            None => Ok(()),
        }
    }

    /// The identity the proxy's headers carry, when the request has them.
    ///
    /// # Errors
    /// 401 `auth.untrusted-identity` when they come from an untrusted peer or
    /// without the proxy's secret.
    pub fn from_headers(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<Result<Identity, ApiError>> {
        if let Some(refused) = self.refused() {
            return Some(Err(refused));
        }
        self.header.as_ref().and_then(|h| h.identify(peer, headers))
    }

    /// Whether `token` should be verified as a JWT (a JWT source is configured
    /// and it has the JWT shape); otherwise it is looked up as an API key.
    pub fn takes_token(&self, token: &str) -> bool {
        (self.jwt.is_some() || self.broken.is_some()) && jwt::looks_like_jwt(token)
    }

    /// Verifies a JWT bearer token.
    ///
    /// # Errors
    /// 401 `auth.invalid-token` naming what failed; 503 when the JWKS cannot
    /// be fetched.
    pub async fn verify_token(&self, token: &str) -> Result<Identity, ApiError> {
        if let Some(refused) = self.refused() {
            return Err(refused);
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(token).await,
            None => Err(ApiError::new(ErrorCode::AuthInvalidToken, "no JWT issuer is configured")),
        }
    }
}

/// Comma-separated values of one header (all its occurrences).
fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// Compares without an early exit on the first differing byte.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_come_from_the_list_and_from_roles() {
        let role_grants = BTreeMap::from([("clerk".to_string(), vec!["shop:write".to_string(), "shop:read".to_string()])]);
        let grants = ["billing:*".to_string(), "nonsense".to_string(), "shop:delete".to_string(), "Bad Domain:read".to_string()];
        let id = Identity::new(IdentitySource::Jwt, "u1".into(), vec!["clerk".into()], &grants, &role_grants);
        assert!(!id.admin);
        assert!(id.allows("shop", Grant::Write) && id.allows("shop", Grant::Read) && !id.allows("shop", Grant::Publish));
        assert!(Grant::ALL.iter().all(|g| id.allows("billing", *g)));
        assert!(!id.allows("other", Grant::Read));
        assert_eq!(id.label(), "jwt:u1");
        let admin = Identity::new(IdentitySource::Header, "ops".into(), vec![], &["admin".into()], &BTreeMap::new());
        assert!(admin.admin && admin.allows("anything", Grant::Publish));
    }
}
