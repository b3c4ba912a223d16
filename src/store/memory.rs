//! Embedded in-process backend: bucketed columns with rolled-up aggregates and sketches.
//!
//! Layout, per metric type (`series`), with buckets aligned to UTC epoch boundaries:
//!
//! - **minute** buckets hold the raw points as two columns (`u32` microsecond offset from the
//!   minute's start + `f64` value: 12 bytes a point) and count/sum/min/max/first/latest;
//! - **hour** and **day** rollups hold the same aggregates plus a quantile sketch (`sketch`:
//!   0.8% relative accuracy, bounded size whatever the values). A sketch per minute would
//!   cost more than the points it describes, so minutes have none.
//!
//! A summary over `[from, to)` takes each day whose points all fall in the window, else its
//! hours, else their minutes (aggregates whole, values fed to the sketch), else the minute's
//! raw points one by one. That is O(days + hours + minutes) plus the raw points of at most
//! two partial hours. Timestamps are kept to the microsecond (finer digits are truncated).
//!
//! Eviction works on minute buckets. A `BTreeSet<(minute, type)>` orders every bucket by
//! age, so retention pops expired buckets and the point limit pops the globally oldest ones
//! in O(log n). A sketch cannot forget a value, so a rollup that loses points is marked
//! stale and summaries descend through it; it goes away with its last minute. The point
//! limit trims the last bucket it touches point by point; across types "oldest" means
//! oldest minute. A type disappears with its last point.
//!
//! One `RwLock` guards it all: summaries run in parallel, a batch is applied under one write
//! lock (grouped and sorted before taking it), and counters are atomics read lock-free.

mod bucket;
mod footprint;
mod idempotency;
mod series;
mod state;
mod summary;
#[cfg(test)]
mod tests;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use self::bucket::MINUTE_US;
use self::state::State;
use super::{Idempotent, MetricStore, Recorded, StoreError, StoreLimits, StoreStats};
use crate::domain::{
    Aggregates, Metric, MetricType, SeriesWindow, TimeWindow, TypeInfo, bound_micros,
};

/// Minute buckets evicted per write-lock hold by `evict_expired`, to keep readers flowing.
const EVICT_CHUNK: usize = 1024;

/// The source of "now"; injected so retention is testable without waiting.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct MemoryStoreConfig {
    /// Points older than `now - retention` are evicted by `evict_expired`.
    pub retention: Duration,
    /// The store never holds more points than this; the oldest go first.
    pub max_points: u64,
    /// The store never holds more bytes than this (`footprint`); the oldest points go first.
    pub max_bytes: u64,
    /// A write that would create a type past this many is refused whole.
    pub max_types: u64,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// Idempotency keys remembered at most (the oldest goes first past it).
    pub max_idempotency_keys: usize,
}

impl MemoryStoreConfig {
    /// Retention only: no point, byte or type limit (tests and benchmarks).
    pub fn unbounded(retention: Duration) -> Self {
        Self {
            retention,
            max_points: u64::MAX,
            max_bytes: u64::MAX,
            max_types: u64::MAX,
            idempotency_ttl: Duration::from_secs(86_400),
            max_idempotency_keys: 100_000,
        }
    }
}

pub struct MemoryStore {
    config: MemoryStoreConfig,
    clock: Clock,
    state: RwLock<State>,
    points: AtomicU64,
    types: AtomicU64,
    bytes: AtomicU64,
    keys: AtomicU64,
    evicted_retention: AtomicU64,
    evicted_capacity: AtomicU64,
    evicted_memory: AtomicU64,
    refused_type_limit: AtomicU64,
    /// One large write at a time in the store's lock; the others wait here, yielding
    /// their runtime worker instead of blocking it (`write.rs`).
    large_writes: tokio::sync::Semaphore,
}

impl MemoryStore {
    pub fn new(config: MemoryStoreConfig) -> Self {
        Self::with_clock(config, Arc::new(Utc::now))
    }

    pub fn with_clock(config: MemoryStoreConfig, clock: Clock) -> Self {
        Self {
            config,
            clock,
            state: RwLock::new(State::new(idempotency::Keys::new(
                config.max_idempotency_keys,
                i64::try_from(config.idempotency_ttl.as_micros()).unwrap_or(i64::MAX),
            ))),
            points: AtomicU64::new(0),
            types: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            evicted_retention: AtomicU64::new(0),
            evicted_capacity: AtomicU64::new(0),
            evicted_memory: AtomicU64::new(0),
            refused_type_limit: AtomicU64::new(0),
            large_writes: tokio::sync::Semaphore::new(1),
        }
    }

    /// Evicts every minute bucket that ends at or before `now - retention`; returns the
    /// number of points evicted. Called every second by a background task.
    pub fn evict_expired(&self) -> u64 {
        let retention = i64::try_from(self.config.retention.as_micros()).unwrap_or(i64::MAX);
        let horizon = (self.clock)().timestamp_micros().saturating_sub(retention);
        // Minute m ends at (m + 1) * MINUTE_US, which is <= horizon exactly when m < cutoff.
        let cutoff = horizon.div_euclid(MINUTE_US);
        let mut total = 0;
        loop {
            let mut state = self.state.write();
            let (evicted, done) = state.evict_before(cutoff, EVICT_CHUNK);
            state.keys.expire((self.clock)().timestamp_micros());
            total += evicted;
            self.evicted_retention.fetch_add(evicted, Ordering::Relaxed);
            self.publish(&state);
            if done {
                return total;
            }
        }
    }

    /// The running byte count, and the same recomputed from every structure.
    #[cfg(test)]
    fn bytes_and_recount(&self) -> (u64, u64) {
        let state = self.state.read();
        (state.bytes(), state.recount())
    }

    /// Mirrors the gauges into atomics; called with the write lock held so they never lag.
    fn publish(&self, state: &State) {
        self.points.store(state.points(), Ordering::Relaxed);
        self.types.store(state.type_count(), Ordering::Relaxed);
        self.bytes.store(state.bytes(), Ordering::Relaxed);
        self.keys.store(state.keys.len() as u64, Ordering::Relaxed);
    }

    /// Refuses a write that would create types past `max_types`, naming (some of) them.
    fn check_type_limit(
        &self,
        state: &State,
        groups: &[(MetricType, Vec<(i64, f64)>)],
    ) -> Result<(), StoreError> {
        let limit = self.config.max_types;
        let held = state.type_count();
        if held.saturating_add(groups.len() as u64) <= limit {
            return Ok(());
        }
        let new: Vec<MetricType> = groups
            .iter()
            .filter(|(name, _)| !state.contains(name))
            .map(|(name, _)| name.clone())
            .collect();
        if held.saturating_add(new.len() as u64) <= limit {
            return Ok(());
        }
        self.refused_type_limit.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::TypeLimit {
            limit,
            held,
            new_types: new,
        })
    }
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[async_trait]
impl MetricStore for MemoryStore {
    async fn insert_batch(&self, metrics: Vec<Metric>) -> Result<(), StoreError> {
        self.write(metrics, None).await.map(|_| ())
    }

    async fn insert_idempotent(
        &self,
        metrics: Vec<Metric>,
        idem: Idempotent,
    ) -> Result<Recorded, StoreError> {
        self.write(metrics, Some(idem)).await
    }

    async fn summarize(
        &self,
        metric_type: &MetricType,
        window: TimeWindow,
    ) -> Result<Aggregates, StoreError> {
        let from = window.from.map_or(i64::MIN, bound_micros);
        let to = window.to.map_or(i64::MAX, bound_micros);
        let state = self.state.read();
        Ok(state
            .series(metric_type)
            .map(|series| series.summarize(from, to))
            .unwrap_or_default())
    }

    async fn series(
        &self,
        metric_type: &MetricType,
        window: SeriesWindow,
    ) -> Result<Vec<Aggregates>, StoreError> {
        let (_, _, steps) = window.steps();
        let state = self.state.read();
        let Some(series) = state.series(metric_type) else {
            return Ok(vec![Aggregates::default(); steps]);
        };
        Ok((0..steps)
            .map(|i| {
                let w = window.step_window(i);
                let bound = |t: Option<DateTime<Utc>>| t.map_or(i64::MAX, bound_micros);
                series.summarize(bound(w.from), bound(w.to))
            })
            .collect())
    }

    async fn recent(
        &self,
        metric_type: &MetricType,
        limit: usize,
    ) -> Result<Vec<Metric>, StoreError> {
        let points = {
            let state = self.state.read();
            state
                .series(metric_type)
                .map(|series| series.recent(limit))
                .unwrap_or_default()
        };
        Ok(points
            .into_iter()
            .map(|(ts, value)| Metric {
                timestamp: from_micros(ts),
                value,
                metric_type: metric_type.clone(),
            })
            .collect())
    }

    async fn types_page(
        &self,
        after: Option<&MetricType>,
        limit: usize,
    ) -> Result<Vec<TypeInfo>, StoreError> {
        let state = self.state.read();
        Ok(state
            .all_after(after)
            .take(limit)
            .filter_map(|(name, series)| {
                Some(TypeInfo {
                    metric_type: name.clone(),
                    count: series.count(),
                    last_timestamp: from_micros(series.last_ts()?),
                })
            })
            .collect())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            points: self.points.load(Ordering::Relaxed),
            evicted_retention: self.evicted_retention.load(Ordering::Relaxed),
            evicted_capacity: self.evicted_capacity.load(Ordering::Relaxed),
            evicted_memory: self.evicted_memory.load(Ordering::Relaxed),
            types: self.types.load(Ordering::Relaxed),
            memory_bytes: self.bytes.load(Ordering::Relaxed),
            limits: Some(StoreLimits {
                max_points: self.config.max_points,
                max_bytes: self.config.max_bytes,
                max_types: self.config.max_types,
            }),
            refused_type_limit: self.refused_type_limit.load(Ordering::Relaxed),
            idempotency_keys: self.keys.load(Ordering::Relaxed),
        }
    }

    async fn newest_types(&self) -> Vec<(MetricType, DateTime<Utc>)> {
        let state = self.state.read();
        state
            .newest()
            .map(|(name, at)| (name.clone(), from_micros(*at)))
            .collect()
    }
}
