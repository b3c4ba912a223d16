//! Rollups as PostgreSQL holds them: rows of `rollup_minute`, `rollup_hour` and
//! `rollup_day` (one partial aggregate each, with `state` the serialised exact sum and
//! quantile sketch), and the packed partials of one commit in a `rollup_delta` row.
//! Built here from raw points, merged here, read back here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::store::StoreError;
use crate::store::rollup::{Agg, Sketch, Summary, decode_state, encode_state};

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

/// The columns of a rollup row after its key (type and bucket) that tally reads back: its
/// `sum` column is for operators, the exact sum being in `state`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub first_ts: DateTime<Utc>,
    pub last_ts: DateTime<Utc>,
    pub latest: f64,
    pub state: Vec<u8>,
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A row's aggregates and sketch.
pub fn decode(row: Row) -> Result<(Agg, Sketch), StoreError> {
    let (sum, sketch) = decode_state(&row.state)
        .map_err(|e| StoreError::Unavailable(format!("a rollup row is unreadable: {e}")))?;
    let agg = Agg {
        count: row.count.max(0) as u64,
        sum,
        min: row.min,
        max: row.max,
        first_ts: micros(row.first_ts),
        last_ts: micros(row.last_ts),
        latest: row.latest,
    };
    Ok((agg, sketch))
}

/// Rows to write, column by column (what `UNNEST` takes), each keyed by a type and a
/// bucket start.
#[derive(Default)]
pub struct Columns {
    pub types: Vec<String>,
    pub buckets: Vec<DateTime<Utc>>,
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
    pub fn push(&mut self, ty: &str, bucket: i64, summary: &Summary) {
        let agg = &summary.agg;
        self.types.push(ty.to_owned());
        self.buckets.push(time(bucket));
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

/// What a partial is kept by: its type, bucket start (µs) and idempotency key.
pub type PartialKey<'a> = (&'a str, i64, Option<&'a str>);

/// Partial aggregates being built, per (type, bucket, key).
#[derive(Default)]
pub struct Partials<'a> {
    map: HashMap<PartialKey<'a>, Summary>,
    /// The points themselves (µs from the bucket's start, value) of the partials added
    /// point by point that hold at most `SMALL` points: packed as they are, they take a
    /// fraction of an aggregate's bytes (a single POST's commit holds a point or two of
    /// each type).
    small: HashMap<PartialKey<'a>, Vec<(u32, f64)>>,
}

/// Partials of at most this many points are packed as their points.
const SMALL: usize = 8;

impl<'a> Partials<'a> {
    /// Adds a point (`ts` in microseconds) to its bucket of `width` microseconds.
    pub fn add(&mut self, ty: &'a str, key: Option<&'a str>, width: i64, ts: i64, v: f64) {
        let bucket = ts.div_euclid(width) * width;
        let summary = self
            .map
            .entry((ty, bucket, key))
            .or_insert_with(Summary::new);
        summary.add(ts, v);
        let count = summary.agg.count as usize;
        if width == MINUTE_US && count <= SMALL {
            let offset = (ts - bucket) as u32; // < 6e7
            self.small
                .entry((ty, bucket, key))
                .or_default()
                .push((offset, v));
        } else if count == SMALL + 1 {
            self.small.remove(&(ty, bucket, key));
        }
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
        for ((ty, bucket, _), summary) in &self.map {
            columns.push(ty, *bucket, summary);
        }
        columns
    }

    /// The `rollup_delta` rows to write: one per idempotency key (and one for the rows
    /// without a key), each packing its partials.
    pub fn pack(&self) -> Vec<Packed> {
        let mut rows: HashMap<Option<&str>, Packed> = HashMap::new();
        for ((ty, minute, key), summary) in &self.map {
            let row = rows.entry(*key).or_insert_with(|| Packed {
                key: key.map(str::to_owned),
                lo: *minute,
                hi: *minute,
                bytes: vec![PACK_VERSION],
            });
            row.lo = row.lo.min(*minute);
            row.hi = row.hi.max(*minute);
            match self.small.get(&(*ty, *minute, *key)) {
                Some(points) => pack_points(&mut row.bytes, ty, *minute, points),
                None => pack_one(&mut row.bytes, ty, *minute, summary),
            }
        }
        rows.into_values().collect()
    }

    pub fn into_map(self) -> HashMap<PartialKey<'a>, Summary> {
        self.map
    }
}

/// Leads a packed `rollup_delta` row, so a later format can be told apart.
const PACK_VERSION: u8 = 1;

/// One `rollup_delta` row: the partials of one commit's rows with the same idempotency
/// key (or none), covering the minutes `lo..=hi` (µs).
pub struct Packed {
    pub key: Option<String>,
    pub lo: i64,
    pub hi: i64,
    pub bytes: Vec<u8>,
}

/// A partial read back from a packed row.
pub struct Unpacked {
    pub ty: String,
    pub minute: i64,
    pub agg: Agg,
    pub sketch: Sketch,
}

/// A packed partial's form (the byte after its type and minute).
const AGGREGATE: u8 = 0;
const POINTS: u8 = 1;

/// Appends a partial's type (length-prefixed), minute and form.
fn pack_head(out: &mut Vec<u8>, ty: &str, minute: i64, form: u8) {
    out.extend_from_slice(&(ty.len() as u16).to_le_bytes());
    out.extend_from_slice(ty.as_bytes());
    out.extend_from_slice(&minute.to_le_bytes());
    out.push(form);
}

/// Appends a partial as its points: their number (a byte), then each point's µs from the
/// minute's start (`u32`) and value; little-endian.
fn pack_points(out: &mut Vec<u8>, ty: &str, minute: i64, points: &[(u32, f64)]) {
    pack_head(out, ty, minute, POINTS);
    out.push(points.len() as u8);
    for (offset, v) in points {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends a partial as an aggregate: count, min, max, first and last timestamp, latest
/// value, then its state (length-prefixed); little-endian.
fn pack_one(out: &mut Vec<u8>, ty: &str, minute: i64, summary: &Summary) {
    let agg = &summary.agg;
    let state = encode_state(&agg.sum, &summary.sketch);
    pack_head(out, ty, minute, AGGREGATE);
    for word in [
        agg.count.to_le_bytes(),
        agg.min.to_le_bytes(),
        agg.max.to_le_bytes(),
        agg.first_ts.to_le_bytes(),
        agg.last_ts.to_le_bytes(),
        agg.latest.to_le_bytes(),
    ] {
        out.extend_from_slice(&word);
    }
    out.extend_from_slice(&(state.len() as u32).to_le_bytes());
    out.extend_from_slice(&state);
}

/// Reads the partials of a packed row that `wanted(type, minute)` selects into `out`
/// (the others are skipped undecoded).
pub fn unpack(
    bytes: &[u8],
    mut wanted: impl FnMut(&str, i64) -> bool,
    out: &mut Vec<Unpacked>,
) -> Result<(), StoreError> {
    let bad =
        |what: &str| StoreError::Unavailable(format!("a rollup partial is unreadable: {what}"));
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head)
    }
    fn word(rest: &mut &[u8]) -> Option<[u8; 8]> {
        take(rest, 8)?.try_into().ok()
    }
    let (&version, mut rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    if version != PACK_VERSION {
        return Err(bad("unknown version"));
    }
    while !rest.is_empty() {
        let mut one = || -> Option<Option<Unpacked>> {
            let len = u16::from_le_bytes(take(&mut rest, 2)?.try_into().ok()?) as usize;
            let ty = std::str::from_utf8(take(&mut rest, len)?).ok()?;
            let minute = i64::from_le_bytes(word(&mut rest)?);
            let form = *take(&mut rest, 1)?.first()?;
            let wanted = wanted(ty, minute);
            let ty = ty.to_owned();
            if form == POINTS {
                let n = *take(&mut rest, 1)?.first()? as usize;
                let points = take(&mut rest, n * 12)?;
                if !wanted {
                    return Some(None);
                }
                let mut summary = Summary::new();
                for point in points.chunks_exact(12) {
                    let offset = u32::from_le_bytes(point[..4].try_into().ok()?);
                    let v = f64::from_le_bytes(point[4..].try_into().ok()?);
                    summary.add(minute + i64::from(offset), v);
                }
                let Summary { agg, sketch } = summary;
                return Some(Some(Unpacked {
                    ty,
                    minute,
                    agg,
                    sketch,
                }));
            }
            if form != AGGREGATE {
                return None;
            }
            let count = u64::from_le_bytes(word(&mut rest)?);
            let min = f64::from_le_bytes(word(&mut rest)?);
            let max = f64::from_le_bytes(word(&mut rest)?);
            let first_ts = i64::from_le_bytes(word(&mut rest)?);
            let last_ts = i64::from_le_bytes(word(&mut rest)?);
            let latest = f64::from_le_bytes(word(&mut rest)?);
            let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
            let state = take(&mut rest, len)?;
            if !wanted {
                return Some(None);
            }
            let (sum, sketch) = decode_state(state).ok()?;
            let agg = Agg {
                count,
                sum,
                min,
                max,
                first_ts,
                last_ts,
                latest,
            };
            Some(Some(Unpacked {
                ty,
                minute,
                agg,
                sketch,
            }))
        };
        match one() {
            Some(Some(partial)) => out.push(partial),
            Some(None) => {}
            None => return Err(bad("truncated or corrupt")),
        }
    }
    Ok(())
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
        assert_eq!(columns.types.len(), 1);
        let row = Row {
            count: columns.counts[0],
            min: columns.mins[0],
            max: columns.maxs[0],
            first_ts: columns.firsts[0],
            last_ts: columns.lasts[0],
            latest: columns.latests[0],
            state: columns.states[0].clone(),
        };
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

    #[test]
    fn packed_rows_round_trip_per_key_and_skip_what_is_not_wanted() {
        let mut partials = Partials::default();
        partials.add("a", None, MINUTE_US, 5, 1.0);
        partials.add("a", None, MINUTE_US, MINUTE_US * 3 + 9, 2.0);
        partials.add("b", None, MINUTE_US, 7, -4.0);
        partials.add("a", Some("k"), MINUTE_US, 11, 8.0);
        // More than `SMALL` points: packed as an aggregate, not as points.
        for i in 0..20 {
            partials.add("c", None, MINUTE_US, 100 + i, i as f64);
        }
        let mut rows = partials.pack();
        rows.sort_by_key(|r| r.key.clone());
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].key.as_deref(), rows[0].lo, rows[0].hi),
            (None, 0, 3 * MINUTE_US)
        );
        assert_eq!(
            (rows[1].key.as_deref(), rows[1].lo, rows[1].hi),
            (Some("k"), 0, 0)
        );
        let mut out = Vec::new();
        unpack(
            &rows[0].bytes,
            |ty, minute| ty == "a" && minute == 0,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(
            (a.ty.as_str(), a.minute, a.agg.count, a.agg.latest),
            ("a", 0, 1, 1.0)
        );
        assert_eq!(
            a.sketch.quantile(0.5).map(|v| (v - 1.0).abs() < 0.01),
            Some(true)
        );
        out.clear();
        unpack(&rows[0].bytes, |_, _| true, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        let c = out.iter().find(|p| p.ty == "c").unwrap();
        assert_eq!(
            (c.agg.count, c.agg.min, c.agg.max, c.agg.latest),
            (20, 0.0, 19.0, 19.0)
        );
        assert_eq!(
            (c.agg.first_ts, c.agg.last_ts, c.agg.sum.total()),
            (100, 119, 190.0)
        );
        let b = out.iter().find(|p| p.ty == "b").unwrap();
        assert_eq!((b.agg.count, b.agg.first_ts, b.agg.latest), (1, 7, -4.0));
        assert!(rows[0].bytes.len() < 400, "{} bytes", rows[0].bytes.len());
        // Cut anywhere, a row reads only when the cut falls between partials.
        let readable = (1..rows[0].bytes.len())
            .filter(|&cut| unpack(&rows[0].bytes[..cut], |_, _| true, &mut Vec::new()).is_ok())
            .count();
        assert_eq!(
            readable, 4,
            "after the version byte, and after each of the first three"
        );
        assert!(unpack(&[9], |_, _| true, &mut out).is_err());
    }
}
