//! The quantile sketch of the rollups: DDSketch's logarithmic mapping over sparse bins of
//! bounded number, so its size never depends on the values it has seen.
//!
//! A value `v` falls in bin `k = ceil(ln|v| / ln γ)` of its sign, with `γ = (1 + α) / (1 - α)`;
//! the bin answers `2γ^k / (1 + γ)`, within `α` of every value in it. Only bins that hold
//! something are kept (a sorted `Vec`), so two values 600 orders of magnitude apart cost two
//! bins, not the millions between them (the dense store of `sketches-ddsketch` allocated
//! every bin in between: megabytes per sketch).
//!
//! Each sign keeps at most [`MAX_BINS`] bins. Past that the lowest magnitudes are folded into
//! the next bin up ("collapsing lowest", as DDSketch's bounded stores do): percentiles of
//! values within 10^12 of the largest magnitude of their sign (which fill at most 1,728
//! bins at α = 0.8%) stay within α; a percentile that lands on a folded value is answered
//! too large, but never above the 10^12 floor. Magnitudes at or below `f64::MIN_POSITIVE`
//! (subnormals) count as zero.
//!
//! A bin is one `u64`: its key (offset to be non-negative) in the high bits and its count
//! in the low ones, so the `Vec` sorts by key and a sketch is at most
//! `2 * (MAX_BINS + 1) * 8` bytes of bins, whatever it is fed.

use super::allocation;

/// Relative accuracy. 0.8% leaves room under the promised 1% for floating-point noise.
#[cfg_attr(not(test), allow(dead_code))] // the constants below are computed from it
const ALPHA: f64 = 0.008;
/// Bins kept per sign: more than the 1,728 that values spanning 10^12 can fill.
pub(in crate::store) const MAX_BINS: usize = 1_792;
/// Magnitudes at or below this (subnormals) count as zero.
const MIN_MAGNITUDE: f64 = f64::MIN_POSITIVE;

/// Values added at once past which sorting their keys beats a search per value.
const BATCH_MIN: usize = 16;
/// Low bits of a bin: its count (2^46, 7e13, is out of reach of any store here).
const COUNT_BITS: u32 = 46;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Keys of normal f64 magnitudes lie within ±44,400 at α = 0.8%; offset to be positive.
const KEY_OFFSET: i64 = 1 << 17;

/// `ln γ` with `γ = (1 + α) / (1 - α)`, as a constant (f64 `ln` is not `const`); a test
/// checks it against the formula.
const GAMMA_LN: f64 = 0.016_000_341_346_441_13;
const INV_GAMMA_LN: f64 = 1.0 / GAMMA_LN;
/// `ln(2 / (1 + γ))`: a bin answers `γ^k · 2 / (1 + γ)`.
const LN_MIDPOINT: f64 = -0.008_032_171_697_264_267;

fn key_of(magnitude: f64) -> i64 {
    (magnitude.ln() * INV_GAMMA_LN).ceil() as i64
}

/// The value a bin answers: `2γ^k / (1 + γ)`, computed in log space so the largest keys
/// do not overflow before the factor below one brings them back.
fn value_of(key: i64) -> f64 {
    (key as f64 * GAMMA_LN + LN_MIDPOINT).exp()
}

/// One sign's bins, sorted by key.
#[derive(Debug, Clone, Default)]
struct Bins(Vec<u64>);

impl Bins {
    fn pack(key: i64, count: u64) -> u64 {
        (((key + KEY_OFFSET) as u64) << COUNT_BITS) | count.min(COUNT_MASK)
    }

    fn key(bin: u64) -> i64 {
        (bin >> COUNT_BITS) as i64 - KEY_OFFSET
    }

    fn count(bin: u64) -> u64 {
        bin & COUNT_MASK
    }

    /// Bins counting `keys` (in any order).
    fn of_keys(mut keys: Vec<i64>) -> Self {
        keys.sort_unstable();
        let mut bins: Vec<u64> = Vec::with_capacity(keys.len().min(MAX_BINS + 1));
        for run in keys.chunk_by(|a, b| a == b) {
            bins.push(Self::pack(run[0], run.len() as u64));
        }
        let mut bins = Self(bins);
        bins.collapse();
        bins
    }

    fn total(&self) -> u64 {
        self.0.iter().map(|&b| Self::count(b)).sum()
    }

    fn add(&mut self, key: i64, n: u64) {
        match self.0.binary_search_by_key(&key, |&b| Self::key(b)) {
            Ok(i) => {
                let count = (Self::count(self.0[i]) + n).min(COUNT_MASK);
                self.0[i] = Self::pack(key, count);
            }
            Err(i) => {
                if self.0.len() == self.0.capacity() {
                    // Grow by doubling, but never past the bound.
                    let want = (self.0.capacity() * 2).clamp(4, MAX_BINS + 1);
                    self.0.reserve_exact(want - self.0.len());
                }
                self.0.insert(i, Self::pack(key, n));
                self.collapse();
            }
        }
    }

    fn merge(&mut self, other: &Bins) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        if !self.merge_in_place(other) {
            self.merge_into_new(other);
        }
    }

    /// Adds `other`'s counts where every one of its keys is already here (sketches of one
    /// series mostly share their bins); false, with nothing changed, otherwise.
    fn merge_in_place(&mut self, other: &Bins) -> bool {
        let mut i = 0;
        for &bin in &other.0 {
            let key = Self::key(bin);
            while i < self.0.len() && Self::key(self.0[i]) < key {
                i += 1;
            }
            if i == self.0.len() || Self::key(self.0[i]) != key {
                return false;
            }
        }
        let mut i = 0;
        for &bin in &other.0 {
            let key = Self::key(bin);
            while Self::key(self.0[i]) < key {
                i += 1;
            }
            let count = (Self::count(self.0[i]) + Self::count(bin)).min(COUNT_MASK);
            self.0[i] = Self::pack(key, count);
        }
        true
    }

    fn merge_into_new(&mut self, other: &Bins) {
        let (a, b) = (&self.0, &other.0);
        let mut merged = Vec::with_capacity((a.len() + b.len()).min(MAX_BINS * 2));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let (x, y) = (a[i], b[j]);
            if Self::key(x) == Self::key(y) {
                merged.push(Self::pack(Self::key(x), Self::count(x) + Self::count(y)));
                i += 1;
                j += 1;
            } else if x < y {
                // Keys differ, and the key is in the high bits.
                merged.push(x);
                i += 1;
            } else {
                merged.push(y);
                j += 1;
            }
        }
        merged.extend_from_slice(&a[i..]);
        merged.extend_from_slice(&b[j..]);
        self.0 = merged;
        self.collapse();
        if self.0.capacity() > MAX_BINS + 1 {
            self.0.shrink_to(MAX_BINS + 1);
        }
    }

    /// Folds the lowest bins into the next one up until at most `MAX_BINS` remain.
    fn collapse(&mut self) {
        if self.0.len() <= MAX_BINS {
            return;
        }
        let excess = self.0.len() - MAX_BINS;
        let folded: u64 = self.0[..excess].iter().map(|&b| Self::count(b)).sum();
        let into = self.0[excess];
        self.0[excess] = Self::pack(Self::key(into), Self::count(into) + folded);
        self.0.drain(..excess);
    }

    /// The key of the value at `rank` (0-based, ascending by key).
    fn key_at_rank(&self, rank: u64) -> Option<i64> {
        let mut seen = 0;
        for &bin in &self.0 {
            seen += Self::count(bin);
            if seen > rank {
                return Some(Self::key(bin));
            }
        }
        self.0.last().map(|&b| Self::key(b))
    }
}

/// A mergeable quantile sketch of bounded size; see the module documentation.
#[derive(Debug, Clone, Default)]
pub(in crate::store) struct Sketch {
    zeros: u64,
    positive: Bins,
    negative: Bins,
}

impl Sketch {
    pub fn add(&mut self, v: f64) {
        if v > MIN_MAGNITUDE {
            self.positive.add(key_of(v), 1);
        } else if v < -MIN_MAGNITUDE {
            self.negative.add(key_of(-v), 1);
        } else if !v.is_nan() {
            self.zeros += 1;
        }
    }

    /// Adds every value of `values`, about `len` of them: the same as `add` each, and for
    /// many faster (their keys are sorted and merged into the bins in one pass).
    pub fn add_all(&mut self, values: impl Iterator<Item = f64>, len: usize) {
        if len < BATCH_MIN {
            values.for_each(|v| self.add(v));
            return;
        }
        let (mut positive, mut negative) = (Vec::with_capacity(len), Vec::new());
        for v in values {
            if v > MIN_MAGNITUDE {
                positive.push(key_of(v));
            } else if v < -MIN_MAGNITUDE {
                negative.push(key_of(-v));
            } else if !v.is_nan() {
                self.zeros += 1;
            }
        }
        for (keys, bins) in [
            (positive, &mut self.positive),
            (negative, &mut self.negative),
        ] {
            match keys.len() {
                0 => {}
                n if n < BATCH_MIN => keys.into_iter().for_each(|k| bins.add(k, 1)),
                _ => bins.merge(&Bins::of_keys(keys)),
            }
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        self.zeros += other.zeros;
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.zeros + self.positive.total() + self.negative.total()
    }

    /// The value at quantile `q` (0..=1) by the lower rank `floor(q * (n - 1))`, as DDSketch
    /// answers; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let negatives = self.negative.total();
        let n = negatives + self.zeros + self.positive.total();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64) as u64;
        if rank < negatives {
            // Negative bins are sorted by magnitude: the most negative value is the last.
            let key = self.negative.key_at_rank(negatives - 1 - rank)?;
            Some(-value_of(key))
        } else if rank < negatives + self.zeros {
            Some(0.0)
        } else {
            let key = self.positive.key_at_rank(rank - negatives - self.zeros)?;
            Some(value_of(key))
        }
    }

    /// Heap bytes held by the bins, as allocated (what the store's memory budget counts).
    pub fn heap_bytes(&self) -> usize {
        allocation(self.positive.0.capacity() * size_of::<u64>())
            + allocation(self.negative.0.capacity() * size_of::<u64>())
    }

    /// An upper bound of `heap_bytes` after adding `n` more values, whatever they are.
    pub fn heap_bytes_after(&self, n: usize) -> usize {
        let grown = |bins: &Bins| {
            let cap = bins.0.capacity();
            if n == 0 {
                return cap;
            }
            // Each value adds at most one bin; growth doubles up to the bound.
            let mut want = cap;
            while want < (bins.0.len() + n).min(MAX_BINS + 1) {
                want = (want * 2).clamp(4, MAX_BINS + 1);
            }
            want
        };
        allocation(grown(&self.positive) * size_of::<u64>())
            + allocation(grown(&self.negative) * size_of::<u64>())
    }

    /// Appends the sketch's bytes to `out` (what `decode` reads back): the zero count, then
    /// each sign's bin count and bins, all little-endian. A bin is its packed `u64`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(8 + 2 * 4 + (self.positive.0.len() + self.negative.0.len()) * 8);
        out.extend_from_slice(&self.zeros.to_le_bytes());
        for bins in [&self.positive, &self.negative] {
            out.extend_from_slice(&(bins.0.len() as u32).to_le_bytes());
            for &bin in &bins.0 {
                out.extend_from_slice(&bin.to_le_bytes());
            }
        }
    }

    /// Reads a sketch `encode` wrote at the start of `bytes`; returns it and the rest.
    /// Anything else (truncated, unsorted keys, too many bins) is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<(Self, &[u8]), &'static str> {
        fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], &'static str> {
            let (head, rest) = bytes.split_first_chunk::<N>().ok_or("truncated sketch")?;
            *bytes = rest;
            Ok(*head)
        }
        let mut rest = bytes;
        let zeros = u64::from_le_bytes(take(&mut rest)?);
        let mut signs = [Bins::default(), Bins::default()];
        for bins in &mut signs {
            let n = u32::from_le_bytes(take(&mut rest)?) as usize;
            if n > MAX_BINS {
                return Err("a sketch with too many bins");
            }
            bins.0.reserve_exact(n);
            for _ in 0..n {
                let bin = u64::from_le_bytes(take(&mut rest)?);
                if bins
                    .0
                    .last()
                    .is_some_and(|&last| Bins::key(last) >= Bins::key(bin))
                {
                    return Err("a sketch with unsorted bins");
                }
                bins.0.push(bin);
            }
        }
        let [positive, negative] = signs;
        let sketch = Self {
            zeros,
            positive,
            negative,
        };
        Ok((sketch, rest))
    }

    /// Gives back growth slack once the sketch stops growing (its hour or day is over).
    pub fn shrink(&mut self) {
        self.positive.0.shrink_to_fit();
        self.negative.0.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests;
