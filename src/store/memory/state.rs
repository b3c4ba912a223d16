//! Everything behind the store's lock: the series by type and the global age index.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::bucket::{DAY_US, HOUR_US, MINUTE_US};
use super::footprint::{AGE_KV, MINUTE_KV, NAME_KV, ROLLUP_KV, btree, btree_growth, name_bytes};
use super::idempotency::Keys;
use super::series::Series;
use crate::domain::MetricType;

/// Newest types remembered for the dashboard.
pub(super) const NEWEST_KEPT: usize = 10;

mod evict;

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

    fn series_bytes(&self, id: TypeId) -> usize {
        self.slot(id).map_or(0, |s| s.series.bytes())
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
