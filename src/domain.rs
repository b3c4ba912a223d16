//! Validated domain types: a metric, its type name and a summary period.
//!
//! Everything that reaches the store has been through one of the `parse`
//! constructors here, so the store and the handlers never re-check input.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Longest metric type name accepted.
pub const MAX_TYPE_LEN: usize = 100;

/// A metric type name matching `^[A-Za-z0-9_.:-]{1,100}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricType(String);

impl MetricType {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > MAX_TYPE_LEN {
            return Err(format!("must be at most {MAX_TYPE_LEN} characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        {
            return Err("may contain only letters, digits, '_', '.', ':' and '-'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): 1 to 255 visible
/// ASCII characters, chosen by the client (a UUID, say). Given as a structured-field
/// string (`"…"`) or bare.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(raw);
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"));
        }
        if !key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(
                "may contain only visible ASCII characters other than '\"' and '\\'".into(),
            );
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One stored data point.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub timestamp: DateTime<Utc>,
    /// Always finite.
    pub value: f64,
    pub metric_type: MetricType,
}

/// A half-open time range `[from, to)` in UTC; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeWindow {
    pub const ALL: TimeWindow = TimeWindow {
        from: None,
        to: None,
    };

    pub fn contains(&self, ts: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.to.is_none_or(|t| ts < t)
    }
}

/// A window cut into steps for a time series: `[from, to)` in steps of `step`, aligned to
/// multiples of `step` since the Unix epoch (UTC), as PostgreSQL's `date_bin` with origin
/// 1970-01-01. The first step starts at or before `from` and the last ends at or after
/// `to`; the window cuts them, so they may be partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step: std::time::Duration,
}

impl SeriesWindow {
    /// The first step's start (µs since the epoch), the step (µs, at least 1) and the
    /// number of steps.
    pub fn steps(&self) -> (i64, i64, usize) {
        let step = i64::try_from(self.step.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let (from, to) = (bound_micros(self.from), bound_micros(self.to));
        let first = from.div_euclid(step).saturating_mul(step);
        if to <= from {
            return (first, step, 0);
        }
        let n = (to - first).div_euclid(step) + i64::from((to - first).rem_euclid(step) > 0);
        (first, step, usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Step `i`'s interval as the window cuts it.
    pub fn step_window(&self, i: usize) -> TimeWindow {
        let (first, step, _) = self.steps();
        let start = first.saturating_add(step.saturating_mul(i as i64));
        let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MAX_UTC);
        TimeWindow {
            from: Some(at(start.max(bound_micros(self.from)))),
            to: Some(at(start.saturating_add(step).min(bound_micros(self.to)))),
        }
    }
}

/// Aggregates of one type over one window. Every number is finite.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Aggregates {
    pub count: u64,
    /// Saturates at `±f64::MAX` instead of overflowing.
    pub sum: Option<f64>,
    pub average: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Value of the point with the greatest timestamp.
    pub latest: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// A summary as answered: which type, which window, and its aggregates.
/// This is what the read-through cache keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SummaryReport {
    pub metric_type: String,
    pub period: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub aggregates: Aggregates,
}

impl SummaryReport {
    /// Whether every number is finite (only such reports are cached).
    pub fn is_finite(&self) -> bool {
        self.aggregates.is_finite()
    }
}

/// A time series as answered: the steps of one type's window, oldest first. This is what
/// the read-through cache keeps for `GET /api/metrics/series`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeriesReport {
    pub metric_type: String,
    pub period: String,
    /// The step, in its shortest spelling (`90m`, not `1h30m`).
    pub step: String,
    /// Whether the service chose the step (none was asked for).
    pub step_chosen: bool,
    /// The first step's start and the last step's end.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub points: Vec<SeriesPoint>,
}

/// One step of a series: its start and the aggregates of its interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeriesPoint {
    pub start: DateTime<Utc>,
    /// The window covers only part of the step: retention cut it, or it is still running.
    pub partial: bool,
    pub aggregates: Aggregates,
}

impl SeriesReport {
    /// Whether every number is finite (only such reports are cached).
    pub fn is_finite(&self) -> bool {
        self.points.iter().all(|p| p.aggregates.is_finite())
    }
}

impl Aggregates {
    /// Whether every number is finite.
    pub fn is_finite(&self) -> bool {
        [
            self.sum,
            self.average,
            self.min,
            self.max,
            self.latest,
            self.p50,
            self.p90,
            self.p95,
            self.p99,
        ]
        .iter()
        .flatten()
        .all(|v| v.is_finite())
    }
}

/// Microseconds of a window bound, rounded up. Stores keep whole microseconds
/// (finer digits truncated), so a point stored at microsecond `t` is at or
/// after the bound exactly when `t` is at or after this. Every backend rounds
/// window bounds with it, so they hold the same points.
pub fn bound_micros(bound: DateTime<Utc>) -> i64 {
    let micros = bound.timestamp_micros();
    if bound.timestamp_subsec_nanos() % 1_000 == 0 {
        micros
    } else {
        micros.saturating_add(1)
    }
}

/// What the store knows about one type.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeInfo {
    pub metric_type: MetricType,
    pub count: u64,
    pub last_timestamp: DateTime<Utc>,
}

/// How far back a summary looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Everything still retained.
    All,
    /// The last `Duration`.
    Last(Duration),
}

impl Period {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "all" => Ok(Period::All),
            "hourly" => Ok(Period::Last(Duration::from_secs(3600))),
            "daily" => Ok(Period::Last(Duration::from_secs(86_400))),
            other => match parse_duration(other) {
                Ok(d) if !d.is_zero() && whole_components(other) => Ok(Period::Last(d)),
                _ => Err(
                    "must be 'all', 'hourly', 'daily' or a positive duration in whole units such as '30s', '15m', '6h', '7d', '1h30m'"
                        .into(),
                ),
            },
        }
    }
}

/// Whether every number in a duration is whole and at most 9 digits: the rule the
/// OpenAPI pattern can state exactly (a fraction is refused by humantime when it is finer
/// than its unit, `0.001h`, and longer numbers can overflow), and no period needs more.
fn whole_components(raw: &str) -> bool {
    !raw.contains('.')
        && raw
            .split(|c: char| !c.is_ascii_digit())
            .all(|digits| digits.len() <= 9)
}

/// Whole seconds, rounded up, at least 1: what `Retry-After` and a rate-limit `t` carry.
pub fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// Parses durations such as `30s`, `15m`, `6h`, `7d`, `1h30m`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    // humantime accepts a space-separated list; we accept only the compact form.
    if raw.is_empty() || raw.chars().count() > 32 || raw.contains(char::is_whitespace) {
        return Err(format!("invalid duration '{}'", raw.escape_default()));
    }
    humantime::parse_duration(raw).map_err(|e| format!("invalid duration '{raw}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up_and_never_reach_zero() {
        assert_eq!(ceil_secs(Duration::ZERO), 1);
        assert_eq!(ceil_secs(Duration::from_micros(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
        assert_eq!(ceil_secs(Duration::from_millis(3_001)), 4);
    }
}
