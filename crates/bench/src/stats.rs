//! Latency samples and the figures printed for them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Summary of one measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub errors: usize,
    pub seconds: f64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn from_samples(mut samples: Vec<Duration>, errors: usize, elapsed: Duration) -> Summary {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pct = |p: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
            ms(samples[idx.min(samples.len() - 1)])
        };
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Summary {
            count: samples.len(),
            errors,
            seconds,
            throughput_per_s: samples.len() as f64 / seconds,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: samples.last().map(|d| ms(*d)).unwrap_or(0.0),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{:>8.0}/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} errors, {:.1} s)",
            self.throughput_per_s, self.p50_ms, self.p95_ms, self.p99_ms, self.count, self.errors, self.seconds
        )
    }
}

/// The median of a few whole-run measurements.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::from_samples(samples, 2, Duration::from_secs(2));
        assert_eq!(s.count, 100);
        assert_eq!(s.errors, 2);
        assert!((s.p50_ms - 51.0).abs() < 1.01, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 1.01, "{}", s.p99_ms);
        assert!((s.throughput_per_s - 50.0).abs() < 1e-9);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
