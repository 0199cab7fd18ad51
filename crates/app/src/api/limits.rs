//! Quotas of the public API (`[limits]`): per caller and per domain.
//!
//! Per caller (an API key, or an identity by its label), checked by
//! [`Limits::admit`] right after the caller is known ([`super::auth`]), so a
//! request refused for a missing grant counts too:
//! - a request rate, GCRA through `governor` (`key_requests_per_second`,
//!   bucket `key_burst`): past it 429 `rate.limited`;
//! - requests in flight (`key_concurrency`): a counter per caller, held by an
//!   [`InFlight`] guard for as long as the request runs; past it 429
//!   `rate.concurrency-limited`.
//!
//! An open development run (no key) has no caller to count: only the domain
//! caps apply to it.
//!
//! Per domain, checked by [`domain_caps_middleware`] on the domain's
//! start, transition and retry routes, after authentication:
//! - instances started per second (`domain_starts_per_second`, every caller
//!   together): 429 `rate.starts-limited`;
//! - the body's size (`domain_payload_bytes`): 413 `payload.too-large`. The
//!   body is read here up to the cap, so an oversized one is never held whole.
//!
//! Every 429 carries `Retry-After` (whole seconds, at least 1): when the rate
//! admits the next request, or 1 s for a concurrency refusal. 503
//! `script.busy` carries `Retry-After: 1` too ([`retry_after_of`]).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use vnext_init::config::limits::LimitsConfig;

use super::AppState;
use super::auth::Caller;
use crate::error::{ApiError, ErrorCode};

/// The route whose calls count as starts.
const START_ROUTE: &str = "/api/v1/{domain}/workflows/{workflow}/instances/start";

/// Keyed limiters forget callers idle this many checks later (their buckets
/// are full again by then anyway), so the maps do not grow without end.
const PRUNE_EVERY: u64 = 4096;

/// The quotas of one server, shared by its requests.
pub struct Limits {
    key_rate: Option<DefaultKeyedRateLimiter<String>>,
    key_concurrency: u32,
    in_flight: Mutex<HashMap<String, u32>>,
    /// Domains without an override of their own share this keyed limiter.
    starts: Option<DefaultKeyedRateLimiter<String>>,
    /// Domains with `[limits.domains.<name>]` start caps get their own.
    own_starts: BTreeMap<String, Option<DefaultDirectRateLimiter>>,
    config: LimitsConfig,
    checks: AtomicU64,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("config", &self.config).finish_non_exhaustive()
    }
}

fn quota(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate)))
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        let (rate, burst) = config.key_rate();
        let own_starts = config
            .domains
            .iter()
            .filter(|(_, d)| d.starts_per_second.is_some() || d.starts_burst.is_some())
            .map(|(name, _)| {
                let (rate, burst) = config.starts_of(name);
                (name.clone(), quota(rate, burst).map(RateLimiter::direct))
            })
            .collect();
        Limits {
            key_rate: quota(rate, burst).map(RateLimiter::keyed),
            key_concurrency: config.key_concurrency,
            in_flight: Mutex::new(HashMap::new()),
            starts: quota(config.domain_starts_per_second, config.domain_starts_burst).map(RateLimiter::keyed),
            own_starts,
            config: config.clone(),
            checks: AtomicU64::new(0),
        }
    }

    /// Admits a request of `caller`, or answers why not. The guard counts the
    /// request in flight until it is dropped.
    ///
    /// # Errors
    /// The 429 to answer.
    pub fn admit(self: &Arc<Self>, caller: &Caller) -> Result<Option<InFlight>, Box<Response>> {
        if matches!(caller, Caller::Open) {
            return Ok(None);
        }
        let who = caller.label();
        self.prune();
        if let Some(limiter) = &self.key_rate
            && let Err(not_until) = limiter.check_key(&who)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let (rate, burst) = self.config.key_rate();
            let error = ApiError::new(
                ErrorCode::RateLimited,
                format!("this caller is limited to {rate} requests per second (bursts of {burst}); retry after the time in Retry-After"),
            )
            .with_extra("limit", Value::from(rate));
            return Err(too_many(error, wait));
        }
        if self.key_concurrency == 0 {
            return Ok(None);
        }
        let mut in_flight = self.in_flight.lock().expect("in-flight counters");
        let count = in_flight.entry(who.clone()).or_default();
        if *count >= self.key_concurrency {
            let error = ApiError::new(
                ErrorCode::ConcurrencyLimited,
                format!("this caller already has {} requests in flight (limits.key_concurrency); retry when one has finished", self.key_concurrency),
            )
            .with_extra("limit", Value::from(self.key_concurrency));
            return Err(too_many(error, Duration::from_secs(1)));
        }
        *count += 1;
        Ok(Some(InFlight { limits: Arc::clone(self), who }))
    }

    /// Counts a start in `domain`, or answers why not.
    fn admit_start(&self, domain: &str) -> Result<(), Box<Response>> {
        self.prune();
        let refused = match self.own_starts.get(domain) {
            Some(own) => own.as_ref().and_then(|l| l.check().err()),
            None => self.starts.as_ref().and_then(|l| l.check_key(&domain.to_string()).err()),
        };
        let Some(not_until) = refused else { return Ok(()) };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let (rate, burst) = self.config.starts_of(domain);
        let error = ApiError::new(
            ErrorCode::StartsLimited,
            format!("domain `{domain}` starts at most {rate} instances per second (bursts of {burst}); retry after the time in Retry-After"),
        )
        .with_extra("limit", Value::from(rate));
        Err(too_many(error, wait))
    }

    fn prune(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            for limiter in [&self.key_rate, &self.starts].into_iter().flatten() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

/// One request counted in flight for its caller; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight {
    limits: Arc<Limits>,
    who: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self.limits.in_flight.lock().expect("in-flight counters");
        if let Some(count) = in_flight.get_mut(&self.who) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.who);
            }
        }
    }
}

/// Whole seconds to wait, at least 1 (`Retry-After` has no fractions).
fn retry_after_seconds(wait: Duration) -> u64 {
    u64::try_from(wait.as_nanos().div_ceil(1_000_000_000)).unwrap_or(u64::MAX).max(1)
}

/// A 429 with `Retry-After` and the same figure in `retryAfterSeconds`.
fn too_many(error: ApiError, wait: Duration) -> Box<Response> {
    let seconds = retry_after_seconds(wait);
    let mut response = error.with_extra("retryAfterSeconds", Value::from(seconds)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    Box::new(response)
}

/// `Retry-After` of answers whose code always carries one.
pub fn retry_after_of(code: ErrorCode) -> Option<HeaderValue> {
    match code {
        // The call waited `runtime.script_queue_timeout_ms` for a thread
        // already; a second later the pool has usually moved on.
        ErrorCode::ScriptsBusy => Some(HeaderValue::from_static("1")),
        _ => None,
    }
}

/// Applies the domain caps (start rate, payload size) to the domain's
/// start, transition and retry routes; see the module docs.
pub async fn domain_caps_middleware(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PATCH | Method::PUT) {
        return next.run(request).await;
    }
    let Some(template) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(request).await;
    };
    if !template.starts_with("/api/v1/{domain}/") {
        return next.run(request).await;
    }
    let domain = match request.extract_parts::<RawPathParams>().await {
        Ok(raw) => raw.iter().find(|(name, _)| *name == "domain").map(|(_, v)| v.to_string()),
        Err(_) => None,
    };
    let Some(domain) = domain else { return next.run(request).await };
    let limits = &state.limits;
    if template == START_ROUTE
        && let Err(refused) = limits.admit_start(&domain)
    {
        return *refused;
    }
    let cap = limits.config.payload_of(&domain);
    // At or above the body limit, the body limit (413 request.body-too-large) decides.
    if cap == 0 || cap >= state.settings.body_limit_bytes {
        return next.run(request).await;
    }
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("domain `{domain}` takes bodies of at most {cap} bytes (limits.domain_payload_bytes)"),
        )
        .with_extra("limit", Value::from(cap))
        .into_response()
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut read = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) if read.len() + chunk.len() > cap => return too_large(),
            Ok(chunk) => read.extend_from_slice(&chunk),
            Err(e) => {
                return ApiError::new(ErrorCode::InvalidJson, format!("the request body could not be read: {e}")).into_response();
            }
        }
    }
    request = Request::from_parts(parts, Body::from(Bytes::from(read)));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use vnext_init::keys::{ApiKey, KeyScope};

    fn key_caller(n: u128) -> Caller {
        Caller::Key(Arc::new(ApiKey {
            id: uuid::Uuid::from_u128(n),
            name: "k".into(),
            scope: KeyScope::Admin,
            roles: Vec::new(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
            last_used_at: None,
        }))
    }

    #[test]
    fn a_busy_script_pool_says_when_to_retry() {
        let busy = ApiError::new(ErrorCode::ScriptsBusy, "no thread").into_response();
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let other = ApiError::new(ErrorCode::InstanceBusy, "held").into_response();
        assert!(!other.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
    }

    #[test]
    fn a_burst_past_the_bucket_is_refused_per_caller() {
        let config = LimitsConfig { key_requests_per_second: 1, key_burst: 3, key_concurrency: 0, ..LimitsConfig::default() };
        let limits = Arc::new(Limits::new(&config));
        let (a, b) = (key_caller(1), key_caller(2));
        for _ in 0..3 {
            assert!(limits.admit(&a).is_ok());
        }
        let refused = limits.admit(&a).unwrap_err();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert!(limits.admit(&b).is_ok(), "another key has its own bucket");
        assert!(limits.admit(&Caller::Open).unwrap().is_none(), "an open run has no key to count");
    }

    #[test]
    fn in_flight_requests_are_counted_until_dropped() {
        let config = LimitsConfig { key_requests_per_second: 0, key_concurrency: 2, ..LimitsConfig::default() };
        let limits = Arc::new(Limits::new(&config));
        let a = key_caller(1);
        let first = limits.admit(&a).unwrap();
        let second = limits.admit(&a).unwrap();
        assert_eq!(limits.admit(&a).unwrap_err().status(), 429);
        drop(first);
        let third = limits.admit(&a).unwrap();
        drop((second, third));
        assert!(limits.in_flight.lock().unwrap().is_empty(), "idle callers leave no counter behind");
    }

    #[test]
    fn domains_with_their_own_cap_do_not_share_the_global_one() {
        let mut config = LimitsConfig { domain_starts_per_second: 2, ..LimitsConfig::default() };
        config.domains.insert(
            "slow".into(),
            vnext_init::config::limits::DomainLimits { starts_per_second: Some(1), ..Default::default() },
        );
        let limits = Limits::new(&config);
        assert!(limits.admit_start("slow").is_ok());
        assert_eq!(limits.admit_start("slow").unwrap_err().status(), 429);
        assert!(limits.admit_start("shop").is_ok() && limits.admit_start("shop").is_ok());
        assert_eq!(limits.admit_start("shop").unwrap_err().status(), 429);
        assert!(limits.admit_start("other").is_ok(), "each domain has its own bucket");
    }
}
