//! One metric type's points: minute buckets, rolled up into hours and days.

use std::collections::BTreeMap;

use super::bucket::{HOURS_PER_DAY, MINUTE_US, MINUTES_PER_HOUR, Minute, Rollup};

/// Keys are bucket indices since the epoch (minute = µs / 60e6, hour = minute / 60, ...).
pub(super) struct Series {
    pub minutes: BTreeMap<i64, Minute>,
    pub hours: BTreeMap<i64, Rollup>,
    pub days: BTreeMap<i64, Rollup>,
    count: u64,
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
        }
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
        if let Some(bucket) = newest
            .filter(|&n| minute > n)
            .and_then(|prev| self.minutes.get_mut(&prev))
        {
            bucket.seal();
        }
        let open = newest.is_none_or(|n| minute >= n);
        let mut created = false;
        let bucket = self.minutes.entry(minute).or_insert_with(|| {
            created = true;
            Minute::new()
        });
        let run_agg = bucket.push_run(minute * MINUTE_US, run, open);
        self.hours
            .entry(hour_of(minute))
            .or_insert_with(Rollup::new)
            .add_run(&run_agg, run);
        self.days
            .entry(day_of(minute))
            .or_insert_with(Rollup::new)
            .add_run(&run_agg, run);
        self.count += run.len() as u64;
        created
    }

    /// Drops a whole minute bucket; returns how many points it held.
    pub fn remove_minute(&mut self, minute: i64) -> u64 {
        let Some(bucket) = self.minutes.remove(&minute) else {
            return 0;
        };
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
        bucket.evict_oldest(minute * MINUTE_US, k as usize);
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
            self.hours.remove(&hour);
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
            self.days.remove(&day);
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
