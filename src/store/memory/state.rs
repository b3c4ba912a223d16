//! Everything behind the store's lock: the series by type and the global age index.

use std::collections::{BTreeMap, BTreeSet};

use super::bucket::MINUTE_US;
use super::series::Series;
use crate::domain::MetricType;

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
}

impl State {
    pub fn new() -> Self {
        Self {
            ids: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            oldest: BTreeSet::new(),
            points: 0,
        }
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

    /// Every type in name order with its series.
    pub fn all(&self) -> impl Iterator<Item = (&MetricType, &Series)> {
        self.ids
            .values()
            .filter_map(|&id| self.slot(id))
            .map(|s| (&s.name, &s.series))
    }

    /// Stores `points` (sorted by timestamp, which is microseconds) under `name`.
    pub fn insert(&mut self, name: MetricType, points: &[(i64, f64)]) {
        if points.is_empty() {
            return;
        }
        let id = self.id_for(name);
        let Some(Some(slot)) = self.slots.get_mut(id as usize) else {
            return;
        };
        let minute_of = |p: &(i64, f64)| p.0.div_euclid(MINUTE_US);
        for run in points.chunk_by(|a, b| minute_of(a) == minute_of(b)) {
            let minute = minute_of(&run[0]);
            if slot.series.insert_run(minute, run) {
                self.oldest.insert((minute, id));
            }
        }
        self.points += points.len() as u64;
    }

    /// Evicts the globally oldest points until at most `max_points` remain. Whole minute
    /// buckets go first; the last one is trimmed point by point so no more than needed is lost.
    pub fn evict_to_capacity(&mut self, max_points: u64) -> u64 {
        let mut evicted = 0;
        while self.points > max_points {
            let Some(&(minute, id)) = self.oldest.first() else {
                break;
            };
            let need = self.points - max_points;
            let Some(series) = self.series_mut(id) else {
                self.oldest.remove(&(minute, id));
                continue;
            };
            let n = if series.minute_len(minute) <= need {
                let n = series.remove_minute(minute);
                self.oldest.remove(&(minute, id));
                n
            } else {
                series.evict_oldest_points(minute, need)
            };
            self.points -= n;
            evicted += n;
            self.drop_if_empty(id);
        }
        evicted
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
            if let Some(series) = self.series_mut(id) {
                let n = series.remove_minute(minute);
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

    fn id_for(&mut self, name: MetricType) -> TypeId {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
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
            self.ids.remove(&slot.name);
            self.free.push(id);
        }
    }
}
