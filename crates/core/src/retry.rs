//! Retry and backoff math for error-boundary `Retry` rules.
//!
//! A definition's `retryPolicy` ([`RetryPolicySpec`]) becomes a validated
//! [`RetryPolicy`]; [`RetryPolicy::delay_for`] says how long to wait before a given
//! retry. Randomness is the caller's: it passes a sample in `0..=1`, so the math is
//! deterministic and testable.
//!
//! Delay before retry `n` (1-based; a task runs at most `1 + maxRetries` times):
//! - fixed backoff: `initialDelay`;
//! - exponential backoff: `initialDelay × multiplier^(n-1)`;
//! - then capped at `maxDelay` (and never more than [`DELAY_CEILING`]);
//! - with jitter, scaled by `0.5 + 0.5 × sample`: a delay drawn between half and all
//!   of the computed one ("equal jitter"), so retries of many instances spread out
//!   while none waits longer than the policy says.
//!
//! Delays are whole milliseconds (rounded to the nearest).

use chrono::TimeDelta;

use crate::model::RetryPolicySpec;
use crate::schedule::{ScheduleError, parse_duration};

/// vNext default for `maxRetries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// vNext default for `backoffMultiplier`.
pub const DEFAULT_MULTIPLIER: f64 = 2.0;
/// No computed delay exceeds this (one year), whatever the policy.
pub const DELAY_CEILING: TimeDelta = TimeDelta::days(365);

/// How delays grow from one retry to the next (`backoffType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// `backoffType: 0`: every retry waits `initialDelay`.
    Fixed,
    /// `backoffType: 1` (the default): each retry waits `multiplier` times longer.
    Exponential,
}

/// A validated retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub initial_delay: TimeDelta,
    pub max_retries: u32,
    pub backoff: Backoff,
    pub multiplier: f64,
    pub max_delay: Option<TimeDelta>,
    pub jitter: bool,
}

/// Why a `retryPolicy` is invalid. Each variant names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryPolicyError {
    #[error("retryPolicy.{field}: {source}")]
    Duration { field: &'static str, source: ScheduleError },
    #[error("retryPolicy.initialDelay must be greater than zero, got `{0}`")]
    ZeroInitialDelay(String),
    #[error("retryPolicy.maxDelay (`{max_delay}`) must not be shorter than initialDelay (`{initial_delay}`)")]
    MaxDelayBelowInitial { initial_delay: String, max_delay: String },
    #[error("retryPolicy.backoffMultiplier must be a number of at least 1, got {0}")]
    Multiplier(f64),
    #[error("retryPolicy.backoffType must be 0 (fixed) or 1 (exponential), got {0}")]
    BackoffType(i64),
}

impl RetryPolicy {
    /// Validates a definition's `retryPolicy` and applies vNext defaults
    /// (maxRetries 3, exponential, multiplier 2.0, jitter on).
    ///
    /// # Errors
    /// [`RetryPolicyError`] naming the invalid field: unparsable or zero
    /// `initialDelay`, `maxDelay` shorter than `initialDelay`, multiplier below 1 (or
    /// not finite), unknown `backoffType`.
    pub fn from_spec(spec: &RetryPolicySpec) -> Result<RetryPolicy, RetryPolicyError> {
        let initial_delay = parse_duration(&spec.initial_delay)
            .map_err(|source| RetryPolicyError::Duration { field: "initialDelay", source })?;
        if initial_delay <= TimeDelta::zero() {
            return Err(RetryPolicyError::ZeroInitialDelay(spec.initial_delay.clone()));
        }
        let max_delay = match &spec.max_delay {
            None => None,
            Some(text) => {
                let d = parse_duration(text).map_err(|source| RetryPolicyError::Duration { field: "maxDelay", source })?;
                if d < initial_delay {
                    return Err(RetryPolicyError::MaxDelayBelowInitial {
                        initial_delay: spec.initial_delay.clone(),
                        max_delay: text.clone(),
                    });
                }
                Some(d)
            }
        };
        let multiplier = spec.backoff_multiplier.unwrap_or(DEFAULT_MULTIPLIER);
        if !multiplier.is_finite() || multiplier < 1.0 {
            return Err(RetryPolicyError::Multiplier(multiplier));
        }
        let backoff = match spec.backoff_type {
            None | Some(1) => Backoff::Exponential,
            Some(0) => Backoff::Fixed,
            Some(other) => return Err(RetryPolicyError::BackoffType(other)),
        };
        Ok(RetryPolicy {
            initial_delay,
            max_retries: spec.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            backoff,
            multiplier,
            max_delay,
            jitter: spec.use_jitter.unwrap_or(true),
        })
    }

    /// How many times the task runs at most: the first attempt plus every retry.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// The delay before retry `retry_number` (1-based) without jitter, capped at
    /// `maxDelay`; `None` when the policy has no such retry (0, or past `maxRetries`).
    pub fn base_delay(&self, retry_number: u32) -> Option<TimeDelta> {
        if retry_number == 0 || retry_number > self.max_retries {
            return None;
        }
        let initial_ms = self.initial_delay.num_milliseconds() as f64;
        let ms = match self.backoff {
            Backoff::Fixed => initial_ms,
            Backoff::Exponential => {
                let exponent = i32::try_from(retry_number - 1).unwrap_or(i32::MAX);
                initial_ms * self.multiplier.powi(exponent)
            }
        };
        let cap = self.max_delay.unwrap_or(DELAY_CEILING).min(DELAY_CEILING);
        Some(millis(ms).min(cap))
    }

    /// The delay before retry `retry_number` (1-based), jitter applied with the
    /// caller's `jitter_sample` in `0..=1` (clamped; NaN counts as 1). `None` when
    /// retries are exhausted.
    pub fn delay_for(&self, retry_number: u32, jitter_sample: f64) -> Option<TimeDelta> {
        let base = self.base_delay(retry_number)?;
        if !self.jitter {
            return Some(base);
        }
        let sample = if jitter_sample.is_nan() { 1.0 } else { jitter_sample.clamp(0.0, 1.0) };
        Some(millis(base.num_milliseconds() as f64 * (0.5 + 0.5 * sample)))
    }
}

/// Whole milliseconds, saturating at [`DELAY_CEILING`].
fn millis(ms: f64) -> TimeDelta {
    let ceiling = DELAY_CEILING.num_milliseconds();
    if !ms.is_finite() || ms >= ceiling as f64 {
        return DELAY_CEILING;
    }
    TimeDelta::milliseconds(ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(initial: &str) -> RetryPolicySpec {
        RetryPolicySpec {
            initial_delay: initial.into(),
            max_retries: None,
            backoff_type: None,
            backoff_multiplier: None,
            max_delay: None,
            use_jitter: None,
        }
    }

    fn secs(s: i64) -> Option<TimeDelta> {
        Some(TimeDelta::seconds(s))
    }

    fn ms(m: i64) -> Option<TimeDelta> {
        Some(TimeDelta::milliseconds(m))
    }

    #[test]
    fn vnext_defaults() {
        let p = RetryPolicy::from_spec(&spec("PT1S")).unwrap();
        assert_eq!(
            p,
            RetryPolicy {
                initial_delay: TimeDelta::seconds(1),
                max_retries: 3,
                backoff: Backoff::Exponential,
                multiplier: 2.0,
                max_delay: None,
                jitter: true,
            }
        );
        assert_eq!(p.max_attempts(), 4);
    }

    #[test]
    fn exponential_doubles_then_exhausts() {
        let p = RetryPolicy { jitter: false, ..RetryPolicy::from_spec(&spec("PT1S")).unwrap() };
        assert_eq!(p.delay_for(0, 0.3), None);
        assert_eq!(p.delay_for(1, 0.3), secs(1));
        assert_eq!(p.delay_for(2, 0.3), secs(2));
        assert_eq!(p.delay_for(3, 0.3), secs(4));
        assert_eq!(p.delay_for(4, 0.3), None);
    }

    #[test]
    fn fractional_multiplier_and_sub_second_delays() {
        let p = RetryPolicy::from_spec(&RetryPolicySpec {
            backoff_multiplier: Some(1.5),
            max_retries: Some(4),
            use_jitter: Some(false),
            ..spec("PT0.5S")
        })
        .unwrap();
        assert_eq!(p.delay_for(1, 0.0), ms(500));
        assert_eq!(p.delay_for(2, 0.0), ms(750));
        assert_eq!(p.delay_for(3, 0.0), ms(1125));
        // 1687.5 rounds to the nearest millisecond.
        assert_eq!(p.delay_for(4, 0.0), ms(1688));
    }

    #[test]
    fn max_delay_caps_growth() {
        let p = RetryPolicy::from_spec(&RetryPolicySpec {
            max_retries: Some(5),
            max_delay: Some("PT3S".into()),
            use_jitter: Some(false),
            ..spec("PT1S")
        })
        .unwrap();
        let delays: Vec<_> = (1..=5).map(|n| p.delay_for(n, 0.0).unwrap().num_milliseconds()).collect();
        assert_eq!(delays, vec![1000, 2000, 3000, 3000, 3000]);
    }

    #[test]
    fn fixed_backoff_ignores_multiplier() {
        let p = RetryPolicy::from_spec(&RetryPolicySpec {
            backoff_type: Some(0),
            backoff_multiplier: Some(3.0),
            use_jitter: Some(false),
            ..spec("PT10S")
        })
        .unwrap();
        assert_eq!(p.backoff, Backoff::Fixed);
        assert_eq!((1..=3).map(|n| p.delay_for(n, 0.9)).collect::<Vec<_>>(), vec![secs(10); 3]);
    }

    #[test]
    fn jitter_spreads_between_half_and_full() {
        let p = RetryPolicy::from_spec(&spec("PT2S")).unwrap();
        assert!(p.jitter);
        // Retry 2: base 4 s.
        assert_eq!(p.delay_for(2, 0.0), ms(2000));
        assert_eq!(p.delay_for(2, 0.25), ms(2500));
        assert_eq!(p.delay_for(2, 0.5), ms(3000));
        assert_eq!(p.delay_for(2, 1.0), ms(4000));
        // Out-of-range samples are clamped; NaN counts as 1.
        assert_eq!(p.delay_for(2, -3.0), ms(2000));
        assert_eq!(p.delay_for(2, 7.0), ms(4000));
        assert_eq!(p.delay_for(2, f64::NAN), ms(4000));
        assert_eq!(p.delay_for(4, 0.5), None);
    }

    #[test]
    fn huge_growth_saturates_at_the_ceiling() {
        let p = RetryPolicy::from_spec(&RetryPolicySpec {
            max_retries: Some(200),
            backoff_multiplier: Some(10.0),
            use_jitter: Some(false),
            ..spec("P1D")
        })
        .unwrap();
        assert_eq!(p.delay_for(3, 0.0), Some(TimeDelta::days(100)));
        assert_eq!(p.delay_for(4, 0.0), Some(DELAY_CEILING));
        assert_eq!(p.delay_for(200, 0.0), Some(DELAY_CEILING));
    }

    #[test]
    fn zero_retries_means_no_retry() {
        let p = RetryPolicy::from_spec(&RetryPolicySpec { max_retries: Some(0), ..spec("PT1S") }).unwrap();
        assert_eq!(p.max_attempts(), 1);
        assert_eq!(p.delay_for(1, 0.5), None);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (spec("PT0S"), "initialDelay must be greater than zero"),
            (spec("soon"), "retryPolicy.initialDelay: `soon` is not an ISO-8601 duration"),
            (RetryPolicySpec { max_delay: Some("PT1S".into()), ..spec("PT5S") }, "maxDelay (`PT1S`) must not be shorter"),
            (RetryPolicySpec { max_delay: Some("1s".into()), ..spec("PT5S") }, "retryPolicy.maxDelay: `1s`"),
            (RetryPolicySpec { backoff_multiplier: Some(0.5), ..spec("PT5S") }, "backoffMultiplier must be a number of at least 1, got 0.5"),
            (RetryPolicySpec { backoff_multiplier: Some(f64::INFINITY), ..spec("PT5S") }, "backoffMultiplier"),
            (RetryPolicySpec { backoff_type: Some(2), ..spec("PT5S") }, "backoffType must be 0 (fixed) or 1 (exponential), got 2"),
        ];
        for (spec, needle) in cases {
            let err = RetryPolicy::from_spec(&spec).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err}");
        }
        // maxDelay equal to initialDelay is fine.
        assert!(RetryPolicy::from_spec(&RetryPolicySpec { max_delay: Some("PT5S".into()), ..spec("PT5S") }).is_ok());
    }
}
