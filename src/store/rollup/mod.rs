//! What both stores summarise with: mergeable aggregates (`agg`: count, overflow-safe sum,
//! min, max, first and latest point) and a mergeable quantile sketch (`sketch`), combined
//! into a [`Summary`] that answers `Aggregates`. The embedded store keeps them in its hour
//! and day rollups; PostgreSQL keeps them serialised ([`encode_state`]) in its rollup tables.

mod agg;
mod sketch;

pub(in crate::store) use agg::{Agg, Sum, saturate};
pub(in crate::store) use sketch::Sketch;

use crate::domain::Aggregates;

/// The percentiles a summary answers, in `Aggregates` order.
const PERCENTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];
/// Leads a serialised state, so a later format can be told apart.
const STATE_VERSION: u8 = 1;

/// An allocation of `n` bytes as the allocator hands it out (the memory budget's model;
/// see `memory/footprint.rs`).
pub(in crate::store) fn allocation(n: usize) -> usize {
    match n {
        0 => 0,
        1..=64 => n.next_multiple_of(8),
        _ => n + n / 8,
    }
}

/// Aggregates being merged, plus the sketch their percentiles come from.
pub(in crate::store) struct Summary {
    pub agg: Agg,
    pub sketch: Sketch,
}

impl Summary {
    pub fn new() -> Self {
        Self {
            agg: Agg::EMPTY,
            sketch: Sketch::default(),
        }
    }

    /// Folds in a whole set of points already aggregated.
    pub fn merge(&mut self, agg: &Agg, sketch: &Sketch) {
        self.agg.merge(agg);
        self.sketch.merge(sketch);
    }

    pub fn add(&mut self, ts: i64, v: f64) {
        self.agg.add(ts, v);
        self.sketch.add(v);
    }

    /// Count, sum, average, extremes and latest exact; percentiles from the sketch, within
    /// its accuracy and never outside `[min, max]`.
    pub fn finish(self) -> Aggregates {
        let agg = self.agg;
        if agg.count == 0 {
            return Aggregates::default();
        }
        let clamp = |v: f64| saturate(v).max(agg.min).min(agg.max);
        let [p50, p90, p95, p99] = PERCENTILES.map(|q| self.sketch.quantile(q).map(clamp));
        Aggregates {
            count: agg.count,
            sum: Some(agg.sum.total()),
            average: Some(clamp(agg.sum.mean(agg.count))),
            min: Some(agg.min),
            max: Some(agg.max),
            latest: Some(agg.latest),
            p50,
            p90,
            p95,
            p99,
        }
    }
}

/// The part of a partial aggregate that has no column of its own: the exact sum's running
/// state and the sketch, as bytes (a version byte, the sum's four `f64`, the sketch).
pub(in crate::store) fn encode_state(sum: &Sum, sketch: &Sketch) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(STATE_VERSION);
    for part in sum.parts() {
        out.extend_from_slice(&part.to_le_bytes());
    }
    sketch.encode(&mut out);
    out
}

/// Reads what `encode_state` wrote.
pub(in crate::store) fn decode_state(bytes: &[u8]) -> Result<(Sum, Sketch), &'static str> {
    let (&version, mut rest) = bytes.split_first().ok_or("an empty state")?;
    if version != STATE_VERSION {
        return Err("a state of an unknown version");
    }
    let mut parts = [0.0; 4];
    for part in &mut parts {
        let (head, tail) = rest.split_first_chunk::<8>().ok_or("a truncated state")?;
        *part = f64::from_le_bytes(*head);
        rest = tail;
    }
    let (sketch, rest) = Sketch::decode(rest)?;
    if !rest.is_empty() {
        return Err("a state with trailing bytes");
    }
    Ok((Sum::from_parts(parts), sketch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_exactly() {
        let mut halves = [Summary::new(), Summary::new()];
        for i in 0..1_000i64 {
            let v = (i as f64 - 300.0) * 1e290 + 0.1;
            halves[(i % 2) as usize].add(i, v);
        }
        let (mut direct, mut stored) = (Summary::new(), Summary::new());
        for half in &halves {
            direct.merge(&half.agg, &half.sketch);
            let (sum, sketch) = decode_state(&encode_state(&half.agg.sum, &half.sketch)).unwrap();
            assert_eq!(sum.parts(), half.agg.sum.parts());
            stored.merge(&Agg { sum, ..half.agg }, &sketch);
        }
        let stored = stored.finish();
        assert_eq!(stored, direct.finish());
        assert_eq!(stored.count, 1_000);
        assert!(decode_state(&[]).is_err());
        assert!(decode_state(&[2, 0, 0]).is_err());
        let mut trailing = encode_state(&Sum::ZERO, &Sketch::default());
        trailing.push(0);
        assert!(decode_state(&trailing).is_err());
    }
}
