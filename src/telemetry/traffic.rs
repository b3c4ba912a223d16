//! In-process traffic counters since start, read by the dashboard each second
//! (Prometheus keeps its own series; these need no recorder and no parsing).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::names::METRICS_INGESTED_TOTAL;

#[derive(Debug, Default)]
pub struct Traffic {
    requests: AtomicU64,
    server_errors: AtomicU64,
    throttled: AtomicU64,
    ingested: AtomicU64,
    /// `tally_metrics_ingested_total`, registered on first use (after the
    /// recorder is installed) and kept: an atomic add per ingest instead of
    /// a lookup by name.
    ingested_total: OnceLock<metrics::Counter>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounts {
    /// Every request answered (any route, any status).
    pub requests: u64,
    /// Answers with a 5xx status.
    pub server_errors: u64,
    /// Answers with 429 (rate limited).
    pub throttled: u64,
    /// Data points accepted and stored.
    pub ingested: u64,
}

impl Traffic {
    /// One answered request with this status.
    pub fn answered(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        } else if status == 429 {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Points accepted and stored: here and in Prometheus.
    pub fn ingested(&self, points: u64) {
        self.ingested.fetch_add(points, Ordering::Relaxed);
        self.ingested_total
            .get_or_init(|| metrics::counter!(METRICS_INGESTED_TOTAL))
            .increment(points);
    }

    pub fn counts(&self) -> TrafficCounts {
        TrafficCounts {
            requests: self.requests.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            ingested: self.ingested.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class() {
        let t = Traffic::default();
        for status in [200, 201, 404, 429, 500, 503] {
            t.answered(status);
        }
        t.ingested(7);
        assert_eq!(
            t.counts(),
            TrafficCounts {
                requests: 6,
                server_errors: 2,
                throttled: 1,
                ingested: 7
            }
        );
    }
}
