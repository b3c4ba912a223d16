//! Cache keys, built in one place: versioned, namespaced, and unambiguous.

use crate::domain::{MetricType, Period};

/// Bump when the cached value's layout changes, so old entries are ignored.
pub const VERSION: &str = "v1";

/// The key of one summary: `tally:v1:summary:{len}:{type}:{period}`.
///
/// Type names are validated (`[A-Za-z0-9_.:-]`), but they may contain `:`;
/// the length prefix makes the split unambiguous, so no two (type, period)
/// pairs share a key. Periods are normalised (`hourly` = `1h` = `60m`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SummaryKey(String);

impl SummaryKey {
    /// Built with pushes, not `format!`: every summary request builds one.
    pub fn new(metric_type: &MetricType, period: Period) -> Self {
        let t = metric_type.as_str();
        let mut digits = itoa::Buffer::new();
        let mut key = String::with_capacity(40 + t.len());
        key.push_str("tally:");
        key.push_str(VERSION);
        key.push_str(":summary:");
        key.push_str(digits.format(t.len()));
        key.push(':');
        key.push_str(t);
        key.push(':');
        match period {
            Period::All => key.push_str("all"),
            Period::Last(d) => {
                key.push_str(digits.format(d.as_millis()));
                key.push_str("ms");
            }
        }
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key(t: &str, p: &str) -> String {
        SummaryKey::new(
            &MetricType::parse(t).expect("type"),
            Period::parse(p).expect("period"),
        )
        .0
    }

    #[test]
    fn layout_and_normalisation() {
        assert_eq!(key("cpu", "all"), "tally:v1:summary:3:cpu:all");
        assert_eq!(key("cpu", "hourly"), key("cpu", "60m"));
        assert_eq!(key("cpu", "1h"), "tally:v1:summary:3:cpu:3600000ms");
    }

    #[test]
    fn colons_in_types_cannot_collide() {
        let pairs = [
            ("a", "all"),
            ("a:all", "all"),
            ("a:3600000ms", "all"),
            ("a", "1h"),
            ("a:1", "1h"),
            ("3:a", "all"),
            ("a:b", "1h"),
            ("a:b:1h", "all"),
        ];
        let keys: HashSet<String> = pairs.iter().map(|(t, p)| key(t, p)).collect();
        assert_eq!(keys.len(), pairs.len());
    }
}
