//! Unit tests of the embedded store, against brute-force answers over the raw points.

mod budget;
mod lifecycle;
mod summary;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;

use super::{MemoryStore, MemoryStoreConfig};
use crate::domain::{Aggregates, Metric, MetricType, TimeWindow};
use crate::store::MetricStore;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn set(&self, now: DateTime<Utc>) {
        *self.0.lock() = now;
    }
}

/// 2025-03-10T05:17:23.456Z: deliberately not on a minute, hour or day boundary.
fn base() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_741_583_843_456).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    base() + chrono::Duration::milliseconds(ms)
}

fn ty(name: &str) -> MetricType {
    MetricType::parse(name).unwrap()
}

fn metric(name: &str, ms: i64, value: f64) -> Metric {
    Metric {
        timestamp: at(ms),
        value,
        metric_type: ty(name),
    }
}

fn store_with(retention_days: u64, max_points: u64) -> (MemoryStore, TestClock) {
    store_with_config(MemoryStoreConfig {
        max_points,
        ..MemoryStoreConfig::unbounded(std::time::Duration::from_secs(retention_days * 86_400))
    })
}

fn store_with_config(config: MemoryStoreConfig) -> (MemoryStore, TestClock) {
    let clock = TestClock(Arc::new(Mutex::new(base())));
    let shared = clock.0.clone();
    let store = MemoryStore::with_clock(config, Arc::new(move || *shared.lock()));
    (store, clock)
}

fn window(from: Option<i64>, to: Option<i64>) -> TimeWindow {
    TimeWindow {
        from: from.map(at),
        to: to.map(at),
    }
}

async fn summary(store: &MemoryStore, name: &str, w: TimeWindow) -> Aggregates {
    store.summarize(&ty(name), w).await.unwrap()
}

/// Asserts `got` matches a brute-force computation over `points` (insertion order).
fn assert_matches(got: &Aggregates, points: &[(DateTime<Utc>, f64)], w: TimeWindow) {
    let inside: Vec<(DateTime<Utc>, f64)> =
        points.iter().copied().filter(|p| w.contains(p.0)).collect();
    assert_eq!(got.count, inside.len() as u64, "count over {w:?}");
    if inside.is_empty() {
        assert_eq!(got, &Aggregates::default());
        return;
    }
    let mut values: Vec<f64> = inside.iter().map(|p| p.1).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let abs: f64 = values.iter().map(|v| v.abs()).sum();
    let sum: f64 = values.iter().sum();
    // Greatest timestamp wins; on ties the last inserted, hence `>=`.
    let latest = inside
        .iter()
        .fold(inside[0], |best, &p| if p.0 >= best.0 { p } else { best });
    assert_eq!(got.min, Some(values[0]));
    assert_eq!(got.max, Some(values[n - 1]));
    assert_eq!(got.latest, Some(latest.1));
    let tol = 1e-9 * abs + f64::MIN_POSITIVE;
    assert!((got.sum.unwrap() - sum).abs() <= tol, "{got:?} sum {sum}");
    let avg = got.average.unwrap();
    assert!((avg - sum / n as f64).abs() <= tol / n as f64, "{got:?}");
    for (q, p) in [
        (0.5, got.p50),
        (0.9, got.p90),
        (0.95, got.p95),
        (0.99, got.p99),
    ] {
        let exact = values[(q * (n - 1) as f64) as usize];
        let p = p.unwrap();
        assert!(
            (p - exact).abs() <= 0.01 * exact.abs(),
            "p{q}: got {p}, exact {exact}, n {n}"
        );
    }
}
