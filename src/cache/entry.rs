//! A cached summary and its age: fresh for the TTL, then stale for the stale
//! window (RFC 5861), then dead.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use serde::{Deserialize, Serialize};

use crate::domain::{SeriesReport, SummaryReport};

/// What the cache keeps: the answer of a summary or of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    Summary(SummaryReport),
    Series(SeriesReport),
}

impl Report {
    /// Whether every number is finite (only such reports are cached).
    pub fn is_finite(&self) -> bool {
        match self {
            Report::Summary(r) => r.is_finite(),
            Report::Series(r) => r.is_finite(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub report: Report,
    /// Wall-clock milliseconds when the store computed it (shared through
    /// Redis, so every instance agrees on the entry's age).
    pub computed_at_ms: i64,
    /// The response body, rendered once by the API layer and reused by every
    /// hit on this copy (never stored in Redis).
    #[serde(skip)]
    pub rendered: OnceLock<Bytes>,
}

impl Entry {
    pub fn new(report: Report, computed_at_ms: i64) -> Self {
        Self {
            report,
            computed_at_ms,
            rendered: OnceLock::new(),
        }
    }

    /// The summary held, if this is a summary's entry (as every `summary` key's is).
    pub fn summary(&self) -> Option<&SummaryReport> {
        match &self.report {
            Report::Summary(r) => Some(r),
            Report::Series(_) => None,
        }
    }

    /// The series held, if this is a series' entry (as every `series` key's is).
    pub fn series(&self) -> Option<&SeriesReport> {
        match &self.report {
            Report::Series(r) => Some(r),
            Report::Summary(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    Stale,
    Dead,
}

/// The freshness rules, fixed by configuration.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub ttl: Duration,
    pub stale: Duration,
}

impl Lifetimes {
    pub fn freshness(&self, entry: &Entry, now_ms: i64) -> Freshness {
        let age = age_ms(entry, now_ms);
        if age < self.ttl.as_millis() as i64 {
            Freshness::Fresh
        } else if age < (self.ttl + self.stale).as_millis() as i64 {
            Freshness::Stale
        } else {
            Freshness::Dead
        }
    }

    /// Seconds of freshness left (negative once stale), for `Cache-Status: ttl=`.
    pub fn ttl_left_secs(&self, entry: &Entry, now_ms: i64) -> i64 {
        (self.ttl.as_millis() as i64 - age_ms(entry, now_ms)).div_euclid(1000)
    }
}

pub fn age_ms(entry: &Entry, now_ms: i64) -> i64 {
    (now_ms - entry.computed_at_ms).max(0)
}

/// Whole seconds since the entry was computed, for the `Age` header.
pub fn age(entry: &Entry, now_ms: i64) -> Duration {
    Duration::from_millis(age_ms(entry, now_ms) as u64)
}

pub type SharedEntry = Arc<Entry>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Aggregates;

    fn entry(at: i64) -> Entry {
        let report = SummaryReport {
            metric_type: "t".into(),
            period: "all".into(),
            from: chrono::DateTime::UNIX_EPOCH,
            to: chrono::DateTime::UNIX_EPOCH,
            aggregates: Aggregates::default(),
        };
        Entry::new(Report::Summary(report), at)
    }

    #[test]
    fn fresh_then_stale_then_dead() {
        let l = Lifetimes {
            ttl: Duration::from_secs(10),
            stale: Duration::from_secs(30),
        };
        let e = entry(1_000_000);
        assert_eq!(l.freshness(&e, 1_000_000), Freshness::Fresh);
        assert_eq!(l.freshness(&e, 1_009_999), Freshness::Fresh);
        assert_eq!(l.freshness(&e, 1_010_000), Freshness::Stale);
        assert_eq!(l.freshness(&e, 1_039_999), Freshness::Stale);
        assert_eq!(l.freshness(&e, 1_040_000), Freshness::Dead);
        assert_eq!(l.ttl_left_secs(&e, 1_000_500), 9);
        assert_eq!(l.ttl_left_secs(&e, 1_012_000), -2);
        assert_eq!(
            age(&e, 999_000),
            Duration::ZERO,
            "clock skew never gives a negative age"
        );
    }
}
