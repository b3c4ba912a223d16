//! The summary lookup: one metric type's aggregates over a period, through the
//! read-through cache (only the cache calls the store). The API and the dashboard both
//! ask here, with the same parser for type and period, so both show the same numbers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::Instrument;

use crate::cache::{CacheKey, Lookup, ReadCache, Report};
use crate::domain::{MetricType, Period, SummaryReport, TimeWindow};
use crate::store::{MetricStore, StoreError};

/// A summary request, checked: the type, the period and the period as the caller spelled
/// it (`hourly` and `1h` share a cache entry but each answer says what was asked).
#[derive(Debug, Clone)]
pub struct SummaryQuery {
    pub metric_type: MetricType,
    pub period: Period,
    pub period_raw: String,
}

/// Which of a summary request's fields broke a rule (`type`, `period`) and how.
pub type Invalid = Vec<(&'static str, String)>;

impl SummaryQuery {
    /// `period` defaults to `all`. Every broken field is reported, not only the first.
    pub fn parse(metric_type: &str, period: Option<&str>) -> Result<Self, Invalid> {
        let period_raw = period.unwrap_or("all");
        match (MetricType::parse(metric_type), Period::parse(period_raw)) {
            (Ok(metric_type), Ok(period)) => Ok(Self {
                metric_type,
                period,
                period_raw: period_raw.to_owned(),
            }),
            (t, p) => Err([("type", t.err()), ("period", p.err())]
                .into_iter()
                .filter_map(|(field, e)| e.map(|e| (field, e)))
                .collect()),
        }
    }
}

/// The service: the cache in front of the store, and the window rules.
pub struct Summaries {
    cache: Arc<ReadCache>,
    store: Arc<dyn MetricStore>,
    retention: Duration,
    max_future_skew: Duration,
}

impl Summaries {
    pub fn new(
        cache: Arc<ReadCache>,
        store: Arc<dyn MetricStore>,
        retention: Duration,
        max_future_skew: Duration,
    ) -> Self {
        Self {
            cache,
            store,
            retention,
            max_future_skew,
        }
    }

    /// The summary asked for, from the cache or computed once for every caller asking.
    pub async fn lookup(&self, query: &SummaryQuery) -> Result<Lookup, StoreError> {
        let key = CacheKey::summary(&query.metric_type, query.period);
        let (store, query) = (Arc::clone(&self.store), query.clone());
        let (retention, skew) = (self.retention, self.max_future_skew);
        self.cache
            .read_through(&key, move || compute(store, query, retention, skew))
            .await
    }
}

/// What the cache runs on a miss: the store's aggregates over the window, now.
async fn compute(
    store: Arc<dyn MetricStore>,
    query: SummaryQuery,
    retention: Duration,
    skew: Duration,
) -> Result<Report, StoreError> {
    let (from, to) = window(Utc::now(), query.period, retention, skew);
    // Validation keeps every stored point at or before `to`: no upper bound needed.
    let window = TimeWindow {
        from: Some(from),
        to: None,
    };
    let aggregates = store
        .summarize(&query.metric_type, window)
        .instrument(tracing::info_span!(
            "store.summarize",
            metric.type.len = query.metric_type.as_str().len()
        ))
        .await?;
    Ok(Report::Summary(SummaryReport {
        metric_type: query.metric_type.as_str().to_owned(),
        period: query.period_raw,
        from,
        to,
        aggregates,
    }))
}

/// The window of a summary asked at `now`: `period` back (at most the retention), to the
/// server clock plus the allowed future skew, so points stamped slightly ahead count.
/// Checked and clamped: a retention (or skew) of a million years is a valid setting that
/// reaches past what a date holds. No point is older than 1970 (ingest refuses those),
/// and RFC 3339 ends with year 9999.
pub(crate) fn window(
    now: DateTime<Utc>,
    period: Period,
    retention: Duration,
    skew: Duration,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let span = match period {
        Period::All => retention,
        Period::Last(d) => d.min(retention),
    };
    let from = TimeDelta::from_std(span)
        .ok()
        .and_then(|span| now.checked_sub_signed(span))
        .map_or(DateTime::UNIX_EPOCH, |from| from.max(DateTime::UNIX_EPOCH));
    let last = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(now);
    let to = TimeDelta::from_std(skew)
        .ok()
        .and_then(|skew| now.checked_add_signed(skew))
        .map_or(last, |to| to.min(last));
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_field_is_named() {
        let q = SummaryQuery::parse("cpu", None).expect("valid");
        assert_eq!(q.period_raw, "all");
        assert_eq!(q.period, Period::All);
        let bad = SummaryQuery::parse("", Some("1.5h")).expect_err("both invalid");
        let fields: Vec<_> = bad.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["type", "period"]);
        let bad = SummaryQuery::parse("cpu", Some("soon")).expect_err("period invalid");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "period");
    }

    #[test]
    fn windows_are_clamped_to_what_a_date_holds() {
        let now = Utc::now();
        let year = Duration::from_secs(365 * 86_400);
        let (from, to) = window(now, Period::All, year * 1_000_000, year * 1_000_000);
        assert_eq!(from, DateTime::UNIX_EPOCH);
        assert_eq!(to.timestamp(), 253_402_300_799);
        let hour = Duration::from_secs(3_600);
        let (from, to) = window(now, Period::Last(hour), year, Duration::ZERO);
        assert_eq!(now - from, TimeDelta::hours(1));
        assert_eq!(to, now);
    }
}
