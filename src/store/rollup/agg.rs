//! Mergeable aggregates: count, overflow-safe sum, min, max, latest.

/// 2^64. Multiplying a normal `f64` by a power of two is exact, so values scaled by 2^-64
/// can be summed without overflowing and rescaled once at the end.
const SCALE_UP: f64 = 18_446_744_073_709_551_616.0;
const SCALE_DOWN: f64 = 1.0 / SCALE_UP;

/// Clamps into the finite range; NaN cannot arise from finite inputs but must never escape.
pub(in crate::store) fn saturate(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-f64::MAX, f64::MAX)
    }
}

/// Neumaier-compensated running sum.
#[derive(Debug, Clone, Copy)]
struct Compensated {
    sum: f64,
    comp: f64,
}

impl Compensated {
    const ZERO: Self = Self {
        sum: 0.0,
        comp: 0.0,
    };

    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn merge(&mut self, other: &Self) {
        self.add(other.sum);
        self.comp += other.comp;
    }

    fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// A sum that never overflows. Magnitudes >= 1 are summed scaled by 2^-64 (exact for them);
/// smaller ones unscaled, because scaling would push tiny values into subnormals and lose bits.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct Sum {
    large: Compensated,
    small: Compensated,
}

impl Sum {
    pub const ZERO: Self = Self {
        large: Compensated::ZERO,
        small: Compensated::ZERO,
    };

    fn add(&mut self, v: f64) {
        if v.abs() >= 1.0 {
            self.large.add(v * SCALE_DOWN);
        } else {
            self.small.add(v);
        }
    }

    fn merge(&mut self, other: &Self) {
        self.large.merge(&other.large);
        self.small.merge(&other.small);
    }

    /// The running state, for storing a partial sum (`from_parts` gives it back).
    pub fn parts(&self) -> [f64; 4] {
        [
            self.large.sum,
            self.large.comp,
            self.small.sum,
            self.small.comp,
        ]
    }

    pub fn from_parts([large, large_comp, small, small_comp]: [f64; 4]) -> Self {
        Self {
            large: Compensated {
                sum: large,
                comp: large_comp,
            },
            small: Compensated {
                sum: small,
                comp: small_comp,
            },
        }
    }

    /// The sum, saturated to `±f64::MAX`.
    pub fn total(&self) -> f64 {
        saturate(self.large.value() * SCALE_UP + self.small.value())
    }

    /// The mean of `n` values; dividing before rescaling keeps it finite.
    pub fn mean(&self, n: u64) -> f64 {
        let n = n as f64;
        saturate((self.large.value() / n) * SCALE_UP + self.small.value() / n)
    }
}

/// Aggregates of a set of points; timestamps are microseconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct Agg {
    pub count: u64,
    pub sum: Sum,
    pub min: f64,
    pub max: f64,
    /// Earliest and greatest timestamp: they decide whether a window covers the whole set.
    pub first_ts: i64,
    pub last_ts: i64,
    /// Value at `last_ts`; on equal timestamps the one inserted last.
    pub latest: f64,
}

impl Agg {
    pub const EMPTY: Self = Self {
        count: 0,
        sum: Sum::ZERO,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        first_ts: i64::MAX,
        last_ts: i64::MIN,
        latest: 0.0,
    };

    pub fn add(&mut self, ts: i64, v: f64) {
        self.count += 1;
        self.sum.add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.first_ts = self.first_ts.min(ts);
        if ts >= self.last_ts {
            self.last_ts = ts;
            self.latest = v;
        }
    }

    /// Folds `other` in as if its points were inserted after ours.
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum.merge(&other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.first_ts = self.first_ts.min(other.first_ts);
        if other.last_ts >= self.last_ts {
            self.last_ts = other.last_ts;
            self.latest = other.latest;
        }
    }

    /// Every point lies in `[from, to)`.
    pub fn covered_by(&self, from: i64, to: i64) -> bool {
        self.count > 0 && from <= self.first_ts && self.last_ts < to
    }

    /// No point lies in `[from, to)`.
    pub fn disjoint(&self, from: i64, to: i64) -> bool {
        self.count == 0 || self.last_ts < from || self.first_ts >= to
    }
}
