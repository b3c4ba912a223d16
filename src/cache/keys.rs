//! Cache keys, built in one place: versioned, namespaced, and unambiguous.

use std::time::Duration;

use crate::domain::{MetricType, Period};

/// Bump when the cached value's layout changes, so old entries are ignored.
pub const VERSION: &str = "v2";

/// The key of one cached answer:
/// - a summary: `tally:v2:summary:{len}:{type}:{period}`;
/// - a series: `tally:v2:series:{len}:{type}:{period}:{step}`.
///
/// Type names are validated (`[A-Za-z0-9_.:-]`), but they may contain `:`;
/// the length prefix makes the split unambiguous, so no two (type, period)
/// pairs share a key. Periods and steps are normalised (`hourly` = `1h` =
/// `60m`, in milliseconds); a series asked without a step is keyed by the
/// step chosen for it, so it shares its entry with the same step asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// Built with pushes, not `format!`: every summary request builds one.
    pub fn summary(metric_type: &MetricType, period: Period) -> Self {
        Self::build("summary", metric_type, period, None)
    }

    pub fn series(metric_type: &MetricType, period: Period, step: Duration) -> Self {
        Self::build("series", metric_type, period, Some(step))
    }

    fn build(kind: &str, metric_type: &MetricType, period: Period, step: Option<Duration>) -> Self {
        let t = metric_type.as_str();
        let mut digits = itoa::Buffer::new();
        let mut key = String::with_capacity(56 + t.len());
        key.push_str("tally:");
        key.push_str(VERSION);
        key.push(':');
        key.push_str(kind);
        key.push(':');
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
        if let Some(step) = step {
            key.push(':');
            key.push_str(digits.format(step.as_millis()));
            key.push_str("ms");
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
        CacheKey::summary(
            &MetricType::parse(t).expect("type"),
            Period::parse(p).expect("period"),
        )
        .0
    }

    #[test]
    fn layout_and_normalisation() {
        assert_eq!(key("cpu", "all"), "tally:v2:summary:3:cpu:all");
        assert_eq!(key("cpu", "hourly"), key("cpu", "60m"));
        assert_eq!(key("cpu", "1h"), "tally:v2:summary:3:cpu:3600000ms");
        let series = CacheKey::series(
            &MetricType::parse("cpu").expect("type"),
            Period::All,
            Duration::from_secs(300),
        );
        assert_eq!(series.as_str(), "tally:v2:series:3:cpu:all:300000ms");
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
