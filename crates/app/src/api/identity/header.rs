//! Trusted-header identities: a proxy authenticated the user and says who it
//! is in `identity.header_subject` (roles in `header_roles`, grants in
//! `header_grants`, comma-separated).
//!
//! The headers are believed only when the connection's peer is in
//! `identity.trusted_proxies` (when that is set) and the request carries
//! `identity.header_secret` in `header_secret_name` (when that is set). A
//! request that carries the subject header otherwise is refused with 401
//! `auth.untrusted-identity` rather than served as somebody else: the headers
//! show a client trying to claim an identity, or a proxy set up wrongly.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;
use vnext_init::config::identity::IdentityConfig;

use super::{Identity, IdentitySource, header_list, same_secret};
use crate::error::{ApiError, ErrorCode};

pub struct HeaderSource {
    subject: String,
    roles: String,
    grants: String,
    proxies: Vec<IpNet>,
    secret_name: String,
    secret: String,
    role_grants: BTreeMap<String, Vec<String>>,
}

impl HeaderSource {
    /// # Errors
    /// A message naming a `trusted_proxies` entry that is not an address or CIDR block.
    pub fn from_config(config: &IdentityConfig) -> Result<HeaderSource, String> {
        let proxies = config
            .trusted_proxies
            .iter()
            .map(|raw| {
                let raw = raw.trim();
                raw.parse::<IpNet>()
                    .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("identity.trusted_proxies: `{raw}` is not an IP address or CIDR block"))
            })
            .collect::<Result<_, _>>()?;
        Ok(HeaderSource {
            subject: config.header_subject.trim().to_ascii_lowercase(),
            roles: config.header_roles.trim().to_ascii_lowercase(),
            grants: config.header_grants.trim().to_ascii_lowercase(),
            proxies,
            secret_name: config.header_secret_name.trim().to_ascii_lowercase(),
            secret: config.header_secret.clone(),
            role_grants: config.role_grants.clone(),
        })
    }

    fn trusted_peer(&self, peer: Option<SocketAddr>) -> bool {
        if self.proxies.is_empty() {
            return true;
        }
        // An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`.
        let Some(ip) = peer.map(|p| p.ip().to_canonical()) else { return false };
        self.proxies.iter().any(|net| net.contains(&ip))
    }

    /// See the module docs; `None` when the request has no subject header.
    pub fn identify(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<Result<Identity, ApiError>> {
        let subject = headers.get(&self.subject)?;
        let untrusted = |why: &str| Some(Err(ApiError::new(ErrorCode::AuthUntrustedIdentity, format!("`{}` {why}", self.subject))));
        if !self.trusted_peer(peer) {
            tracing::warn!(peer = ?peer, header = %self.subject, "identity header from a peer that is not a trusted proxy");
            return untrusted("came from a peer that is not in identity.trusted_proxies");
        }
        if !self.secret.is_empty() {
            let given = headers.get(&self.secret_name).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if !same_secret(given, &self.secret) {
                tracing::warn!(peer = ?peer, header = %self.subject, "identity header without the proxy's secret");
                return untrusted(&format!("came without the proxy's secret in `{}`", self.secret_name));
            }
        }
        let subject = subject.to_str().map(str::trim).unwrap_or_default();
        if subject.is_empty() || subject.len() > 200 {
            return untrusted("must carry a subject of 1 to 200 visible characters");
        }
        let roles = header_list(headers, &self.roles);
        let grants = header_list(headers, &self.grants);
        Some(Ok(Identity::new(IdentitySource::Header, subject.to_string(), roles, &grants, &self.role_grants)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn source(proxies: &[&str], secret: &str) -> HeaderSource {
        let config = IdentityConfig {
            header_subject: "X-User".into(),
            trusted_proxies: proxies.iter().map(ToString::to_string).collect(),
            header_secret: secret.into(),
            ..IdentityConfig::default()
        };
        HeaderSource::from_config(&config).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn believed_only_from_trusted_peers_and_with_the_secret() {
        let s = source(&["10.0.0.0/8", "127.0.0.1"], "");
        let h = headers(&[("x-user", "alice"), ("x-vnext-roles", "clerk, auditor"), ("x-vnext-roles", "ops"), ("x-vnext-grants", "shop:read")]);
        let peer = |ip: &str| Some(SocketAddr::new(ip.parse().unwrap(), 5000));
        let id = s.identify(peer("10.1.2.3"), &h).unwrap().unwrap();
        assert_eq!((id.subject.as_str(), id.roles.clone()), ("alice", vec!["clerk".into(), "auditor".into(), "ops".into()]));
        assert!(s.identify(peer("::ffff:127.0.0.1"), &h).unwrap().is_ok());
        assert_eq!(s.identify(peer("192.168.1.1"), &h).unwrap().unwrap_err().code, ErrorCode::AuthUntrustedIdentity);
        assert!(s.identify(None, &h).unwrap().is_err());
        assert!(s.identify(peer("10.1.2.3"), &headers(&[("x-other", "a")])).is_none());

        let secret = "p".repeat(32);
        let s = source(&[], &secret);
        assert!(s.identify(peer("192.168.1.1"), &h).unwrap().is_err());
        let mut with = h.clone();
        with.insert("x-vnext-proxy-secret", HeaderValue::from_str(&secret).unwrap());
        assert!(s.identify(peer("192.168.1.1"), &with).unwrap().is_ok());
        assert!(HeaderSource::from_config(&IdentityConfig { trusted_proxies: vec!["nope".into()], ..IdentityConfig::default() }).is_err());
    }
}
