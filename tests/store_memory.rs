//! Resident memory of the embedded store against the memory budget's own count
//! (`TALLY_MAX_MEMORY`): the count is what the process really holds.
//!
//! Each scenario runs in a fresh process (this test binary runs itself again with one
//! scenario named in `FOOTPRINT_SCENARIO`), so what one frees cannot hide what the next
//! allocates. The allocator is the binary's own (mimalloc).

use std::f64::consts::TAU;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tally::domain::{Metric, MetricType};
use tally::store::{MemoryStore, MemoryStoreConfig, MetricStore};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WEEK_MS: i64 = 7 * 86_400_000;
const BATCH: usize = 10_000;
/// The count may be above the real growth (it rounds up), never far below it: resident
/// growth is at most 5% over the count plus a fixed 16 MiB (the allocator's own arenas and
/// code run for the first time, measured at 4 to 11 MiB whatever the number of points).
const MAX_RSS_OVER_COUNT: f64 = 1.05;
const FIXED_OVERHEAD: f64 = 16.0 * 1024.0 * 1024.0;
const MAX_COUNT_OVER_RSS: f64 = 1.25;

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

fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_748_781_296_789).unwrap()
}

/// `points` points over the week before `now`, round-robin over `types` types, with a
/// daily cycle plus noise (every value distinct, as real gauges are).
fn points(types: usize, points: usize) -> impl Iterator<Item = Metric> {
    let names: Vec<MetricType> = (0..types)
        .map(|i| MetricType::parse(&format!("service-{i:06}.latency_ms")).unwrap())
        .collect();
    let start = now() - chrono::Duration::milliseconds(WEEK_MS);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    (0..points).map(move |i| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let noise = (seed >> 11) as f64 / (1u64 << 53) as f64;
        let offset = i as i64 * WEEK_MS / points as i64;
        Metric {
            timestamp: start + chrono::Duration::milliseconds(offset),
            value: 50.0 + 30.0 * (offset as f64 / 86_400_000.0 * TAU).sin() + 10.0 * noise,
            metric_type: names[i % types].clone(),
        }
    })
}

/// Stores the scenario's points, then reports (points, count of bytes, RSS growth).
async fn run(types: usize, n: usize) -> (u64, u64, u64) {
    let config = MemoryStoreConfig {
        max_points: 100_000_000,
        max_types: 1_000_000,
        ..MemoryStoreConfig::unbounded(Duration::from_secs(8 * 86_400))
    };
    let store = MemoryStore::with_clock(config, Arc::new(now));
    let mut source = points(types, n);
    // One batch's worth made and dropped first: the batches reuse that memory, so what
    // grows from here on is the store.
    drop(source.by_ref().take(0).collect::<Vec<_>>());
    drop(points(types, BATCH).collect::<Vec<_>>());
    let before = rss_bytes();
    loop {
        let batch: Vec<Metric> = source.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        store.insert_batch(batch).await.unwrap();
    }
    let after = rss_bytes();
    let stats = store.stats();
    let result = (
        stats.points,
        stats.memory_bytes,
        after.saturating_sub(before),
    );
    std::mem::forget(store); // dropping it is not what is measured
    result
}

fn scenario(name: &str) -> Option<(usize, usize)> {
    match name {
        "one_type" => Some((1, 1_000_000)),
        "ten_types" => Some((10, 1_000_000)),
        "many_types" => Some((100_000, 1_000_000)),
        _ => None,
    }
}

/// The child: one scenario, its figures on stdout.
#[tokio::test]
async fn footprint_scenario() {
    let Ok(name) = std::env::var("FOOTPRINT_SCENARIO") else {
        return; // only ever run as the child of `the_count_is_what_the_process_holds`
    };
    let (types, n) = scenario(&name).expect("a known scenario");
    let (points, counted, rss) = run(types, n).await;
    println!("FOOTPRINT {points} {counted} {rss}");
}

#[test]
fn the_count_is_what_the_process_holds() {
    let exe = std::env::current_exe().unwrap();
    for name in ["one_type", "ten_types", "many_types"] {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "footprint_scenario",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FOOTPRINT_SCENARIO", name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("FOOTPRINT ").map(|(_, figures)| figures))
            .unwrap_or_else(|| panic!("{name}: no figures in {stdout}"));
        let [points, counted, rss]: [u64; 3] = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let (types, n) = scenario(name).unwrap();
        assert_eq!(points, n as u64);
        println!(
            "{name} ({types} types, {n} points): counted {:.1} B/point, resident {:.1} B/point ({:.2}x)",
            counted as f64 / n as f64,
            rss as f64 / n as f64,
            rss as f64 / counted as f64
        );
        assert!(
            rss as f64 <= counted as f64 * MAX_RSS_OVER_COUNT + FIXED_OVERHEAD,
            "{name}: resident growth {rss} is more than the count {counted} allows"
        );
        assert!(
            counted as f64 <= rss as f64 * MAX_COUNT_OVER_RSS,
            "{name}: the count {counted} is far above the resident growth {rss}"
        );
    }
}
