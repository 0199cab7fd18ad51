//! Drives N concurrent clients for a fixed time or count and collects latencies.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::Summary;

/// How long or how much a load runs.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    /// Total operations across all clients.
    Count(usize),
}

/// Runs `op(client, iteration)` from `clients` concurrent tasks until `stop`.
/// Each call's latency is one sample; an `Err` counts as an error.
pub async fn run<F, Fut>(clients: usize, stop: Stop, op: F) -> Summary
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let remaining = Arc::new(std::sync::atomic::AtomicIsize::new(match stop {
        Stop::Count(n) => n as isize,
        Stop::After(_) => isize::MAX,
    }));
    let deadline = match stop {
        Stop::After(d) => Some(started + d),
        Stop::Count(_) => None,
    };
    let mut handles = Vec::with_capacity(clients);
    for client in 0..clients {
        let op = op.clone();
        let remaining = remaining.clone();
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0usize;
            let mut first_error: Option<String> = None;
            let mut i = 0usize;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if remaining.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) <= 0 {
                    break;
                }
                let t = Instant::now();
                match op(client, i).await {
                    Ok(()) => samples.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                i += 1;
            }
            (samples, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (s, e, first) = h.await.expect("load client panicked");
        all.extend(s);
        errors += e;
        if let Some(first) = first {
            tracing::warn!(error = %first, "a benchmark operation failed");
        }
    }
    Summary::from_samples(all, errors, started.elapsed())
}
