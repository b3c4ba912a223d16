//! Summaries: whole days, then whole hours, then whole minutes, then raw edge points.

use super::bucket::{DAY_US, HOUR_US, HOURS_PER_DAY, MINUTE_US, MINUTES_PER_HOUR, Minute, Rollup};
use super::series::Series;
use crate::domain::Aggregates;
use crate::store::rollup::Summary;

impl Series {
    /// Aggregates of the points with timestamps in `[from, to)` (microseconds).
    ///
    /// A bucket is taken whole when all of its points fall in the window (not only when its
    /// span does), so a window reaching past the data costs no raw scan at that edge.
    pub fn summarize(&self, from: i64, to: i64) -> Aggregates {
        let mut acc = Summary::new();
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

/// How the embedded store's buckets feed a summary.
trait Take {
    fn take_rollup(&mut self, rollup: &Rollup, from: i64, to: i64) -> bool;
    fn take_minute(&mut self, start: i64, bucket: &Minute, from: i64, to: i64);
}

impl Take for Summary {
    /// Takes a rollup whole or skips it; false means "descend to its children".
    fn take_rollup(&mut self, rollup: &Rollup, from: i64, to: i64) -> bool {
        if rollup.agg.disjoint(from, to) {
            return true;
        }
        if rollup.stale || !rollup.agg.covered_by(from, to) {
            return false;
        }
        self.merge(&rollup.agg, &rollup.sketch);
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
}
