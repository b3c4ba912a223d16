//! Summaries: bucket placement, brute-force comparisons and numeric edge cases.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

/// A value drawn from a mix of shapes: a narrow band, negatives, zeros, many magnitudes.
fn value(rng: &mut impl Rng) -> f64 {
    match rng.random_range(0..20) {
        0..=11 => rng.random_range(50.0..150.0),
        12..=13 => -rng.random_range(0.0..1000.0),
        14 => 0.0,
        15..=17 => 10f64.powf(rng.random_range(-6.0..9.0)),
        _ => f64::from(rng.random_range(-5..5)),
    }
}

/// Inserts `n` points of `name` spread over `span_ms`, shuffled, in batches mixed with
/// another type; returns them (µs precision) in insertion order.
pub(super) async fn insert_random(
    store: &MemoryStore,
    rng: &mut StdRng,
    name: &str,
    n: usize,
    span_ms: i64,
) -> Vec<(DateTime<Utc>, f64)> {
    let mut points: Vec<(DateTime<Utc>, f64)> = (0..n)
        .map(|_| {
            let micros = rng.random_range(0..span_ms * 1000);
            let ts = base() + chrono::Duration::microseconds(micros);
            (ts, value(rng))
        })
        .collect();
    // A few exact duplicates of timestamps, to exercise "latest" ties.
    for i in 0..n / 100 {
        points[i * 50 + 1].0 = points[i * 50].0;
    }
    points.shuffle(rng);
    for chunk in points.chunks(rng.random_range(1..3000)) {
        let mut batch: Vec<Metric> = chunk
            .iter()
            .map(|&(timestamp, value)| Metric {
                timestamp,
                value,
                metric_type: ty(name),
            })
            .collect();
        batch.push(metric("noise", rng.random_range(0..span_ms), 1e9));
        store.insert_batch(batch).await.unwrap();
    }
    points
}

/// Windows that cut through minutes, hours and days, or are unbounded on one side.
pub(super) fn random_windows(rng: &mut StdRng, span_ms: i64, n: usize) -> Vec<TimeWindow> {
    (0..n)
        .map(|i| {
            let from_ms = rng.random_range(-HOUR_MS..span_ms + HOUR_MS);
            let unit = [1, MINUTE_MS, HOUR_MS, DAY_MS][i % 4];
            let from_ms = from_ms - (base().timestamp_millis() + from_ms).rem_euclid(unit);
            let len_ms = rng.random_range(1..span_ms * 3 / 2);
            let from = (i % 7 != 0).then_some(from_ms);
            let to = (i % 5 != 0).then_some(from_ms + len_ms);
            window(from, to)
        })
        .collect()
}

#[tokio::test]
async fn out_of_order_inserts_land_in_the_right_bucket() {
    let (store, _) = store_with(30, u64::MAX);
    // Newest first, then older points across minute, hour and day boundaries.
    for (ms, v) in [
        (2 * DAY_MS, 5.0),
        (0, 1.0),
        (HOUR_MS, 3.0),
        (MINUTE_MS, 2.0),
    ] {
        store.insert_batch(vec![metric("a", ms, v)]).await.unwrap();
    }
    store
        .insert_batch(vec![metric("a", DAY_MS, 4.0)])
        .await
        .unwrap();
    for (ms, v) in [(0, 1.0), (MINUTE_MS, 2.0), (HOUR_MS, 3.0), (DAY_MS, 4.0)] {
        let got = summary(&store, "a", window(Some(ms), Some(ms + 1))).await;
        assert_eq!((got.count, got.latest), (1, Some(v)));
    }
    let all = summary(&store, "a", TimeWindow::ALL).await;
    assert_eq!((all.count, all.latest, all.sum), (5, Some(5.0), Some(15.0)));
    let early = summary(&store, "a", window(None, Some(HOUR_MS + 1))).await;
    assert_eq!(
        (early.count, early.latest, early.max),
        (3, Some(3.0), Some(3.0))
    );
}

#[tokio::test]
async fn random_windows_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(0x7a11);
    let (store, _) = store_with(30, u64::MAX);
    let span = 3 * DAY_MS + 5 * HOUR_MS;
    let points = insert_random(&store, &mut rng, "a", 40_000, span).await;
    let mut windows = random_windows(&mut rng, span, 80);
    windows.push(TimeWindow::ALL);
    for w in windows {
        assert_matches(&summary(&store, "a", w).await, &points, w);
    }
}

#[tokio::test]
async fn huge_values_stay_finite() {
    let (store, _) = store_with(30, u64::MAX);
    let batch = vec![metric("big", 0, 1e308), metric("big", 1, 1e308)];
    store.insert_batch(batch).await.unwrap();
    let got = summary(&store, "big", TimeWindow::ALL).await;
    assert_eq!(got.sum, Some(f64::MAX));
    assert_eq!(got.average, Some(1e308));
    assert_eq!((got.p50, got.p99), (Some(1e308), Some(1e308)));

    let extremes = [f64::MAX, -f64::MAX, f64::MAX, f64::MAX, -1e308];
    let batch = extremes.iter().map(|&v| metric("mix", 5, v)).collect();
    store.insert_batch(batch).await.unwrap();
    let got = summary(&store, "mix", TimeWindow::ALL).await;
    assert_eq!(
        (got.min, got.max, got.latest),
        (Some(-f64::MAX), Some(f64::MAX), Some(-1e308))
    );
    for v in [got.sum, got.average, got.p50, got.p90, got.p95, got.p99] {
        assert!(v.unwrap().is_finite(), "{got:?}");
    }
    let average = f64::MAX / 5.0 * 2.0 - 1e308 / 5.0;
    assert!((got.average.unwrap() - average).abs() < 1e295, "{got:?}");
}

#[tokio::test]
async fn negative_zero_and_tiny_values() {
    let (store, _) = store_with(30, u64::MAX);
    let values = [
        -5.0, 0.0, -0.0, 3.0, 1e-300, 2e-300, -1e-310, 7.5, -2.5, 0.0,
    ];
    let points: Vec<(DateTime<Utc>, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (at(i as i64 * 20_000), v))
        .collect();
    let batch = points.iter().map(|&(ts, v)| Metric {
        timestamp: ts,
        value: v,
        metric_type: ty("n"),
    });
    store.insert_batch(batch.collect()).await.unwrap();
    for w in [
        TimeWindow::ALL,
        window(Some(30_000), Some(150_000)),
        window(Some(70_000), Some(130_000)),
    ] {
        assert_matches(&summary(&store, "n", w).await, &points, w);
    }
    let tiny = summary(&store, "n", window(Some(80_000), Some(110_000))).await;
    assert!((tiny.sum.unwrap() - 3e-300).abs() <= 1e-310, "{tiny:?}");
    assert!((tiny.p50.unwrap() - 1e-300).abs() <= 1e-302);
}

#[tokio::test]
async fn empty_windows_and_unknown_types_have_no_values() {
    let (store, _) = store_with(30, u64::MAX);
    store.insert_batch(vec![metric("a", 0, 1.0)]).await.unwrap();
    for w in [
        window(Some(1), Some(1_000)),
        window(Some(5), Some(5)),
        window(Some(9), Some(3)),
    ] {
        assert_eq!(summary(&store, "a", w).await, Aggregates::default());
    }
    assert_eq!(
        summary(&store, "nope", TimeWindow::ALL).await,
        Aggregates::default()
    );
}
