//! Embedded store benchmarks: summaries and series over a week of points, and bulk inserts.
//!
//! Run with `cargo bench --bench store`. Targets: each summary and series under 1 ms, and
//! inserting 1,000,000 points in batches of 10,000 under 1 s on one core.

use std::f64::consts::TAU;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tally::domain::{Metric, MetricType, SeriesWindow, TimeWindow};
use tally::store::{MemoryStore, MemoryStoreConfig, MetricStore};
use tokio::runtime::Runtime;

const POINTS: usize = 1_000_000;
const BATCH: usize = 10_000;
const WEEK_MS: i64 = 7 * 86_400_000;

/// A fixed "now", off every minute/hour/day boundary so windows cut through buckets.
fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_748_781_296_789)
        .single()
        .unwrap_or_default()
}

fn store(retention: Duration) -> MemoryStore {
    let config = MemoryStoreConfig {
        max_points: 10_000_000,
        ..MemoryStoreConfig::unbounded(retention)
    };
    MemoryStore::with_clock(config, Arc::new(now))
}

/// `POINTS` points spread evenly over the `span_ms` before `now`, round-robin over `types`,
/// with a daily cycle plus deterministic jitter, cut into batches of `BATCH`.
fn batches(types: usize, span_ms: i64) -> Vec<Vec<Metric>> {
    let names: Vec<MetricType> = (0..types)
        .map(|i| MetricType::parse(&format!("bench.type{i}")).unwrap())
        .collect();
    let start = now() - chrono::Duration::milliseconds(span_ms);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let points = (0..POINTS).map(|i| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let jitter = (seed >> 11) as f64 / (1u64 << 53) as f64;
        let offset = i as i64 * span_ms / POINTS as i64;
        Metric {
            timestamp: start + chrono::Duration::milliseconds(offset),
            value: 200.0 + 80.0 * (offset as f64 / 86_400_000.0 * TAU).sin() + 40.0 * jitter,
            metric_type: names[i % types].clone(),
        }
    });
    let points: Vec<Metric> = points.collect();
    points.chunks(BATCH).map(<[Metric]>::to_vec).collect()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// One type holding `POINTS` points over `span_ms`, after a retention pass.
fn loaded(rt: &Runtime, span_ms: i64, retention: Duration) -> MemoryStore {
    let store = store(retention);
    for batch in batches(1, span_ms) {
        rt.block_on(store.insert_batch(batch)).unwrap();
    }
    store.evict_expired();
    store
}

fn summaries(c: &mut Criterion) {
    let rt = runtime();
    let week = Duration::from_secs(7 * 86_400);
    let fresh = loaded(&rt, WEEK_MS, week + Duration::from_secs(86_400));
    // The steady state: an hour more than retention was written and then evicted, so the
    // oldest hour and day are stale and summaries descend through them.
    let hour_ms = 3_600_000;
    let evicted = loaded(&rt, WEEK_MS + hour_ms, week);
    let name = MetricType::parse("bench.type0").unwrap();
    let minutes = chrono::Duration::minutes;
    // Worst case for raw scans: each edge 30 s inside an hour, so 59 whole minutes and one
    // partial minute are read point by point at both ends.
    let start_ms = (now() - chrono::Duration::days(6)).timestamp_millis();
    let hour = Utc
        .timestamp_millis_opt(start_ms - start_ms.rem_euclid(hour_ms))
        .single()
        .unwrap_or_default();
    let week_ago = now() - chrono::Duration::days(7);
    let cases = [
        ("period=all", &fresh, WEEK_MS, week_ago, None),
        (
            "period=6h",
            &fresh,
            WEEK_MS,
            now() - chrono::Duration::hours(6),
            Some(now() + minutes(5)),
        ),
        (
            "edges cut 30s into hours",
            &fresh,
            WEEK_MS,
            hour + chrono::Duration::seconds(30),
            Some(hour + chrono::Duration::days(4) - chrono::Duration::seconds(30)),
        ),
        (
            "period=all after retention eviction",
            &evicted,
            WEEK_MS + hour_ms,
            week_ago,
            None,
        ),
    ];
    for (label, store, span_ms, from, to) in cases {
        let window = TimeWindow {
            from: Some(from),
            to,
        };
        // Points are evenly spaced, so the count follows from the covered span.
        let covered_ms = (to.unwrap_or(now()).min(now()) - from).num_milliseconds();
        let expected = covered_ms as f64 / span_ms as f64 * POINTS as f64;
        let count = rt.block_on(store.summarize(&name, window)).unwrap().count;
        assert!(
            (count as f64 - expected).abs() <= 2.0,
            "{label}: {count} points"
        );
        c.bench_function(&format!("summary/1M points/{label}"), |b| {
            b.iter(|| rt.block_on(store.summarize(&name, window)).unwrap())
        });
    }
}

/// Series over 1,000,000 points of 10 types (a week): 7 days in steps of an hour and
/// 6 hours in steps of a minute, each step checked against the summary of its interval.
fn series(c: &mut Criterion) {
    let rt = runtime();
    let store = store(Duration::from_secs(8 * 86_400));
    for batch in batches(10, WEEK_MS) {
        rt.block_on(store.insert_batch(batch)).unwrap();
    }
    let name = MetricType::parse("bench.type0").unwrap();
    let cases = [
        ("7d step=1h", chrono::Duration::days(7), 3_600),
        ("6h step=1m", chrono::Duration::hours(6), 60),
    ];
    for (label, period, step) in cases {
        let window = SeriesWindow {
            from: now() - period,
            to: now() + chrono::Duration::minutes(5),
            step: Duration::from_secs(step),
        };
        let steps = rt.block_on(store.series(&name, window)).unwrap();
        for (i, got) in steps.iter().enumerate().step_by(17) {
            let want = rt.block_on(store.summarize(&name, window.step_window(i)));
            assert_eq!(got, &want.unwrap(), "{label}: step {i}");
        }
        c.bench_function(&format!("series/1M points, 10 types/{label}"), |b| {
            b.iter(|| rt.block_on(store.series(&name, window)).unwrap())
        });
    }
}

fn inserts(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("insert/1M points in batches of 10k");
    group.sample_size(10);
    // Each sample also rebuilds 1M input points untimed; give the ten samples room.
    group.measurement_time(Duration::from_secs(15));
    for types in [1, 10] {
        group.bench_function(format!("{types} types"), |b| {
            b.iter_batched(
                || batches(types, WEEK_MS),
                |batches| {
                    let store = store(Duration::from_secs(8 * 86_400));
                    for batch in batches {
                        rt.block_on(store.insert_batch(batch)).unwrap();
                    }
                    // Returned so that dropping it is not timed.
                    store
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, summaries, series, inserts);
criterion_main!(benches);
