//! One metric type's points: minute buckets, rolled up into hours and days.

use std::collections::BTreeMap;

use super::bucket::{HOURS_PER_DAY, MINUTE_US, MINUTES_PER_HOUR, Minute, Rollup};
use super::footprint::{MINUTE_KV, ROLLUP_KV, btree};
use crate::store::rollup::Agg;
use crate::store::rollup::Sketch;

/// Keys are bucket indices since the epoch (minute = µs / 60e6, hour = minute / 60, ...).
pub(super) struct Series {
    pub minutes: BTreeMap<i64, Minute>,
    pub hours: BTreeMap<i64, Rollup>,
    pub days: BTreeMap<i64, Rollup>,
    count: u64,
    /// Heap bytes of the buckets' columns and the rollups' sketches, kept as they change.
    heap: usize,
}

pub(super) fn hour_of(minute: i64) -> i64 {
    minute.div_euclid(MINUTES_PER_HOUR)
}

pub(super) fn day_of(minute: i64) -> i64 {
    minute.div_euclid(MINUTES_PER_HOUR * HOURS_PER_DAY)
}

impl Series {
    pub fn new() -> Self {
        Self {
            minutes: BTreeMap::new(),
            hours: BTreeMap::new(),
            days: BTreeMap::new(),
            count: 0,
            heap: 0,
        }
    }

    /// Bytes the series holds: its maps' nodes and what their entries hold on the heap.
    pub fn bytes(&self) -> usize {
        self.heap
            + btree(self.minutes.len(), MINUTE_KV)
            + btree(self.hours.len(), ROLLUP_KV)
            + btree(self.days.len(), ROLLUP_KV)
    }

    /// Bytes a minute bucket holds on the heap and in its map, about.
    pub fn minute_bytes(&self, minute: i64) -> usize {
        self.minutes
            .get(&minute)
            .map_or(0, |b| 2 * MINUTE_KV + b.heap_bytes())
    }

    /// At most the heap bytes `insert_run` of `n` points in `minute` adds to the bucket,
    /// whether or not it exists by the time the write runs (its map entry is counted apart).
    pub fn minute_growth(&self, minute: i64, n: usize) -> usize {
        let open = self
            .minutes
            .last_key_value()
            .is_none_or(|(&m, _)| minute >= m);
        let fresh = Minute::new().heap_bytes_after(n, open);
        let grown = self
            .minutes
            .get(&minute)
            .map_or(0, |b| b.heap_bytes_after(n, open) - b.heap_bytes());
        fresh.max(grown)
    }

    /// The same for the hour (`day == false`) or day rollup `key` taking `n` points.
    pub fn rollup_growth(&self, key: i64, day: bool, n: usize) -> usize {
        let map = if day { &self.days } else { &self.hours };
        let fresh = Sketch::default().heap_bytes_after(n);
        let grown = map
            .get(&key)
            .map_or(0, |r| r.sketch.heap_bytes_after(n) - r.heap_bytes());
        fresh.max(grown)
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Greatest stored timestamp.
    pub fn last_ts(&self) -> Option<i64> {
        self.minutes.last_key_value().map(|(_, b)| b.agg.last_ts)
    }

    pub fn minute_len(&self, minute: i64) -> u64 {
        self.minutes.get(&minute).map_or(0, Minute::len)
    }

    /// Stores `run`, whose points all fall in `minute`. Returns whether the bucket is new.
    pub fn insert_run(&mut self, minute: i64, run: &[(i64, f64)]) -> bool {
        let newest = self.minutes.last_key_value().map(|(&k, _)| k);
        if let Some(previous) = newest.filter(|&n| minute > n) {
            self.seal(previous, minute);
        }
        let open = newest.is_none_or(|n| minute >= n);
        let mut created = false;
        let bucket = self.minutes.entry(minute).or_insert_with(|| {
            created = true;
            Minute::new()
        });
        let before = bucket.heap_bytes();
        let run_agg = bucket.push_run(minute * MINUTE_US, run, open);
        self.heap = self.heap - before + bucket.heap_bytes();
        add_to_rollup(
            &mut self.hours,
            &mut self.heap,
            hour_of(minute),
            &run_agg,
            run,
        );
        add_to_rollup(
            &mut self.days,
            &mut self.heap,
            day_of(minute),
            &run_agg,
            run,
        );
        self.count += run.len() as u64;
        created
    }

    /// `previous` stops being the newest minute: its columns, and its hour's and day's
    /// sketches once those are over too, give back their growth slack.
    fn seal(&mut self, previous: i64, newest: i64) {
        let mut freed = 0;
        if let Some(bucket) = self.minutes.get_mut(&previous) {
            let before = bucket.heap_bytes();
            bucket.seal();
            freed += before - bucket.heap_bytes();
        }
        for (map, of) in [
            (&mut self.hours, hour_of as fn(i64) -> i64),
            (&mut self.days, day_of),
        ] {
            if of(newest) > of(previous)
                && let Some(rollup) = map.get_mut(&of(previous))
            {
                let before = rollup.heap_bytes();
                rollup.seal();
                freed += before - rollup.heap_bytes();
            }
        }
        self.heap -= freed;
    }

    /// Drops a whole minute bucket; returns how many points it held.
    pub fn remove_minute(&mut self, minute: i64) -> u64 {
        let Some(bucket) = self.minutes.remove(&minute) else {
            return 0;
        };
        self.heap -= bucket.heap_bytes();
        self.count -= bucket.len();
        self.after_eviction(minute);
        bucket.len()
    }

    /// Drops the `k` oldest points of a bucket that holds more than `k`.
    pub fn evict_oldest_points(&mut self, minute: i64, k: u64) -> u64 {
        let Some(bucket) = self.minutes.get_mut(&minute) else {
            return 0;
        };
        let k = k.min(bucket.len());
        let before = bucket.heap_bytes();
        bucket.evict_oldest(minute * MINUTE_US, k as usize);
        self.heap = self.heap + bucket.heap_bytes() - before;
        self.count -= k;
        self.after_eviction(minute);
        k
    }

    /// Rollups cannot subtract (a sketch has no removal), so the ones above an eviction are
    /// marked stale, and dropped once their last child goes.
    fn after_eviction(&mut self, minute: i64) {
        let hour = hour_of(minute);
        let first_minute = hour * MINUTES_PER_HOUR;
        if self
            .minutes
            .range(first_minute..first_minute + MINUTES_PER_HOUR)
            .next()
            .is_none()
        {
            if let Some(rollup) = self.hours.remove(&hour) {
                self.heap -= rollup.heap_bytes();
            }
        } else if let Some(rollup) = self.hours.get_mut(&hour) {
            rollup.stale = true;
        }
        let day = day_of(minute);
        let first_hour = day * HOURS_PER_DAY;
        if self
            .hours
            .range(first_hour..first_hour + HOURS_PER_DAY)
            .next()
            .is_none()
        {
            if let Some(rollup) = self.days.remove(&day) {
                self.heap -= rollup.heap_bytes();
            }
        } else if let Some(rollup) = self.days.get_mut(&day) {
            rollup.stale = true;
        }
    }

    /// The newest `limit` points, newest first.
    pub fn recent(&self, limit: usize) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(limit.min(self.count as usize));
        for (&minute, bucket) in self.minutes.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let room = limit - out.len();
            out.extend(
                bucket
                    .newest_first(minute * MINUTE_US)
                    .into_iter()
                    .take(room),
            );
        }
        out
    }
}

/// Adds a run to the rollup at `key`, created if need be, keeping `heap` (a merge of many
/// values may leave the sketch's bins smaller than they were).
fn add_to_rollup(
    map: &mut BTreeMap<i64, Rollup>,
    heap: &mut usize,
    key: i64,
    run_agg: &Agg,
    run: &[(i64, f64)],
) {
    let rollup = map.entry(key).or_insert_with(Rollup::new);
    let before = rollup.heap_bytes();
    rollup.add_run(run_agg, run);
    *heap = *heap - before + rollup.heap_bytes();
}
