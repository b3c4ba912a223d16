//! A write to the embedded store: under one write lock, the idempotency key is looked up,
//! the type cap checked, room made for the most the write can add, the points stored and
//! the key recorded with its answer, so nothing is half done.
//!
//! A large write holds the lock for milliseconds (a thousand new types cost about 10 ms),
//! and a runtime worker that waits for the lock or holds it serves nothing else meanwhile:
//! with two workers, two large writes at once would stall every other request (a health
//! probe, a summary) until both are done. So large writes take the lock one at a time,
//! waiting their turn on an async semaphore that frees the worker, and at most one worker
//! is ever inside a large write. (Handing the write to `block_in_place` instead added
//! threads, and under the abuse suite's memory flood about 40 MiB of resident memory.)

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::MemoryStore;
use crate::domain::{Metric, MetricType};
use crate::store::{Idempotent, Recorded, StoreError};

/// Points from which a write waits its turn among large writes; a smaller one (a single
/// POST holds the lock for microseconds) goes straight to the lock.
const LARGE_WRITE_POINTS: usize = 256;

impl MemoryStore {
    pub(super) async fn write(
        &self,
        metrics: Vec<Metric>,
        idem: Option<Idempotent>,
    ) -> Result<Recorded, StoreError> {
        if metrics.len() < LARGE_WRITE_POINTS {
            return self.write_now(metrics, idem);
        }
        // Never closed, so acquiring cannot fail; if it did, writing unordered is safe.
        let _turn = self.large_writes.acquire().await.ok();
        self.write_now(metrics, idem)
    }

    fn write_now(
        &self,
        metrics: Vec<Metric>,
        idem: Option<Idempotent>,
    ) -> Result<Recorded, StoreError> {
        let groups = group_by_type(metrics);
        let incoming: u64 = groups.iter().map(|(_, points)| points.len() as u64).sum();
        let max = self.config.max_points;
        if incoming > max {
            return Err(StoreError::Unavailable(format!(
                "{incoming} points are more than the store holds ({max}, TALLY_MAX_POINTS)"
            )));
        }
        let now = (self.clock)().timestamp_micros();
        let mut state = self.state.write();
        if let Some(idem) = &idem
            && let Some((fingerprint, answer)) = state.keys.get(&idem.key, now)
        {
            return Ok(if *fingerprint == idem.fingerprint {
                Recorded::Replay(answer.clone())
            } else {
                Recorded::Mismatch
            });
        }
        self.check_type_limit(&state, &groups)?;
        let mut bound = state.growth_bound(&groups);
        if let Some(idem) = &idem {
            bound += state.keys.growth_bound(&idem.key, &idem.response) as u64;
        }
        let max_bytes = self.config.max_bytes;
        if bound > max_bytes {
            return Err(StoreError::Unavailable(format!(
                "this write needs up to {bound} bytes, more than the store holds \
                 ({max_bytes}, TALLY_MAX_MEMORY)"
            )));
        }
        // Room first, then the write: evicting after it would drop a new
        // point older than everything held as soon as it was acknowledged.
        let evicted = state.evict_to_capacity(max - incoming);
        let evicted_memory = state.evict_to_bytes(max_bytes - bound);
        for (name, points) in groups {
            state.insert(name, &points, now);
        }
        if let Some(idem) = idem {
            state
                .keys
                .record(idem.key, idem.fingerprint, idem.response, now);
        }
        debug_assert!(state.bytes() <= max_bytes, "the growth bound held");
        self.evicted_capacity.fetch_add(evicted, Ordering::Relaxed);
        self.evicted_memory
            .fetch_add(evicted_memory, Ordering::Relaxed);
        self.publish(&state);
        Ok(Recorded::Stored)
    }
}

/// Splits a batch by type into `(µs timestamp, value)` columns sorted by time; the sort is
/// stable, so equal timestamps keep their arrival order (which decides `latest`).
fn group_by_type(metrics: Vec<Metric>) -> Vec<(MetricType, Vec<(i64, f64)>)> {
    let mut groups: Vec<(MetricType, Vec<(i64, f64)>)> = Vec::new();
    let mut index: HashMap<MetricType, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    for metric in metrics {
        // Values are validated finite upstream; a stray one must not poison every sum.
        if !metric.value.is_finite() {
            continue;
        }
        let point = (metric.timestamp.timestamp_micros(), metric.value);
        let same = current.filter(|&i| groups[i].0 == metric.metric_type);
        let i = match same.or_else(|| index.get(&metric.metric_type).copied()) {
            Some(i) => i,
            None => {
                index.insert(metric.metric_type.clone(), groups.len());
                groups.push((metric.metric_type, Vec::new()));
                groups.len() - 1
            }
        };
        groups[i].1.push(point);
        current = Some(i);
    }
    for (_, points) in &mut groups {
        if !points.is_sorted_by_key(|p| p.0) {
            points.sort_by_key(|p| p.0);
        }
    }
    groups
}
