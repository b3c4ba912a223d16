//! Storage units: a one-minute bucket of raw columns, and the hour/day rollups above it.

use super::footprint::allocation;
use crate::store::rollup::Agg;
use crate::store::rollup::Sketch;

pub(super) const MINUTE_US: i64 = 60_000_000;
pub(super) const HOUR_US: i64 = 60 * MINUTE_US;
pub(super) const DAY_US: i64 = 24 * HOUR_US;
pub(super) const MINUTES_PER_HOUR: i64 = 60;
pub(super) const HOURS_PER_DAY: i64 = 24;

/// One minute of one type: raw points as two columns, plus their aggregate.
pub(super) struct Minute {
    /// Microseconds since the minute's start (< 6e7, so a `u32` is enough).
    offsets: Vec<u32>,
    values: Vec<f64>,
    pub agg: Agg,
    /// Offsets are non-decreasing, i.e. insertion order is time order.
    sorted: bool,
}

impl Minute {
    pub fn new() -> Self {
        Self {
            offsets: Vec::new(),
            values: Vec::new(),
            agg: Agg::EMPTY,
            sorted: true,
        }
    }

    pub fn len(&self) -> u64 {
        self.values.len() as u64
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Heap bytes of the two columns, as allocated.
    pub fn heap_bytes(&self) -> usize {
        allocation(self.offsets.capacity() * size_of::<u32>())
            + allocation(self.values.capacity() * size_of::<f64>())
    }

    /// Heap bytes after appending `n` points, as `push_run` would grow the columns.
    pub fn heap_bytes_after(&self, n: usize, open: bool) -> usize {
        let len = self.values.len();
        let cap = self.values.capacity();
        let cap = if cap - len >= n {
            cap
        } else if open {
            // `Vec::reserve`: at least double, at least 4.
            (cap * 2).max(len + n).max(4)
        } else {
            len + n
        };
        allocation(cap * size_of::<u32>()) + allocation(cap * size_of::<f64>())
    }

    /// Points as `(timestamp, value)` in insertion order.
    pub fn points(&self, start: i64) -> impl DoubleEndedIterator<Item = (i64, f64)> + '_ {
        self.offsets
            .iter()
            .zip(&self.values)
            .map(move |(&o, &v)| (start + i64::from(o), v))
    }

    /// Appends `run` (all within this minute) and returns the run's own aggregate.
    /// `open` marks the newest bucket of its series, the only one expected to keep growing:
    /// it grows amortized, older ones exactly, so sealed buckets carry no slack.
    pub fn push_run(&mut self, start: i64, run: &[(i64, f64)], open: bool) -> Agg {
        if open {
            self.offsets.reserve(run.len());
            self.values.reserve(run.len());
        } else {
            self.offsets.reserve_exact(run.len());
            self.values.reserve_exact(run.len());
        }
        let mut run_agg = Agg::EMPTY;
        for &(ts, v) in run {
            // `ts` lies in [start, start + MINUTE_US), so the offset fits.
            let offset = (ts - start) as u32;
            if self.offsets.last().is_some_and(|&last| last > offset) {
                self.sorted = false;
            }
            self.offsets.push(offset);
            self.values.push(v);
            run_agg.add(ts, v);
        }
        self.agg.merge(&run_agg);
        run_agg
    }

    /// Drops growth slack once the bucket stops being the newest.
    pub fn seal(&mut self) {
        self.offsets.shrink_to_fit();
        self.values.shrink_to_fit();
    }

    /// Newest first; on equal timestamps the last inserted first.
    pub fn newest_first(&self, start: i64) -> Vec<(i64, f64)> {
        let mut points: Vec<(i64, f64)> = self.points(start).rev().collect();
        if !self.sorted {
            // Stable sort of the reversed sequence keeps "last inserted first" on ties.
            points.sort_by_key(|p| std::cmp::Reverse(p.0));
        }
        points
    }

    /// Removes the `k` oldest points (by timestamp, then insertion) and re-aggregates; the
    /// columns shrink to what is left, so the memory is given back.
    pub fn evict_oldest(&mut self, start: i64, k: usize) {
        self.sort_by_time();
        let k = k.min(self.values.len());
        self.offsets.drain(..k);
        self.values.drain(..k);
        self.seal();
        let mut agg = Agg::EMPTY;
        for (ts, v) in self.points(start) {
            agg.add(ts, v);
        }
        self.agg = agg;
    }

    fn sort_by_time(&mut self) {
        if self.sorted {
            return;
        }
        let mut order: Vec<usize> = (0..self.offsets.len()).collect();
        // Stable, so equal timestamps keep their insertion order.
        order.sort_by_key(|&i| self.offsets[i]);
        self.offsets = order.iter().map(|&i| self.offsets[i]).collect();
        self.values = order.iter().map(|&i| self.values[i]).collect();
        self.sorted = true;
    }
}

/// Aggregates and a quantile sketch over the minutes of one hour or one day.
pub(super) struct Rollup {
    pub agg: Agg,
    pub sketch: Sketch,
    /// Some of its points were evicted: `agg` and `sketch` still count them, so readers
    /// must descend to the children instead. Only the oldest rollups of a series are stale.
    pub stale: bool,
}

impl Rollup {
    pub fn new() -> Self {
        Self {
            agg: Agg::EMPTY,
            sketch: Sketch::default(),
            stale: false,
        }
    }

    pub fn add_run(&mut self, run_agg: &Agg, run: &[(i64, f64)]) {
        self.agg.merge(run_agg);
        for &(_, v) in run {
            self.sketch.add(v);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.sketch.heap_bytes()
    }

    /// Drops the sketch's growth slack once its hour or day is no longer the newest.
    pub fn seal(&mut self) {
        self.sketch.shrink();
    }
}
