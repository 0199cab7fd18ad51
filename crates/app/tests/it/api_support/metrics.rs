//! Reading `/metrics` as Prometheus does: parsed by a Prometheus text parser,
//! samples picked by name and labels.
//!
//! The recorder is one per process and the tests of this binary run in
//! parallel, so a test compares a scrape before with a scrape after, on labels
//! only it uses (its own domain or workflow).

use prometheus_parse::{Scrape, Value};

use super::TestApp;

/// One parsed scrape.
pub struct Metrics(Scrape);

impl Metrics {
    /// The sum of the samples named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                Value::Summary(_) => 0.0,
            })
            .sum()
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.samples.iter().any(|s| s.metric == name)
    }
}

/// Parses Prometheus text.
pub fn parse(text: &str) -> Metrics {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Metrics(Scrape::parse(lines).expect("the /metrics text parses"))
}

impl TestApp {
    /// `GET /metrics`, parsed.
    pub async fn scrape(&self) -> Metrics {
        let r = self.get("/metrics").await;
        assert_eq!(r.status(), 200);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        parse(&r.text().await.unwrap())
    }
}
