//! Summaries: whole days, then whole hours, then whole minutes, then raw edge points.

use super::agg::{Agg, saturate};
use super::bucket::{DAY_US, HOUR_US, HOURS_PER_DAY, MINUTE_US, MINUTES_PER_HOUR, Minute, Rollup};
use super::series::Series;
use super::sketch::Sketch;
use crate::domain::Aggregates;

const PERCENTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

impl Series {
    /// Aggregates of the points with timestamps in `[from, to)` (microseconds).
    ///
    /// A bucket is taken whole when all of its points fall in the window (not only when its
    /// span does), so a window reaching past the data costs no raw scan at that edge.
    pub fn summarize(&self, from: i64, to: i64) -> Aggregates {
        let mut acc = Acc::new();
        if from >= to {
            return acc.finish();
        }
        let last = to - 1;
        let days = from.div_euclid(DAY_US)..=last.div_euclid(DAY_US);
        for (&day, rollup) in self.days.range(days) {
            if acc.take_rollup(rollup, from, to) {
                continue;
            }
            let first_hour = day * HOURS_PER_DAY;
            let hours = from.div_euclid(HOUR_US).max(first_hour)
                ..=last.div_euclid(HOUR_US).min(first_hour + HOURS_PER_DAY - 1);
            for (&hour, rollup) in self.hours.range(hours) {
                if acc.take_rollup(rollup, from, to) {
                    continue;
                }
                let first_minute = hour * MINUTES_PER_HOUR;
                let minutes = from.div_euclid(MINUTE_US).max(first_minute)
                    ..=last
                        .div_euclid(MINUTE_US)
                        .min(first_minute + MINUTES_PER_HOUR - 1);
                for (&minute, bucket) in self.minutes.range(minutes) {
                    acc.take_minute(minute * MINUTE_US, bucket, from, to);
                }
            }
        }
        acc.finish()
    }
}

/// Running aggregates plus the sketch the percentiles come from.
struct Acc {
    agg: Agg,
    sketch: Sketch,
}

impl Acc {
    fn new() -> Self {
        Self {
            agg: Agg::EMPTY,
            sketch: Sketch::default(),
        }
    }

    /// Takes a rollup whole or skips it; false means "descend to its children".
    fn take_rollup(&mut self, rollup: &Rollup, from: i64, to: i64) -> bool {
        if rollup.agg.disjoint(from, to) {
            return true;
        }
        if rollup.stale || !rollup.agg.covered_by(from, to) {
            return false;
        }
        self.agg.merge(&rollup.agg);
        self.sketch.merge(&rollup.sketch);
        true
    }

    fn take_minute(&mut self, start: i64, bucket: &Minute, from: i64, to: i64) {
        if bucket.agg.disjoint(from, to) {
            return;
        }
        if bucket.agg.covered_by(from, to) {
            self.agg.merge(&bucket.agg);
            let values = bucket.values();
            self.sketch.add_all(values.iter().copied(), values.len());
            return;
        }
        let inside = bucket
            .points(start)
            .filter(|&(ts, _)| from <= ts && ts < to);
        let agg = &mut self.agg;
        let inside = inside.map(|(ts, v)| {
            agg.add(ts, v);
            v
        });
        self.sketch.add_all(inside, bucket.len() as usize);
    }

    fn finish(self) -> Aggregates {
        let agg = self.agg;
        if agg.count == 0 {
            return Aggregates::default();
        }
        // The sketch answers within its relative accuracy; it can never be outside [min, max].
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
