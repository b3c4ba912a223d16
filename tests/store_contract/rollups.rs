//! Cases about rollups, for both backends: points arriving late into buckets already
//! rolled up, windows cut at every kind of bucket edge, and concurrent writers from two
//! instances. Each checks against brute force before and after the backend settles
//! (PostgreSQL: partials folded into its rollup tables).

use std::collections::HashSet;

use std::sync::atomic::AtomicBool;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

/// `n` random windows over `[base - 1 h, base + span + 1 h)`, bounds on whole
/// milliseconds, minutes, hours and days in turn, some open, plus the whole store.
fn random_windows(
    rng: &mut StdRng,
    base: DateTime<Utc>,
    span_ms: i64,
    n: usize,
) -> Vec<TimeWindow> {
    let mut windows = vec![TimeWindow::ALL];
    for i in 0..n {
        let unit = [1, MINUTE_MS, HOUR_MS, DAY_MS][i % 4];
        let from_ms = rng.random_range(-HOUR_MS..span_ms + HOUR_MS);
        let from_ms = from_ms - (base.timestamp_millis() + from_ms).rem_euclid(unit);
        let to_ms = from_ms + rng.random_range(1..span_ms);
        let to_ms = to_ms - (base.timestamp_millis() + to_ms).rem_euclid(unit) + unit;
        let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
        windows.push(window(
            (i % 5 != 4).then(|| at(from_ms)),
            (i % 3 != 2).then(|| at(to_ms)),
        ));
    }
    windows
}

/// 1,500 points of two types over two days arrive shuffled, in six waves of small
/// batches; the backend settles after every other wave, so later waves land in minutes,
/// hours and days already rolled up. Every window matches brute force after every wave.
pub async fn out_of_order_points_into_rolled_up_buckets(backend: &Backend) {
    let store = backend.store();
    let mut rng = StdRng::seed_from_u64(0x00dd_0a7e);
    let base = base();
    let span_ms = 2 * DAY_MS;
    let names = ["late.a", "late.b"];
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    while all.len() < 1_500 {
        let ms = rng.random_range(0..span_ms);
        if seen.insert(ms) {
            let name = names[all.len() % 2];
            let v = rng.random_range(-50.0..250.0_f64).round() / 4.0;
            all.push(metric(name, base + chrono::Duration::milliseconds(ms), v));
        }
    }
    all.shuffle(&mut rng);
    let windows = random_windows(&mut rng, base, span_ms, 12);
    let mut stored = Vec::new();
    for (wave, points) in all.chunks(250).enumerate() {
        let mut rest = points;
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(rng.random_range(1..60).min(rest.len()));
            store.insert_batch(batch.to_vec()).await.unwrap();
            rest = tail;
        }
        stored.extend_from_slice(points);
        if wave % 2 == 0 {
            backend.settle().await;
        }
        check(&format!("wave {wave}"), &store, &stored, &names, &windows).await;
    }
}

/// Points on both sides of day, hour and minute boundaries (1 ms before, on, 1 ms after)
/// and between them; every window whose bounds are any pair of those boundaries, 1 µs
/// either side of one, mid-minute or open, before and after settling.
pub async fn windows_cut_at_every_edge(backend: &Backend) {
    let store = backend.store();
    let start = base().timestamp_millis();
    let day = (start.div_euclid(DAY_MS) + 1) * DAY_MS;
    let edges = [
        day,
        day + HOUR_MS,
        day + HOUR_MS + MINUTE_MS,
        day + 13 * HOUR_MS + 30 * MINUTE_MS,
        day + DAY_MS - HOUR_MS,
        day + DAY_MS,
    ];
    let mut times: Vec<i64> = edges.iter().flat_map(|&e| [e - 1, e, e + 1]).collect();
    times.extend(
        (day - 3 * HOUR_MS..day + DAY_MS + 3 * HOUR_MS).step_by(7 * MINUTE_MS as usize + 13),
    );
    times.sort_unstable();
    times.dedup();
    let at = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap();
    let points: Vec<Metric> = times
        .iter()
        .enumerate()
        .map(|(i, &ms)| metric("edge", at(ms), ((i * 37) % 101) as f64 - 20.0))
        .collect();
    for batch in points.chunks(97) {
        store.insert_batch(batch.to_vec()).await.unwrap();
    }
    let micro = chrono::Duration::microseconds(1);
    let mut bounds: Vec<Option<DateTime<Utc>>> = vec![None];
    for &e in &edges {
        bounds.extend([Some(at(e) - micro), Some(at(e)), Some(at(e) + micro)]);
    }
    bounds.push(Some(at(day + 5 * HOUR_MS + 17 * MINUTE_MS + 31_500)));
    let windows: Vec<TimeWindow> = bounds
        .iter()
        .flat_map(|&from| bounds.iter().map(move |&to| window(from, to)))
        .collect();
    check("before settling", &store, &points, &["edge"], &windows).await;
    backend.settle().await;
    check("after settling", &store, &points, &["edge"], &windows).await;
}

/// Two instances, four writers each, write the same type into the same minute at once
/// while both fold partials (as their background passes do, and once more by hand in a
/// loop); every point is counted once.
pub async fn concurrent_writers_are_all_counted(backend: &Backend) {
    let twin = backend.twin().await;
    let minute = (base().timestamp_millis().div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
    let (writers, batches, per_batch) = (8usize, 40usize, 25usize);
    let stop = Arc::new(AtomicBool::new(false));
    let settlers: Vec<_> = [backend, &twin]
        .into_iter()
        .filter_map(|b| b.postgres.as_ref().map(|(store, _, _)| Arc::clone(store)))
        .map(|store| {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    store.compact().await.expect("compaction");
                }
            })
        })
        .collect();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = if w % 2 == 0 {
                backend.store()
            } else {
                twin.store()
            };
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for b in 0..batches {
                    let batch: Vec<Metric> = (0..per_batch)
                        .map(|i| {
                            let n = ((b * per_batch + i) * writers + w) as i64;
                            let ts = Utc.timestamp_millis_opt(minute + n).unwrap();
                            metric("shared", ts, (n % 211) as f64)
                        })
                        .collect();
                    store.insert_batch(batch.clone()).await.unwrap();
                    mine.extend(batch);
                }
                mine
            })
        })
        .collect();
    let mut points = Vec::new();
    for task in tasks {
        points.extend(task.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for settler in settlers {
        settler.await.unwrap();
    }
    assert_eq!(points.len(), writers * batches * per_batch);
    let windows = [
        TimeWindow::ALL,
        window(Some(Utc.timestamp_millis_opt(minute).unwrap()), None),
        window(
            None,
            Some(Utc.timestamp_millis_opt(minute + 3_000).unwrap()),
        ),
    ];
    for store in [backend.store(), twin.store()] {
        check("unsettled", &store, &points, &["shared"], &windows).await;
    }
    backend.settle().await;
    for store in [backend.store(), twin.store()] {
        check("settled", &store, &points, &["shared"], &windows).await;
    }
}

/// Every step of a series equals brute force over the step's interval as the window cuts
/// it, and counts what `summarize` counts there: steps of a day, an hour, 15 minutes, a
/// minute, 90 seconds and 20 seconds, over windows that start and end mid-step (the long
/// one, 72 hours less 22 seconds, holds whole days), before and after the backend settles.
pub async fn series_steps_match_their_intervals(backend: &Backend) {
    let store = backend.store();
    let mut rng = StdRng::seed_from_u64(0x005e_71e5);
    let base = base();
    let mut seen = HashSet::new();
    let mut points = Vec::new();
    while points.len() < 1_500 {
        // Three days: the long window then holds at least one whole UTC day.
        let ms = rng.random_range(0..3 * DAY_MS - 10_000);
        if seen.insert(ms) {
            let name = if points.len() % 5 == 0 { "noise" } else { "s" };
            let v = rng.random_range(-20.0..500.0_f64).round() / 2.0;
            points.push(metric(name, base + chrono::Duration::milliseconds(ms), v));
        }
    }
    for batch in points.chunks(113) {
        store.insert_batch(batch.to_vec()).await.unwrap();
    }
    let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
    let long = (at(17_123), at(3 * DAY_MS - 5_000));
    let short = (
        at(5 * HOUR_MS + 3 * MINUTE_MS + 2_250),
        at(8 * HOUR_MS + 41_001),
    );
    let cases = [
        (long, Duration::from_secs(86_400)),
        (long, Duration::from_secs(3_600)),
        (long, Duration::from_secs(900)),
        (short, Duration::from_secs(60)),
        (short, Duration::from_secs(90)),
        (
            (short.0, short.0 + chrono::Duration::minutes(30)),
            Duration::from_secs(20),
        ),
    ];
    for phase in ["before settling", "after settling"] {
        for ((from, to), step) in cases {
            let window = tally::domain::SeriesWindow { from, to, step };
            let got = store.series(&ty("s"), window).await.expect("series");
            let (first, step_us, n) = window.steps();
            assert_eq!(got.len(), n, "{phase}: steps of {step:?}");
            assert!(
                first <= from.timestamp_micros() && n > 1,
                "{phase}: {step:?}"
            );
            assert_eq!(first.rem_euclid(step_us), 0, "aligned to the epoch");
            for (i, aggregates) in got.iter().enumerate() {
                let w = window.step_window(i);
                let what = format!("{phase}: step {i} of {step:?}");
                assert_summary(&what, aggregates, &points, "s", w);
                assert_eq!(
                    aggregates.count,
                    summary(&store, "s", w).await.count,
                    "{what}"
                );
            }
        }
        backend.settle().await;
    }
}
