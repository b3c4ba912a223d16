//! The sliding window: calls, failures and slow calls over the last N
//! seconds, in a ring of one-second buckets.
//!
//! Running totals are kept beside the ring so a record or a read never sums
//! the buckets; advancing the clock clears each passed bucket once, so the
//! cost is O(1) amortised and never more than one pass over the ring.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::Outcome;

/// Bounds the ring's memory whatever the configuration says (an hour).
const MAX_BUCKETS: u64 = 3_600;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u64,
    failures: u64,
    slow: u64,
}

/// What the window currently holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    /// Failures and timeouts.
    pub failures: u64,
    pub slow: u64,
}

impl Totals {
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    pub fn slow_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Debug)]
pub struct Window {
    /// Seconds are counted from here, so bucket numbers never depend on the
    /// wall clock.
    origin: Instant,
    buckets: Box<[Bucket]>,
    /// The newest second the ring has been advanced to.
    head: u64,
    totals: Totals,
}

impl Window {
    /// A window of `length`, rounded up to whole seconds (at least one).
    pub fn new(length: Duration, origin: Instant) -> Self {
        let mut seconds = length.as_secs();
        if length.subsec_nanos() > 0 {
            seconds += 1;
        }
        let len = seconds.clamp(1, MAX_BUCKETS) as usize;
        Self {
            origin,
            buckets: vec![Bucket::default(); len].into_boxed_slice(),
            head: 0,
            totals: Totals::default(),
        }
    }

    pub fn record(&mut self, now: Instant, outcome: Outcome) {
        let index = self.advance(now);
        let bucket = &mut self.buckets[index];
        bucket.calls += 1;
        self.totals.calls += 1;
        if outcome.is_failure() {
            bucket.failures += 1;
            self.totals.failures += 1;
        }
        if outcome == Outcome::Slow {
            bucket.slow += 1;
            self.totals.slow += 1;
        }
    }

    pub fn totals(&mut self, now: Instant) -> Totals {
        self.advance(now);
        self.totals
    }

    pub fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.totals = Totals::default();
    }

    /// Moves the ring forward to `now`, dropping buckets that fell out of the
    /// window, and returns the index of the current bucket.
    fn advance(&mut self, now: Instant) -> usize {
        let len = self.buckets.len() as u64;
        // Never step backwards: a late reading lands in the newest bucket.
        let second = now
            .saturating_duration_since(self.origin)
            .as_secs()
            .max(self.head);
        if second - self.head >= len {
            self.buckets.fill(Bucket::default());
            self.totals = Totals::default();
        } else {
            for passed in self.head + 1..=second {
                let bucket = &mut self.buckets[(passed % len) as usize];
                self.totals.calls -= bucket.calls;
                self.totals.failures -= bucket.failures;
                self.totals.slow -= bucket.slow;
                *bucket = Bucket::default();
            }
        }
        self.head = second;
        (second % len) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_buckets_age_out_one_second_at_a_time() {
        let origin = Instant::now();
        let mut window = Window::new(Duration::from_secs(3), origin);
        window.record(origin, Outcome::Failure);
        window.record(origin + Duration::from_secs(1), Outcome::Slow);
        window.record(origin + Duration::from_secs(2), Outcome::Success);
        let all = window.totals(origin + Duration::from_millis(2_900));
        assert_eq!(
            all,
            Totals {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        let later = window.totals(origin + Duration::from_secs(3));
        assert_eq!(later.calls, 2);
        assert_eq!(later.failures, 0);
        assert_eq!(window.totals(origin + Duration::from_secs(5)).calls, 0);
    }

    #[test]
    fn a_long_gap_clears_the_whole_ring() {
        let origin = Instant::now();
        let mut window = Window::new(Duration::from_millis(1_500), origin);
        assert_eq!(window.buckets.len(), 2);
        window.record(origin, Outcome::Timeout);
        window.record(origin + Duration::from_secs(100), Outcome::Failure);
        let totals = window.totals(origin + Duration::from_secs(100));
        assert_eq!((totals.calls, totals.failures), (1, 1));
        assert!((totals.failure_rate() - 1.0).abs() < f64::EPSILON);
    }
}
