//! What a lookup answers: the entry and how it was produced, told in the
//! response headers (`Cache-Status`, `X-Cache`, `Age`) and the trace.

use std::time::Duration;

use super::entry::SharedEntry;
use super::stats::Tier;

/// How a summary was answered (the `Cache-Status` / `X-Cache` story).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Fresh, from a tier.
    Hit(Tier),
    /// Stale within the stale window, from a tier; a refresh runs behind it.
    Stale(Tier),
    /// Computed by this request and stored.
    Miss,
    /// Waited for another request's computation.
    Collapsed,
    /// The computation failed; a stale entry was served instead.
    StaleIfError,
}

/// A summary with how and when it was produced.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub entry: SharedEntry,
    pub status: CacheStatus,
    /// Since the store computed it.
    pub age: Duration,
    /// Seconds of freshness left (negative once stale).
    pub ttl_left: i64,
}

impl Lookup {
    /// RFC 9211 `Cache-Status` value. Built with pushes, not `format!`:
    /// every summary response carries one.
    pub fn cache_status(&self) -> String {
        let (head, detail) = match self.status {
            CacheStatus::Hit(t) => ("tally; hit", t.as_str()),
            CacheStatus::Stale(t) => ("tally; hit; fwd=stale", t.as_str()),
            CacheStatus::StaleIfError => ("tally; hit; fwd=stale", "stale-if-error"),
            CacheStatus::Miss => return "tally; fwd=miss; stored".into(),
            CacheStatus::Collapsed => return "tally; fwd=miss; collapsed".into(),
        };
        let mut digits = itoa::Buffer::new();
        let mut s = String::with_capacity(64);
        s.push_str(head);
        s.push_str("; ttl=");
        s.push_str(digits.format(self.ttl_left));
        s.push_str("; detail=");
        s.push_str(detail);
        s
    }

    /// (tier, result) for the cache-lookup span.
    pub fn trace_fields(&self) -> (&'static str, &'static str) {
        match self.status {
            CacheStatus::Hit(t) => (t.as_str(), "hit"),
            CacheStatus::Stale(t) => (t.as_str(), "stale"),
            CacheStatus::Miss => ("store", "miss"),
            CacheStatus::Collapsed => ("store", "collapsed"),
            CacheStatus::StaleIfError => ("memory", "stale_if_error"),
        }
    }

    /// `X-Cache`, for people used to it.
    pub fn x_cache(&self) -> &'static str {
        match self.status {
            CacheStatus::Hit(_) => "HIT",
            CacheStatus::Miss | CacheStatus::Collapsed => "MISS",
            CacheStatus::Stale(_) | CacheStatus::StaleIfError => "STALE",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::{Entry, Report};
    use crate::domain::{Aggregates, SummaryReport};

    fn lookup(status: CacheStatus, ttl_left: i64) -> Lookup {
        let report = SummaryReport {
            metric_type: "cpu".into(),
            period: "all".into(),
            from: chrono::DateTime::UNIX_EPOCH,
            to: chrono::DateTime::UNIX_EPOCH,
            aggregates: Aggregates::default(),
        };
        Lookup {
            entry: Arc::new(Entry::new(Report::Summary(report), 0)),
            status,
            age: Duration::ZERO,
            ttl_left,
        }
    }

    #[test]
    fn cache_status_follows_rfc_9211() {
        let cases = [
            (
                CacheStatus::Hit(Tier::Memory),
                8,
                "tally; hit; ttl=8; detail=memory",
            ),
            (
                CacheStatus::Stale(Tier::Redis),
                -3,
                "tally; hit; fwd=stale; ttl=-3; detail=redis",
            ),
            (
                CacheStatus::StaleIfError,
                -40,
                "tally; hit; fwd=stale; ttl=-40; detail=stale-if-error",
            ),
            (CacheStatus::Miss, 10, "tally; fwd=miss; stored"),
            (CacheStatus::Collapsed, 10, "tally; fwd=miss; collapsed"),
        ];
        for (status, ttl, expected) in cases {
            assert_eq!(lookup(status, ttl).cache_status(), expected);
        }
        assert_eq!(
            lookup(CacheStatus::Stale(Tier::Memory), -1).x_cache(),
            "STALE"
        );
    }
}
