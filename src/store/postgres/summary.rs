//! Summaries from rollups, O(buckets): whole days, then whole hours, then whole minutes
//! of the window (each from its rollup table), the partials of the whole minutes that the
//! background pass has not folded in yet, and raw rows only for the partial minutes at
//! the window's edges;
//! all in one statement, so one snapshot: a fold (which moves partials into the levels
//! in one transaction) is seen entirely or not at all. Count, sum, extremes and latest
//! are exact; percentiles come from the merged sketches, within 1%.
//!
//! Until the rollups of rows stored before they existed are built (`rollup_backfill`),
//! times from the backfill's watermark on are read from raw rows.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::rollup::{self, DAY_US, HOUR_US, MINUTE_US};
use super::{PostgresStore, guarded};
use crate::domain::{Aggregates, MetricType, SeriesWindow, TimeWindow, bound_micros};
use crate::store::StoreError;
use crate::store::rollup::Summary;

/// Rollup columns (null for other rows), a raw row's timestamp and value, and a
/// `rollup_delta` row's packed partials.
type Mixed = (
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<Vec<u8>>,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<Vec<u8>>,
);

/// A rollup's columns as `rollup::Row` reads them (its `sum` column is for operators:
/// the exact sum is in `state`).
const ROLLUP_COLUMNS: &str = "count, min, max, first_ts, last_ts, latest, state, \
     NULL::timestamptz, NULL::float8, NULL::bytea";
const NO_ROLLUP: &str = "NULL::int8, NULL::float8, NULL::float8, \
     NULL::timestamptz, NULL::timestamptz, NULL::float8, NULL::bytea";

/// `bucket` (or `ts`) in `[$lo, $hi)`; a null bound is open.
fn within(column: &str, lo: usize, hi: usize) -> String {
    format!("({column} >= coalesce(${lo}, '-infinity') AND {column} < coalesce(${hi}, 'infinity'))")
}

/// The one statement of a summary, built once.
static STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {ROLLUP_COLUMNS} FROM rollup_day WHERE type = $1 AND {days} \
         UNION ALL SELECT {ROLLUP_COLUMNS} FROM rollup_hour WHERE type = $1 AND ({h1} OR {h2}) \
         UNION ALL SELECT {ROLLUP_COLUMNS} FROM rollup_minute WHERE type = $1 AND ({m1} OR {m2}) \
         UNION ALL SELECT {NO_ROLLUP}, NULL::timestamptz, NULL::float8, partials \
           FROM rollup_delta WHERE minute_hi >= coalesce($12, '-infinity') \
             AND minute_lo < coalesce($13, 'infinity') \
         UNION ALL SELECT {NO_ROLLUP}, ts, value, NULL::bytea \
           FROM metrics WHERE type = $1 AND ({r1} OR {r2} OR {r3})",
        days = within("bucket", 2, 3),
        h1 = within("bucket", 4, 5),
        h2 = within("bucket", 6, 7),
        m1 = within("bucket", 8, 9),
        m2 = within("bucket", 10, 11),
        r1 = within("ts", 14, 15),
        r2 = within("ts", 16, 17),
        r3 = within("ts", 18, 19),
    )
});

/// `[lo, hi)` in microseconds; `i64::MIN` and `i64::MAX` are open bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub lo: i64,
    pub hi: i64,
}

impl Span {
    const EMPTY: Span = Span { lo: 0, hi: 0 };

    fn is_empty(self) -> bool {
        self.lo >= self.hi
    }

    /// The whole buckets of `width` inside.
    fn whole(self, width: i64) -> Span {
        let lo = match self.lo {
            i64::MIN => i64::MIN,
            lo => lo.div_euclid(width) * width + if lo.rem_euclid(width) > 0 { width } else { 0 },
        };
        let hi = match self.hi {
            i64::MAX => i64::MAX,
            hi => hi.div_euclid(width) * width,
        };
        Span { lo, hi }
    }

    /// What is left of `self` around `inner` (which lies within it): two spans.
    fn around(self, inner: Span) -> [Span; 2] {
        if inner.is_empty() {
            [self, Span::EMPTY]
        } else {
            [
                Span {
                    lo: self.lo,
                    hi: inner.lo,
                },
                Span {
                    lo: inner.hi,
                    hi: self.hi,
                },
            ]
        }
    }

    fn bounds(self) -> [Option<DateTime<Utc>>; 2] {
        let open = |t: i64| (t != i64::MIN && t != i64::MAX).then(|| rollup::time(t));
        if self.is_empty() {
            [Some(rollup::time(0)); 2]
        } else {
            [open(self.lo), open(self.hi)]
        }
    }
}

/// Which table answers which part of a window.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub days: Span,
    pub hours: [Span; 2],
    pub minutes: [Span; 2],
    pub deltas: Span,
    pub raw: [Span; 3],
}

impl Plan {
    /// The window `[from, to)` when rollups cover the times before `watermark`, using
    /// rollups no wider than `coarsest` (µs: a day, an hour, a minute, or 0 for none).
    pub fn new(window: Span, watermark: i64, coarsest: i64) -> Plan {
        let covered = Span {
            lo: window.lo,
            hi: window.hi.min(watermark),
        };
        let beyond = Span {
            lo: window.lo.max(watermark),
            hi: window.hi,
        };
        if covered.is_empty() {
            return Plan {
                days: Span::EMPTY,
                hours: [Span::EMPTY; 2],
                minutes: [Span::EMPTY; 2],
                deltas: Span::EMPTY,
                raw: [beyond, Span::EMPTY, Span::EMPTY],
            };
        }
        let level = |width: i64| {
            if coarsest >= width {
                covered.whole(width)
            } else {
                Span::EMPTY
            }
        };
        let (days, hours, minutes) = (level(DAY_US), level(HOUR_US), level(MINUTE_US));
        let [edge_lo, edge_hi] = covered.around(minutes);
        Plan {
            days,
            hours: hours.around(days),
            minutes: minutes.around(hours),
            deltas: minutes,
            raw: [edge_lo, edge_hi, beyond],
        }
    }
}

pub(super) async fn summarize(
    store: &PostgresStore,
    metric_type: &MetricType,
    window: TimeWindow,
) -> Result<Aggregates, StoreError> {
    let span = Span {
        lo: window.from.map_or(i64::MIN, bound_micros),
        hi: window.to.map_or(i64::MAX, bound_micros),
    };
    let mut one = [Summary::new()];
    if !span.is_empty() {
        read(store, metric_type, span, DAY_US, |_| 0, &mut one).await?;
    }
    let [summary] = one;
    Ok(summary.finish())
}

/// Aggregates per step of `window`, in the same one statement: rollups no wider than the
/// widest of a day, an hour and a minute that divides the step (each then lies inside one
/// step), raw rows for the rest. A step below a minute (or not a whole number of minutes)
/// reads raw rows only.
pub(super) async fn series(
    store: &PostgresStore,
    metric_type: &MetricType,
    window: SeriesWindow,
) -> Result<Vec<Aggregates>, StoreError> {
    let (first, step, steps) = window.steps();
    let mut buckets: Vec<Summary> = (0..steps).map(|_| Summary::new()).collect();
    if steps > 0 {
        let span = Span {
            lo: bound_micros(window.from),
            hi: bound_micros(window.to),
        };
        let coarsest = [DAY_US, HOUR_US, MINUTE_US]
            .into_iter()
            .find(|width| step % width == 0)
            .unwrap_or(0);
        let pick = |t: i64| {
            usize::try_from((t - first).div_euclid(step))
                .unwrap_or(0)
                .min(steps - 1)
        };
        read(store, metric_type, span, coarsest, pick, &mut buckets).await?;
    }
    Ok(buckets.into_iter().map(Summary::finish).collect())
}

/// Reads `span` of one type into `buckets`: each row into `buckets[pick(t)]`, `t` a time
/// inside the row's bucket (a rollup's first point, a partial's minute, a raw point's own).
async fn read(
    store: &PostgresStore,
    metric_type: &MetricType,
    span: Span,
    coarsest: i64,
    pick: impl Fn(i64) -> usize + Send + Sync,
    buckets: &mut [Summary],
) -> Result<(), StoreError> {
    let plan = Plan::new(span, store.watermark(), coarsest);
    let mut query = sqlx::query_as::<_, Mixed>(STATEMENT.as_str()).bind(metric_type.as_str());
    let spans = std::iter::once(plan.days)
        .chain(plan.hours)
        .chain(plan.minutes)
        .chain([plan.deltas])
        .chain(plan.raw);
    for s in spans {
        let [lo, hi] = s.bounds();
        query = query.bind(lo).bind(hi);
    }
    let ty = metric_type.as_str();
    let wanted =
        |t: &str, minute: i64| t == ty && plan.deltas.lo <= minute && minute < plan.deltas.hi;
    let read = async {
        let mut partials = Vec::new();
        let mut rows = query.fetch(&store.pool);
        while let Some(row) = rows.try_next().await? {
            take(buckets, &pick, row, wanted, &mut partials)
                .map_err(|e| sqlx::Error::Decode(e.into()))?;
        }
        Ok(())
    };
    guarded(&store.breaker, store.timeout, "summary", read).await
}

/// Merges one row of the statement into its bucket: a raw point, a rollup, or the wanted
/// partials of a `rollup_delta` row (`partials` is scratch space).
fn take(
    buckets: &mut [Summary],
    pick: &impl Fn(i64) -> usize,
    row: Mixed,
    wanted: impl FnMut(&str, i64) -> bool,
    partials: &mut Vec<rollup::Unpacked>,
) -> Result<(), String> {
    fn bucket<'b>(
        buckets: &'b mut [Summary],
        pick: &impl Fn(i64) -> usize,
        t: i64,
    ) -> Result<&'b mut Summary, String> {
        buckets
            .get_mut(pick(t))
            .ok_or_else(|| "a row outside the buckets".to_owned())
    }
    match row {
        (_, _, _, _, _, _, _, Some(ts), Some(value), _) => {
            let ts = rollup::micros(ts);
            bucket(buckets, pick, ts)?.add(ts, value);
        }
        (_, _, _, _, _, _, _, None, None, Some(packed)) => {
            partials.clear();
            rollup::unpack(&packed, wanted, partials).map_err(|e| e.to_string())?;
            for p in partials.iter() {
                bucket(buckets, pick, p.minute)?.merge(&p.agg, &p.sketch);
            }
        }
        (
            Some(count),
            Some(min),
            Some(max),
            Some(first),
            Some(last),
            Some(latest),
            Some(state),
            None,
            None,
            None,
        ) => {
            let row = rollup::Row {
                count,
                min,
                max,
                first_ts: first,
                last_ts: last,
                latest,
                state,
            };
            let (agg, sketch) = rollup::decode(row).map_err(|e| e.to_string())?;
            bucket(buckets, pick, agg.first_ts)?.merge(&agg, &sketch);
        }
        _ => return Err("a summary row with missing columns".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Span = Span {
        lo: i64::MIN,
        hi: i64::MAX,
    };

    fn span(lo: i64, hi: i64) -> Span {
        Span { lo, hi }
    }

    #[test]
    fn the_whole_store_reads_days_and_partials_only() {
        let plan = Plan::new(OPEN, i64::MAX, DAY_US);
        assert_eq!(plan.days, OPEN);
        assert!(plan.hours.iter().chain(&plan.minutes).all(|s| s.is_empty()));
        assert!(plan.raw.iter().all(|s| s.is_empty()));
        assert_eq!(plan.deltas, OPEN);
    }

    #[test]
    fn a_window_descends_to_raw_rows_only_at_its_edges() {
        // From 2 days + 3 h + 4 min + 5 µs to 5 days + 6 h + 7 min (exactly).
        let from = 2 * DAY_US + 3 * HOUR_US + 4 * MINUTE_US + 5;
        let to = 5 * DAY_US + 6 * HOUR_US + 7 * MINUTE_US;
        let plan = Plan::new(span(from, to), i64::MAX, DAY_US);
        assert_eq!(plan.days, span(3 * DAY_US, 5 * DAY_US));
        let h = |d: i64, h: i64| d * DAY_US + h * HOUR_US;
        assert_eq!(plan.hours, [span(h(2, 4), h(3, 0)), span(h(5, 0), h(5, 6))]);
        let m = |d: i64, hh: i64, m: i64| h(d, hh) + m * MINUTE_US;
        assert_eq!(
            plan.minutes,
            [span(m(2, 3, 5), m(2, 4, 0)), span(m(5, 6, 0), m(5, 6, 7))]
        );
        assert_eq!(plan.deltas, span(m(2, 3, 5), to));
        assert_eq!(plan.raw[0], span(from, m(2, 3, 5)));
        assert!(plan.raw[1].is_empty() && plan.raw[2].is_empty());
    }

    #[test]
    fn a_window_inside_one_minute_is_raw_rows() {
        let plan = Plan::new(span(10, 20), i64::MAX, DAY_US);
        assert!(plan.deltas.is_empty() && plan.days.is_empty());
        assert_eq!(plan.raw[0], span(10, 20));
        assert!(plan.raw[1].is_empty() && plan.raw[2].is_empty());
    }

    #[test]
    fn a_series_reads_no_rollup_wider_than_its_step_allows() {
        let window = span(DAY_US - 90 * MINUTE_US, 3 * DAY_US);
        let hourly = Plan::new(window, i64::MAX, HOUR_US);
        assert!(hourly.days.is_empty());
        assert_eq!(hourly.hours[0], span(DAY_US - HOUR_US, 3 * DAY_US));
        assert_eq!(
            hourly.minutes[0],
            span(DAY_US - 90 * MINUTE_US, DAY_US - HOUR_US)
        );
        let raw = Plan::new(window, i64::MAX, 0);
        assert!(raw.days.is_empty() && raw.deltas.is_empty());
        assert!(raw.hours.iter().chain(&raw.minutes).all(|s| s.is_empty()));
        assert_eq!(raw.raw[0], window);
    }

    #[test]
    fn times_past_the_backfill_watermark_are_raw_rows() {
        let plan = Plan::new(OPEN, 3 * DAY_US + 5, DAY_US);
        assert_eq!(plan.days, span(i64::MIN, 3 * DAY_US));
        assert_eq!(plan.raw[1], span(3 * DAY_US, 3 * DAY_US + 5));
        assert_eq!(plan.raw[2], span(3 * DAY_US + 5, i64::MAX));
        let nothing = Plan::new(OPEN, i64::MIN, DAY_US);
        assert_eq!(nothing.raw, [OPEN, Span::EMPTY, Span::EMPTY]);
        assert!(nothing.deltas.is_empty() && nothing.days.is_empty());
    }
}
