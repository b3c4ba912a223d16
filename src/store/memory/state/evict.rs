//! Eviction: the globally oldest points go first, by bytes (`TALLY_MAX_MEMORY`), by count
//! (`TALLY_MAX_POINTS`) or by age (retention).

use super::{Slot, State};
use crate::store::memory::series::Series;

impl State {
    /// Evicts the globally oldest points until the store holds at most `max_bytes`. Whole
    /// minute buckets go first; the last one is trimmed to what frees enough.
    pub fn evict_to_bytes(&mut self, max_bytes: u64) -> u64 {
        let mut evicted = 0;
        while self.bytes() > max_bytes {
            let need = (self.bytes() - max_bytes) as usize;
            let trim = |series: &Series, minute: i64| {
                let len = series.minute_len(minute);
                // Twelve bytes a point, and a little more so one pass is enough.
                (series.minute_bytes(minute) > need && len > 1)
                    .then(|| (need as u64 / 12 + 1).min(len - 1))
            };
            match self.evict_oldest_bucket(trim) {
                Some(n) => evicted += n,
                None => break,
            }
        }
        evicted
    }

    /// Evicts the globally oldest points until at most `max_points` remain. Whole minute
    /// buckets go first; the last one is trimmed point by point so no more than needed is lost.
    pub fn evict_to_capacity(&mut self, max_points: u64) -> u64 {
        let mut evicted = 0;
        while self.points > max_points {
            let need = self.points - max_points;
            let trim =
                |series: &Series, minute: i64| (series.minute_len(minute) > need).then_some(need);
            match self.evict_oldest_bucket(trim) {
                Some(n) => evicted += n,
                None => break,
            }
        }
        evicted
    }

    /// Evicts from the globally oldest minute bucket: all of it when `trim` says `None`,
    /// else that many of its oldest points. The points evicted; `None` when none are held.
    fn evict_oldest_bucket(
        &mut self,
        trim: impl FnOnce(&Series, i64) -> Option<u64>,
    ) -> Option<u64> {
        let &(minute, id) = self.oldest.first()?;
        let before = self.series_bytes(id);
        // The slot's field, not `series_mut`: `oldest` is borrowed beside it.
        let Some(Some(Slot { series, .. })) = self.slots.get_mut(id as usize) else {
            self.oldest.remove(&(minute, id));
            return Some(0);
        };
        let n = match trim(series, minute) {
            Some(k) => series.evict_oldest_points(minute, k),
            None => {
                self.oldest.remove(&(minute, id));
                series.remove_minute(minute)
            }
        };
        let after = series.bytes();
        self.bytes = self.bytes + after - before;
        self.points -= n;
        self.drop_if_empty(id);
        Some(n)
    }

    /// Evicts up to `budget` minute buckets older than `cutoff` (a minute index).
    /// Returns the points evicted and whether nothing older than `cutoff` is left.
    pub fn evict_before(&mut self, cutoff: i64, budget: usize) -> (u64, bool) {
        let mut evicted = 0;
        for _ in 0..budget {
            let Some(&(minute, id)) = self.oldest.first() else {
                return (evicted, true);
            };
            if minute >= cutoff {
                return (evicted, true);
            }
            self.oldest.remove(&(minute, id));
            let before = self.series_bytes(id);
            if let Some(series) = self.series_mut(id) {
                let n = series.remove_minute(minute);
                let after = series.bytes();
                self.bytes = self.bytes + after - before;
                self.points -= n;
                evicted += n;
            }
            self.drop_if_empty(id);
        }
        let done = self.oldest.first().is_none_or(|&(m, _)| m >= cutoff);
        (evicted, done)
    }
}
