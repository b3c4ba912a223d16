//! A store that wraps the embedded one and can be told to fail or to be slow,
//! and counts the summaries it computes and the listings it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tally::domain::{Aggregates, Metric, MetricType, TimeWindow, TypeInfo};
use tally::store::{MemoryStore, MemoryStoreConfig, MetricStore, StoreError, StoreStats};

pub struct FaultyStore {
    inner: MemoryStore,
    pub failing: AtomicBool,
    pub summary_delay_ms: AtomicU64,
    pub summaries: AtomicU64,
    pub listings: AtomicU64,
    pub insert_delay_ms: AtomicU64,
}

impl FaultyStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(MemoryStoreConfig {
                max_points: 1_000_000,
                ..MemoryStoreConfig::unbounded(Duration::from_secs(7 * 86_400))
            }),
            failing: AtomicBool::new(false),
            summary_delay_ms: AtomicU64::new(0),
            summaries: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            insert_delay_ms: AtomicU64::new(0),
        })
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.summary_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn summaries(&self) -> u64 {
        self.summaries.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl MetricStore for FaultyStore {
    async fn insert_batch(&self, metrics: Vec<Metric>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert_batch(metrics).await
    }

    async fn insert_idempotent(
        &self,
        metrics: Vec<Metric>,
        idem: tally::store::Idempotent,
    ) -> Result<tally::store::Recorded, StoreError> {
        let delay = self.insert_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.check()?;
        self.inner.insert_idempotent(metrics, idem).await
    }

    async fn summarize(&self, t: &MetricType, w: TimeWindow) -> Result<Aggregates, StoreError> {
        self.summaries.fetch_add(1, Ordering::SeqCst);
        let delay = self.summary_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.check()?;
        self.inner.summarize(t, w).await
    }

    async fn recent(&self, t: &MetricType, limit: usize) -> Result<Vec<Metric>, StoreError> {
        self.check()?;
        self.inner.recent(t, limit).await
    }

    async fn types_page(
        &self,
        after: Option<&MetricType>,
        limit: usize,
    ) -> Result<Vec<TypeInfo>, StoreError> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.types_page(after, limit).await
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }

    async fn newest_types(&self) -> Vec<(MetricType, chrono::DateTime<chrono::Utc>)> {
        self.inner.newest_types().await
    }
}
