//! Summaries computed in SQL: count, sum, average, extremes, the latest value and
//! percentiles of one type over a window, with a wide (numeric) retry when float8 sums
//! overflow.

use chrono::{DateTime, Utc};

use super::{PostgresStore, guarded};
use crate::domain::{Aggregates, MetricType, TimeWindow, bound_micros};
use crate::store::StoreError;

/// Summary columns, in order.
type SummaryRow = (
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<Vec<f64>>,
);

const SUMMARY: &str = "\
    SELECT count(*)::int8, sum(value), avg(value), min(value), max(value), \
      (SELECT value FROM metrics WHERE type = $1 AND ts >= coalesce($2, '-infinity') \
         AND ts < coalesce($3, 'infinity') ORDER BY ts DESC LIMIT 1), \
      percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY value) \
    FROM metrics WHERE type = $1 AND ts >= coalesce($2, '-infinity') AND ts < coalesce($3, 'infinity')";

/// The same with exact sums, for when float8 sums overflow: saturated at
/// ±f64::MAX like the embedded store.
const SUMMARY_WIDE: &str = "\
    SELECT count(*)::int8, \
      greatest(least(sum(value::numeric), 1.7976931348623157e308), -1.7976931348623157e308)::float8, \
      avg(value::numeric)::float8, min(value), max(value), \
      (SELECT value FROM metrics WHERE type = $1 AND ts >= coalesce($2, '-infinity') \
         AND ts < coalesce($3, 'infinity') ORDER BY ts DESC LIMIT 1), \
      percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY value) \
    FROM metrics WHERE type = $1 AND ts >= coalesce($2, '-infinity') AND ts < coalesce($3, 'infinity')";

/// A window bound as PostgreSQL compares it: rounded up to the microsecond,
/// as the embedded store does.
fn bound(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(bound_micros(t)).unwrap_or(t)
}

fn is_overflow(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(message) if message.contains("out of range"))
}

pub(super) async fn summarize(
    store: &PostgresStore,
    metric_type: &MetricType,
    window: TimeWindow,
) -> Result<Aggregates, StoreError> {
    let run = |sql: &'static str| {
        sqlx::query_as::<_, SummaryRow>(sql)
            .bind(metric_type.as_str())
            .bind(window.from.map(bound))
            .bind(window.to.map(bound))
            .fetch_one(&store.pool)
    };
    let row = match guarded(&store.breaker, store.timeout, "summary", run(SUMMARY)).await {
        Err(e) if is_overflow(&e) => {
            guarded(&store.breaker, store.timeout, "summary", run(SUMMARY_WIDE)).await?
        }
        other => other?,
    };
    let (count, sum, average, min, max, latest, pct) = row;
    let pct = pct.unwrap_or_default();
    // Interpolating between -MAX and MAX overflows; a percentile lies
    // between min and max (as the embedded store guarantees).
    let p = |i: usize| {
        let v = pct.get(i).copied()?;
        match (min, max) {
            (Some(lo), Some(hi)) if v.is_nan() => Some((lo / 2.0 + hi / 2.0).clamp(lo, hi)),
            (Some(lo), Some(hi)) => Some(v.clamp(lo, hi)),
            _ => Some(v),
        }
    };
    Ok(Aggregates {
        count: count.max(0) as u64,
        sum,
        average,
        min,
        max,
        latest,
        p50: p(0),
        p90: p(1),
        p95: p(2),
        p99: p(3),
    })
}
