//! Rollup rows as PostgreSQL holds them (`rollup_delta`, `rollup_minute`, `rollup_hour`,
//! `rollup_day`): one partial aggregate each, with `state` the serialised exact sum and
//! quantile sketch. Built here from raw points, merged here, read back here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::store::StoreError;
use crate::store::rollup::{Agg, Sketch, Summary, decode_state, encode_state};

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

/// The columns of a rollup row after its key, in table order:
/// count, sum, min, max, first_ts, last_ts, latest, state.
pub type Row = (
    i64,
    f64,
    f64,
    f64,
    DateTime<Utc>,
    DateTime<Utc>,
    f64,
    Vec<u8>,
);

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A row's aggregates and sketch.
pub fn decode(row: Row) -> Result<(Agg, Sketch), StoreError> {
    let (count, _sum, min, max, first, last, latest, state) = row;
    let (sum, sketch) = decode_state(&state)
        .map_err(|e| StoreError::Unavailable(format!("a rollup row is unreadable: {e}")))?;
    let agg = Agg {
        count: count.max(0) as u64,
        sum,
        min,
        max,
        first_ts: micros(first),
        last_ts: micros(last),
        latest,
    };
    Ok((agg, sketch))
}

/// Rows to write, column by column (what `UNNEST` takes), each keyed by a type, a bucket
/// start and (for a writer's partials) the idempotency key whose rows it covers.
#[derive(Default)]
pub struct Columns {
    pub types: Vec<String>,
    pub buckets: Vec<DateTime<Utc>>,
    pub keys: Vec<Option<String>>,
    pub counts: Vec<i64>,
    pub sums: Vec<f64>,
    pub mins: Vec<f64>,
    pub maxs: Vec<f64>,
    pub firsts: Vec<DateTime<Utc>>,
    pub lasts: Vec<DateTime<Utc>>,
    pub latests: Vec<f64>,
    pub states: Vec<Vec<u8>>,
}

impl Columns {
    pub fn push(&mut self, ty: &str, bucket: i64, key: Option<&str>, summary: &Summary) {
        let agg = &summary.agg;
        self.types.push(ty.to_owned());
        self.buckets.push(time(bucket));
        self.keys.push(key.map(str::to_owned));
        self.counts.push(agg.count as i64);
        self.sums.push(agg.sum.total());
        self.mins.push(agg.min);
        self.maxs.push(agg.max);
        self.firsts.push(time(agg.first_ts));
        self.lasts.push(time(agg.last_ts));
        self.latests.push(agg.latest);
        self.states.push(encode_state(&agg.sum, &summary.sketch));
    }
}

/// Partial aggregates being built, per (type, bucket, key).
#[derive(Default)]
pub struct Partials<'a> {
    map: HashMap<(&'a str, i64, Option<&'a str>), Summary>,
}

impl<'a> Partials<'a> {
    /// Adds a point (`ts` in microseconds) to its bucket of `width` microseconds.
    pub fn add(&mut self, ty: &'a str, key: Option<&'a str>, width: i64, ts: i64, v: f64) {
        let bucket = ts.div_euclid(width) * width;
        self.map
            .entry((ty, bucket, key))
            .or_insert_with(Summary::new)
            .add(ts, v);
    }

    /// Merges a whole partial into its bucket of `width`.
    pub fn merge(&mut self, ty: &'a str, width: i64, bucket: i64, agg: &Agg, sketch: &Sketch) {
        let bucket = bucket.div_euclid(width) * width;
        self.map
            .entry((ty, bucket, None))
            .or_insert_with(Summary::new)
            .merge(agg, sketch);
    }

    pub fn columns(&self) -> Columns {
        let mut columns = Columns::default();
        for ((ty, bucket, key), summary) in &self.map {
            columns.push(ty, *bucket, *key, summary);
        }
        columns
    }

    pub fn into_map(self) -> HashMap<(&'a str, i64, Option<&'a str>), Summary> {
        self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fall_in_their_bucket_before_and_after_the_epoch() {
        let mut partials = Partials::default();
        for ts in [-1, 0, MINUTE_US - 1, MINUTE_US, -MINUTE_US] {
            partials.add("t", None, MINUTE_US, ts, 1.0);
        }
        let mut buckets: Vec<(i64, u64)> = partials
            .into_map()
            .into_iter()
            .map(|((_, b, _), s)| (b, s.agg.count))
            .collect();
        buckets.sort();
        assert_eq!(
            buckets,
            vec![(-MINUTE_US, 2), (0, 2), (MINUTE_US, 1)],
            "[-60s, 0) holds -1 and -60s; [0, 60s) holds 0 and 60s - 1"
        );
    }

    #[test]
    fn rows_round_trip() {
        let mut partials = Partials::default();
        for (i, v) in [3.5, -1.0, 1e300, 0.25].into_iter().enumerate() {
            partials.add("t", Some("k"), HOUR_US, i as i64 * 1_000, v);
        }
        let columns = partials.columns();
        assert_eq!(
            (columns.types.len(), columns.keys[0].as_deref()),
            (1, Some("k"))
        );
        let row: Row = (
            columns.counts[0],
            columns.sums[0],
            columns.mins[0],
            columns.maxs[0],
            columns.firsts[0],
            columns.lasts[0],
            columns.latests[0],
            columns.states[0].clone(),
        );
        let (agg, sketch) = decode(row).unwrap();
        let mut summary = Summary::new();
        summary.merge(&agg, &sketch);
        let got = summary.finish();
        assert_eq!((got.count, got.min, got.max), (4, Some(-1.0), Some(1e300)));
        assert_eq!(
            (got.latest, agg.first_ts, agg.last_ts),
            (Some(0.25), 0, 3_000)
        );
    }
}
