//! Everything behind the store's lock: the series by type and the global age index.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::bucket::{DAY_US, HOUR_US, MINUTE_US};
use super::footprint::{AGE_KV, MINUTE_KV, NAME_KV, ROLLUP_KV, btree, btree_growth, name_bytes};
use super::idempotency::Keys;
use super::series::Series;
use crate::domain::MetricType;

/// Newest types remembered for the dashboard.
pub(super) const NEWEST_KEPT: usize = 10;

type TypeId = u32;

struct Slot {
    name: MetricType,
    series: Series,
}

/// Invariant: `oldest` holds exactly one `(minute, type)` entry per stored minute bucket.
pub(super) struct State {
    ids: BTreeMap<MetricType, TypeId>,
    /// Indexed by `TypeId`; freed ids are reused.
    slots: Vec<Option<Slot>>,
    free: Vec<TypeId>,
    /// Minute buckets ordered by age across all types, so the globally oldest is
    /// found in O(log n) whatever the number of types.
    oldest: BTreeSet<(i64, TypeId)>,
    points: u64,
    /// Bytes held by the types' names and series (`footprint`), kept as they change.
    bytes: usize,
    /// The types created last, newest first, with when (µs since the epoch).
    newest: VecDeque<(MetricType, i64)>,
    /// Idempotency keys with their answers (counted in `bytes()`).
    pub keys: Keys,
}

impl State {
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            ids: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            oldest: BTreeSet::new(),
            points: 0,
            bytes: 0,
            newest: VecDeque::with_capacity(NEWEST_KEPT + 1),
        }
    }

    /// Bytes the store holds, by the `footprint` model.
    pub fn bytes(&self) -> u64 {
        (self.bytes + self.index_bytes() + self.keys.bytes()) as u64
    }

    /// The slots and the two indexes.
    fn index_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Option<Slot>>()
            + self.free.capacity() * size_of::<TypeId>()
            + btree(self.ids.len(), NAME_KV)
            + btree(self.oldest.len(), AGE_KV)
    }

    pub fn contains(&self, name: &MetricType) -> bool {
        self.ids.contains_key(name)
    }

    /// The types created last that still hold points, newest first.
    pub fn newest(&self) -> impl Iterator<Item = &(MetricType, i64)> {
        self.newest
            .iter()
            .filter(|(name, _)| self.ids.contains_key(name))
    }

    /// At most the bytes storing `groups` adds: every type and bucket counted as new unless
    /// growing the existing one costs more (eviction may drop it before the write).
    pub fn growth_bound(&self, groups: &[(MetricType, Vec<(i64, f64)>)]) -> u64 {
        let empty = Series::new();
        let mut bound = 0;
        let mut minutes = 0;
        for (name, points) in groups {
            let series = self.series(name).unwrap_or(&empty);
            bound += name_bytes(name);
            let minute_of = |p: &(i64, f64)| p.0.div_euclid(MINUTE_US);
            let runs = points.chunk_by(|a, b| minute_of(a) == minute_of(b));
            let mut new = 0;
            for run in runs {
                bound += series.minute_growth(minute_of(&run[0]), run.len());
                new += 1;
            }
            bound += btree_growth(new, MINUTE_KV);
            minutes += new;
            for (unit, day) in [(HOUR_US, false), (DAY_US, true)] {
                let of = |p: &(i64, f64)| p.0.div_euclid(unit);
                let mut new = 0;
                for run in points.chunk_by(|a, b| of(a) == of(b)) {
                    bound += series.rollup_growth(of(&run[0]), day, run.len());
                    new += 1;
                }
                bound += btree_growth(new, ROLLUP_KV);
            }
        }
        bound += btree_growth(groups.len(), NAME_KV) + btree_growth(minutes, AGE_KV);
        // The slot vector may double.
        bound += (self.slots.capacity() + groups.len()).max(4) * size_of::<Option<Slot>>();
        bound as u64
    }

    pub fn points(&self) -> u64 {
        self.points
    }

    pub fn type_count(&self) -> u64 {
        self.ids.len() as u64
    }

    pub fn series(&self, name: &MetricType) -> Option<&Series> {
        let id = *self.ids.get(name)?;
        self.slot(id).map(|s| &s.series)
    }

    /// The types after `after` (all, without it) in name order, with their series.
    pub fn all_after(
        &self,
        after: Option<&MetricType>,
    ) -> impl Iterator<Item = (&MetricType, &Series)> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, Excluded);
        self.ids
            .range::<MetricType, _>((from, Unbounded))
            .filter_map(|(_, &id)| self.slot(id))
            .map(|s| (&s.name, &s.series))
    }

    /// Stores `points` (sorted by timestamp, which is microseconds) under `name`; `now` (µs)
    /// stamps a type created here.
    pub fn insert(&mut self, name: MetricType, points: &[(i64, f64)], now: i64) {
        if points.is_empty() {
            return;
        }
        let id = self.id_for(name, now);
        let Some(Some(slot)) = self.slots.get_mut(id as usize) else {
            return;
        };
        let before = slot.series.bytes();
        let minute_of = |p: &(i64, f64)| p.0.div_euclid(MINUTE_US);
        for run in points.chunk_by(|a, b| minute_of(a) == minute_of(b)) {
            let minute = minute_of(&run[0]);
            if slot.series.insert_run(minute, run) {
                self.oldest.insert((minute, id));
            }
        }
        self.bytes = self.bytes + slot.series.bytes() - before;
        self.points += points.len() as u64;
    }

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

    fn series_bytes(&self, id: TypeId) -> usize {
        self.slot(id).map_or(0, |s| s.series.bytes())
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

    fn slot(&self, id: TypeId) -> Option<&Slot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn series_mut(&mut self, id: TypeId) -> Option<&mut Series> {
        self.slots
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .map(|s| &mut s.series)
    }

    fn id_for(&mut self, name: MetricType, now: i64) -> TypeId {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        self.bytes += name_bytes(&name);
        self.newest.retain(|(kept, _)| *kept != name);
        self.newest.push_front((name.clone(), now));
        self.newest.truncate(NEWEST_KEPT);
        let slot = Some(Slot {
            name: name.clone(),
            series: Series::new(),
        });
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as TypeId
            }
        };
        self.ids.insert(name, id);
        id
    }

    fn drop_if_empty(&mut self, id: TypeId) {
        let Some(entry) = self.slots.get_mut(id as usize) else {
            return;
        };
        if entry.as_ref().is_none_or(|s| s.series.count() > 0) {
            return;
        }
        if let Some(slot) = entry.take() {
            self.bytes -= name_bytes(&slot.name) + slot.series.bytes();
            self.ids.remove(&slot.name);
            self.free.push(id);
        }
    }

    /// `bytes()` recomputed from every structure, to check the running count against.
    #[cfg(test)]
    pub fn recount(&self) -> u64 {
        let mut bytes = 0;
        for slot in self.slots.iter().flatten() {
            let series = &slot.series;
            bytes += name_bytes(&slot.name);
            bytes += btree(series.minutes.len(), MINUTE_KV)
                + btree(series.hours.len(), ROLLUP_KV)
                + btree(series.days.len(), ROLLUP_KV);
            bytes += series
                .minutes
                .values()
                .map(|m| m.heap_bytes())
                .sum::<usize>();
            bytes += [&series.hours, &series.days]
                .iter()
                .flat_map(|map| map.values())
                .map(|r| r.heap_bytes())
                .sum::<usize>();
        }
        (bytes + self.index_bytes() + self.keys.bytes()) as u64
    }
}
