//! Embedded in-process backend (placeholder until the bucketed store lands).
use std::time::Duration;

use async_trait::async_trait;

use super::{MetricStore, StoreError, StoreStats};
use crate::domain::{Aggregates, Metric, MetricType, TimeWindow, TypeInfo};

#[derive(Debug, Clone, Copy)]
pub struct MemoryStoreConfig {
    pub retention: Duration,
    pub max_points: u64,
}

pub struct MemoryStore {
    _config: MemoryStoreConfig,
}

impl MemoryStore {
    pub fn new(config: MemoryStoreConfig) -> Self {
        Self { _config: config }
    }
    pub fn evict_expired(&self) -> u64 {
        0
    }
}

#[async_trait]
impl MetricStore for MemoryStore {
    async fn insert_batch(&self, _metrics: Vec<Metric>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not implemented".into()))
    }
    async fn summarize(&self, _t: &MetricType, _w: TimeWindow) -> Result<Aggregates, StoreError> {
        Ok(Aggregates::default())
    }
    async fn recent(&self, _t: &MetricType, _l: usize) -> Result<Vec<Metric>, StoreError> {
        Ok(vec![])
    }
    async fn types(&self) -> Result<Vec<TypeInfo>, StoreError> {
        Ok(vec![])
    }
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}
