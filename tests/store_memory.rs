//! Resident memory of the embedded store: at most 32 bytes per stored point.
//!
//! Its own test binary with a single test, so nothing else allocates while RSS is read.

use std::f64::consts::TAU;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tally::domain::{Metric, MetricType};
use tally::store::{MemoryStore, MemoryStoreConfig, MetricStore};

const POINTS: i64 = 1_000_000;
const BATCH: i64 = 10_000;
const WEEK_MS: i64 = 7 * 86_400_000;
const MAX_BYTES_PER_POINT: f64 = 32.0;

/// Resident set size from /proc/self/statm (pages) times the kernel page size.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * page_size()
}

fn page_size() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    smaps
        .lines()
        .find_map(|l| l.strip_prefix("KernelPageSize:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(4096, |kb| kb * 1024)
}

#[tokio::test]
async fn a_million_points_take_at_most_32_bytes_each() {
    let now: DateTime<Utc> = Utc.timestamp_millis_opt(1_748_781_296_789).unwrap();
    let config = MemoryStoreConfig {
        max_points: 10_000_000,
        ..MemoryStoreConfig::unbounded(Duration::from_secs(8 * 86_400))
    };
    let store = MemoryStore::with_clock(config, Arc::new(move || now));
    let name = MetricType::parse("cpu.load").unwrap();
    let start = now - chrono::Duration::milliseconds(WEEK_MS);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;

    let before = rss_bytes();
    for first in (0..POINTS).step_by(BATCH as usize) {
        let batch = (first..first + BATCH).map(|i| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let offset = i * WEEK_MS / POINTS;
            Metric {
                timestamp: start + chrono::Duration::milliseconds(offset),
                // A daily cycle with noise: every value distinct, as real gauges are.
                value: 0.55 + 0.3 * (offset as f64 / 86_400_000.0 * TAU).sin() + 0.1 * noise,
                metric_type: name.clone(),
            }
        });
        store.insert_batch(batch.collect()).await.unwrap();
    }
    let after = rss_bytes();

    assert_eq!(store.stats().points, POINTS as u64);
    let per_point = after.saturating_sub(before) as f64 / POINTS as f64;
    println!("resident memory: {per_point:.2} bytes per point ({before} -> {after} bytes)");
    assert!(
        per_point <= MAX_BYTES_PER_POINT,
        "{per_point:.2} bytes per point"
    );
    drop(store);
}
