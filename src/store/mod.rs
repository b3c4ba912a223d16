//! The metric repository: the `MetricStore` trait every backend implements.
//!
//! Handlers only ever see `Arc<dyn MetricStore>`; the embedded backend lives in
//! `memory`, and a database backend can follow without touching a handler.

mod in_flight;
mod memory;
pub mod postgres;
mod rollup;

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use crate::domain::{
    Aggregates, IdempotencyKey, Metric, MetricType, SeriesWindow, TimeWindow, TypeInfo,
};

pub use in_flight::KeysInFlight;
pub use memory::{MemoryStore, MemoryStoreConfig};
pub use postgres::PostgresStore;

/// Errors a backend may report.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot take or answer this right now; a retry may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The write would create types past the cap (`TALLY_MAX_TYPES`); nothing was stored.
    /// A retry succeeds only once types have gone (their points evicted).
    #[error(
        "the store holds {held} of at most {limit} metric types (TALLY_MAX_TYPES); \
         this write would add {} more", new_types.len()
    )]
    TypeLimit {
        limit: u64,
        held: u64,
        /// The types the write would have created.
        new_types: Vec<MetricType>,
    },
}

/// A write with an `Idempotency-Key`: stored at most once per key for the key's lifetime.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub key: IdempotencyKey,
    /// A digest of the request (method, path and body): the same key with another
    /// request is refused.
    pub fingerprint: [u8; 32],
    /// The answer to keep with the key and give again to a retry (a 201's body).
    pub response: bytes::Bytes,
}

/// What became of an idempotent write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now, with its key and answer.
    Stored,
    /// The key was used before by the same request: nothing stored, its answer again.
    Replay(bytes::Bytes),
    /// The key was used before by another request: nothing stored.
    Mismatch,
}

/// Counters describing what the store holds and has dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Points currently stored.
    pub points: u64,
    /// Points dropped because they fell out of retention.
    pub evicted_retention: u64,
    /// Points dropped to stay under the point limit.
    pub evicted_capacity: u64,
    /// Points dropped to stay under the memory budget.
    pub evicted_memory: u64,
    /// Distinct types currently stored.
    pub types: u64,
    /// Bytes the store holds by its own estimate (0 for a store that keeps nothing in memory).
    pub memory_bytes: u64,
    /// The limits the store enforces; `None` for a store without them (PostgreSQL).
    pub limits: Option<StoreLimits>,
    /// Writes refused because they would have created types past the cap.
    pub refused_type_limit: u64,
    /// Idempotency keys remembered (the embedded store; 0 for a store that keeps them
    /// elsewhere).
    pub idempotency_keys: u64,
}

/// What the embedded store holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    pub max_points: u64,
    pub max_bytes: u64,
    pub max_types: u64,
}

#[async_trait]
pub trait MetricStore: Send + Sync + 'static {
    /// Stores every metric or none. Timestamps are already validated.
    async fn insert_batch(&self, metrics: Vec<Metric>) -> Result<(), StoreError>;

    /// Stores every metric or none, at most once per `idem.key` for the keys' lifetime
    /// (`IDEMPOTENCY_TTL`): the key and its answer are recorded with the metrics, in one
    /// step, so a crash between the two cannot happen.
    async fn insert_idempotent(
        &self,
        metrics: Vec<Metric>,
        idem: Idempotent,
    ) -> Result<Recorded, StoreError>;

    /// Aggregates of `metric_type` over `window`.
    async fn summarize(
        &self,
        metric_type: &MetricType,
        window: TimeWindow,
    ) -> Result<Aggregates, StoreError>;

    /// Aggregates of `metric_type` over each step of `window`, oldest first: each equal to
    /// what `summarize` answers for that step's interval. This default asks `summarize`
    /// once a step; the stores answer from their buckets in one pass.
    async fn series(
        &self,
        metric_type: &MetricType,
        window: SeriesWindow,
    ) -> Result<Vec<Aggregates>, StoreError> {
        let (_, _, steps) = window.steps();
        let mut out = Vec::with_capacity(steps);
        for i in 0..steps {
            out.push(self.summarize(metric_type, window.step_window(i)).await?);
        }
        Ok(out)
    }

    /// The newest `limit` points of `metric_type`, newest first.
    async fn recent(
        &self,
        metric_type: &MetricType,
        limit: usize,
    ) -> Result<Vec<Metric>, StoreError>;

    /// Up to `limit` stored types after `after` (exclusive), with their point counts and
    /// last timestamps, sorted by name in byte order: a page of the listing.
    async fn types_page(
        &self,
        after: Option<&MetricType>,
        limit: usize,
    ) -> Result<Vec<TypeInfo>, StoreError>;

    /// Every stored type, page by page (tests and tools: a request pages with `types_page`,
    /// so its work never grows with the number of types).
    async fn types(&self) -> Result<Vec<TypeInfo>, StoreError> {
        const PAGE: usize = 1_000;
        let mut all: Vec<TypeInfo> = Vec::new();
        loop {
            let after = all.last().map(|t| t.metric_type.clone());
            let page = self.types_page(after.as_ref(), PAGE).await?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Current counters (cheap; called by health and telemetry).
    fn stats(&self) -> StoreStats;

    /// The types created last that still hold points, newest first (the embedded store
    /// remembers a few for the dashboard; others answer none).
    async fn newest_types(&self) -> Vec<(MetricType, DateTime<Utc>)> {
        Vec::new()
    }

    /// Whether the store can take traffic at all (a database backend: once
    /// its schema is prepared at startup). `/ready` answers 503 until then.
    fn prepared(&self) -> bool {
        true
    }

    /// Whether the database behind the store answers; `None` for a store
    /// without one (the embedded store).
    fn database_up(&self) -> Option<bool> {
        None
    }
}
