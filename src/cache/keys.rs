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
    pub fn new(metric_type: &MetricType, period: Period) -> Self {
        let t = metric_type.as_str();
        let p = match period {
            Period::All => "all".to_owned(),
            Period::Last(d) => format!("{}ms", d.as_millis()),
        };
        Self(format!("tally:{VERSION}:summary:{}:{t}:{p}", t.len()))
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
