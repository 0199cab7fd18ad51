//! `[limits]`: quotas of the public API, per caller and per domain.
//!
//! The app applies them (`vnext_app::api::limits`); semantics are documented
//! in `docs/configuration.md`. A limit of 0 is off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Per-caller and per-domain quotas, with per-domain overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests one API key (or identity) may make per second, sustained.
    pub key_requests_per_second: u32,
    /// Requests one key may make at once above the sustained rate (the
    /// bucket's size); 0 = the per-second rate.
    pub key_burst: u32,
    /// Requests of one key in flight at once.
    pub key_concurrency: u32,
    /// Instances one domain may start per second (every caller together).
    pub domain_starts_per_second: u32,
    /// Starts above that rate one domain may take at once; 0 = the rate.
    pub domain_starts_burst: u32,
    /// Largest body of a start, transition or retry in a domain, in bytes.
    pub domain_payload_bytes: usize,
    /// Per-domain values; a field set there replaces the global one.
    pub domains: BTreeMap<String, DomainLimits>,
}

/// A domain's own caps; unset fields inherit the global ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<usize>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            key_requests_per_second: 200,
            key_burst: 400,
            key_concurrency: 64,
            domain_starts_per_second: 1_000,
            domain_starts_burst: 0,
            domain_payload_bytes: 256 * 1024,
            domains: BTreeMap::new(),
        }
    }
}

impl LimitsConfig {
    /// The start rate and burst of `domain` (0 = no cap).
    pub fn starts_of(&self, domain: &str) -> (u32, u32) {
        let own = self.domains.get(domain);
        let rate = own.and_then(|d| d.starts_per_second).unwrap_or(self.domain_starts_per_second);
        let burst = own.and_then(|d| d.starts_burst).unwrap_or(self.domain_starts_burst);
        (rate, if burst == 0 { rate } else { burst })
    }

    /// The payload cap of `domain`, in bytes (0 = no cap but `app.body_limit_bytes`).
    pub fn payload_of(&self, domain: &str) -> usize {
        self.domains.get(domain).and_then(|d| d.payload_bytes).unwrap_or(self.domain_payload_bytes)
    }

    /// The sustained rate and burst of one key (0 = no cap).
    pub fn key_rate(&self) -> (u32, u32) {
        let burst = if self.key_burst == 0 { self.key_requests_per_second } else { self.key_burst };
        (self.key_requests_per_second, burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_values_override_the_global_ones() {
        let mut limits = LimitsConfig::default();
        limits.domains.insert("busy".into(), DomainLimits { starts_per_second: Some(5), payload_bytes: Some(10), ..DomainLimits::default() });
        assert_eq!(limits.starts_of("busy"), (5, 5));
        assert_eq!(limits.starts_of("other"), (1_000, 1_000));
        assert_eq!(limits.payload_of("busy"), 10);
        assert_eq!(limits.payload_of("other"), 256 * 1024);
        assert_eq!(limits.key_rate(), (200, 400));
        let parsed: LimitsConfig = toml::from_str("key_concurrency = 2\n[domains.shop]\nstarts_burst = 9\n").unwrap();
        assert_eq!(parsed.key_concurrency, 2);
        assert_eq!(parsed.starts_of("shop"), (1_000, 9));
        assert!(toml::from_str::<LimitsConfig>("[domains.shop]\nstarts = 1\n").is_err());
    }
}
