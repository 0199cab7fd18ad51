//! JWT bearer identities (OIDC), verified with the `jsonwebtoken` crate.
//!
//! A token is accepted when its header names an algorithm of
//! `identity.jwt_algorithms` (never `none` or HMAC: the verifying keys are
//! public), its signature verifies with the JWKS key its `kid` names (the key's
//! own `alg`, when given, must match), `iss` is `identity.jwt_issuer`, `aud`
//! holds one of `identity.jwt_audience`, and `exp` (required) and `nbf` hold,
//! give or take `jwt_leeway_seconds`.
//!
//! The JWKS comes from a file or a URL and is cached; it is loaded again after
//! `jwt_jwks_refresh_seconds`, and when a token names a key the cached set does
//! not have (at most every [`FORCED_REFRESH_GAP`], so tokens with made-up key
//! ids cannot make the server hammer the identity provider). When a refresh
//! fails the cached set stays in use; with none at all the request is a 503.
//!
//! A JWT cannot be revoked here: it is valid until it expires, so identity
//! providers should issue short-lived access tokens.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use vnext_init::config::identity::IdentityConfig;

use super::{Identity, IdentitySource};
use crate::error::{ApiError, ErrorCode};

/// The shortest time between two refreshes caused by an unknown key id.
pub const FORCED_REFRESH_GAP: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

enum JwksLocation {
    File(PathBuf),
    Url(String),
}

struct Cached {
    set: JwkSet,
    loaded: Instant,
}

pub struct JwtSource {
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    subject_claim: String,
    roles_claim: String,
    grants_claim: String,
    leeway: u64,
    refresh: Duration,
    role_grants: BTreeMap<String, Vec<String>>,
    location: JwksLocation,
    client: reqwest::Client,
    cache: RwLock<Option<Cached>>,
    /// Serialises loads; holds when the last forced one was.
    loading: Mutex<Option<Instant>>,
}

/// Three dot-separated base64url parts, the first one a JSON header.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::AuthInvalidToken, detail)
}

impl JwtSource {
    /// # Errors
    /// A message naming an algorithm that is unknown or not allowed.
    pub fn from_config(config: &IdentityConfig) -> Result<JwtSource, String> {
        let algorithms = config
            .jwt_algorithms
            .iter()
            .map(|a| {
                let alg: Algorithm = a.trim().parse().map_err(|_| format!("identity.jwt_algorithms: unknown algorithm `{a}`"))?;
                if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                    return Err(format!("identity.jwt_algorithms: `{a}` (a shared-secret algorithm) is not accepted; use RS*, PS*, ES* or EdDSA"));
                }
                Ok(alg)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let location = if config.jwt_jwks_file.trim().is_empty() {
            JwksLocation::Url(config.jwt_jwks_url.trim().to_string())
        } else {
            JwksLocation::File(PathBuf::from(config.jwt_jwks_file.trim()))
        };
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        Ok(JwtSource {
            issuer: config.jwt_issuer.trim().to_string(),
            audience: config.jwt_audience.iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect(),
            algorithms,
            subject_claim: config.jwt_subject_claim.clone(),
            roles_claim: config.jwt_roles_claim.clone(),
            grants_claim: config.jwt_grants_claim.clone(),
            leeway: config.jwt_leeway_seconds,
            refresh: Duration::from_secs(config.jwt_jwks_refresh_seconds.max(1)),
            role_grants: config.role_grants.clone(),
            location,
            client,
            cache: RwLock::new(None),
            loading: Mutex::new(None),
        })
    }

    /// Loads the JWKS once.
    ///
    /// # Errors
    /// Why it cannot be read or fetched.
    pub async fn preload(&self) -> Result<(), String> {
        let set = self.fetch().await?;
        *self.cache.write().await = Some(Cached { set, loaded: Instant::now() });
        Ok(())
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let text = match &self.location {
            JwksLocation::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?,
            JwksLocation::Url(url) => {
                let response = self.client.get(url).send().await.map_err(|e| format!("cannot fetch the JWKS from {url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("the JWKS URL {url} answered {}", response.status()));
                }
                response.text().await.map_err(|e| format!("cannot read the JWKS from {url}: {e}"))?
            }
        };
        serde_json::from_str(&text).map_err(|e| format!("the JWKS is not a JSON Web Key Set: {e}"))
    }

    /// The cached key set, loaded again when stale or when `force`d (an
    /// unknown key id; rate-limited).
    async fn keys(&self, force: bool) -> Result<JwkSet, ApiError> {
        {
            let cache = self.cache.read().await;
            if let Some(c) = cache.as_ref()
                && !force
                && c.loaded.elapsed() < self.refresh
            {
                return Ok(c.set.clone());
            }
        }
        let mut last_forced = self.loading.lock().await;
        // Another request may have loaded it while this one waited.
        if let Some(c) = self.cache.read().await.as_ref() {
            let fresh = c.loaded.elapsed() < self.refresh;
            let throttled = force && last_forced.is_some_and(|t| t.elapsed() < FORCED_REFRESH_GAP);
            if (fresh && !force) || throttled {
                return Ok(c.set.clone());
            }
        }
        if force {
            *last_forced = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(set) => {
                *self.cache.write().await = Some(Cached { set: set.clone(), loaded: Instant::now() });
                Ok(set)
            }
            Err(message) => {
                tracing::warn!(error = %message, "cannot load the JWKS; keeping the cached one");
                match self.cache.read().await.as_ref() {
                    Some(c) => Ok(c.set.clone()),
                    None => Err(ApiError {
                        source: Some(message.into()),
                        ..ApiError::new(ErrorCode::Unavailable, "the identity provider's keys cannot be loaded; retry shortly")
                    }),
                }
            }
        }
    }

    /// See the module docs.
    ///
    /// # Errors
    /// 401 `auth.invalid-token` naming what failed; 503 without any JWKS.
    pub async fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("the bearer token is not a readable JWT: {e}")))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(format!("the token's algorithm {:?} is not accepted (identity.jwt_algorithms)", header.alg)));
        }
        let mut set = self.keys(false).await?;
        let mut jwk = pick(&set, header.kid.as_deref(), header.alg).cloned();
        if jwk.is_none() {
            set = self.keys(true).await?;
            jwk = pick(&set, header.kid.as_deref(), header.alg).cloned();
        }
        let jwk = jwk.ok_or_else(|| invalid(format!("no key of the issuer's JWKS matches the token (kid {:?})", header.kid)))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(format!("the JWKS key {:?} cannot verify tokens: {e}", header.kid)))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| invalid(format!("the bearer token was refused: {e}")))?
            .claims;
        let subject = claim(&claims, &self.subject_claim)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("the token has no `{}` claim naming its subject", self.subject_claim)))?;
        let roles = strings(claim(&claims, &self.roles_claim));
        let grants = strings(claim(&claims, &self.grants_claim));
        Ok(Identity::new(IdentitySource::Jwt, subject.to_string(), roles, &grants, &self.role_grants))
    }
}

/// The key a token names; without a `kid`, the only key usable with `alg`.
fn pick<'s>(set: &'s JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'s Jwk> {
    let fits = |k: &&Jwk| k.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{alg:?}"));
    match kid {
        Some(kid) => set.find(kid).filter(fits),
        None => {
            let mut usable = set.keys.iter().filter(fits).filter(|k| DecodingKey::from_jwk(k).is_ok_and(|d| d.family() == alg.family()));
            match (usable.next(), usable.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

/// A claim by name, or by a dotted path into nested objects.
fn claim<'c>(claims: &'c Value, name: &str) -> Option<&'c Value> {
    claims.get(name).or_else(|| name.split('.').try_fold(claims, |v, part| v.get(part)))
}

/// An array of strings, or one string of space- or comma-separated values.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Some(Value::String(s)) => s.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn claims_by_name_or_path_as_lists() {
        let c = json!({"realm_access": {"roles": ["a", "b"]}, "scope": "x y,z", "https://v.example/roles": ["r"]});
        assert_eq!(strings(claim(&c, "realm_access.roles")), ["a", "b"]);
        assert_eq!(strings(claim(&c, "scope")), ["x", "y", "z"]);
        assert_eq!(strings(claim(&c, "https://v.example/roles")), ["r"]);
        assert!(strings(claim(&c, "missing.path")).is_empty());
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig"));
        assert!(!looks_like_jwt("vnk_abc"));
    }

    #[test]
    fn shared_secret_algorithms_are_refused() {
        let config = IdentityConfig { jwt_algorithms: vec!["HS256".into()], ..IdentityConfig::default() };
        assert!(JwtSource::from_config(&config).err().unwrap().contains("not accepted"));
        let config = IdentityConfig { jwt_algorithms: vec!["none".into()], ..IdentityConfig::default() };
        assert!(JwtSource::from_config(&config).err().unwrap().contains("unknown"));
    }
}
