//! Listing, recent points, retention and the point limit.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::summary::{insert_random, random_windows};
use super::*;
use crate::store::StoreError;

#[tokio::test]
async fn recent_is_newest_first_and_limited() {
    let (store, _) = store_with(30, u64::MAX);
    let offsets = [5 * MINUTE_MS, 0, HOUR_MS, 30_000, HOUR_MS, 2];
    let batch = offsets.iter().enumerate();
    let batch = batch.map(|(i, &ms)| metric("a", ms, i as f64)).collect();
    store.insert_batch(batch).await.unwrap();
    let values = |points: Vec<Metric>| points.iter().map(|m| m.value).collect::<Vec<_>>();
    // Equal timestamps: the one inserted last comes first.
    let top = store.recent(&ty("a"), 3).await.unwrap();
    assert_eq!(values(top.clone()), vec![4.0, 2.0, 0.0]);
    assert_eq!(top[0].timestamp, at(HOUR_MS));
    assert_eq!(top[0].metric_type, ty("a"));
    let all = store.recent(&ty("a"), 100).await.unwrap();
    assert_eq!(values(all), vec![4.0, 2.0, 0.0, 3.0, 5.0, 1.0]);
    assert!(store.recent(&ty("a"), 0).await.unwrap().is_empty());
    assert!(store.recent(&ty("b"), 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn types_are_listed_by_name_with_count_and_last_timestamp() {
    let (store, _) = store_with(30, u64::MAX);
    let batch = vec![
        metric("b", 10, 1.0),
        metric("c:x", 0, 1.0),
        metric("a", DAY_MS, 1.0),
        metric("b", 5, 1.0),
        metric("a", 7, 1.0),
    ];
    store.insert_batch(batch).await.unwrap();
    let listed: Vec<(String, u64, DateTime<Utc>)> = store
        .types()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.metric_type.to_string(), t.count, t.last_timestamp))
        .collect();
    let expected = [("a", 2, at(DAY_MS)), ("b", 2, at(10)), ("c:x", 1, at(0))];
    let expected: Vec<_> = expected.map(|(n, c, t)| (n.to_owned(), c, t)).into();
    assert_eq!(listed, expected);
    let stats = store.stats();
    assert_eq!((stats.points, stats.types), (5, 3));
    assert_eq!(
        (
            stats.evicted_retention,
            stats.evicted_capacity,
            stats.evicted_memory
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn retention_evicts_expired_minutes_and_summaries_stay_exact() {
    let mut rng = StdRng::seed_from_u64(0xe71c7);
    let (store, clock) = store_with(1, u64::MAX);
    let span = 3 * DAY_MS;
    let points = insert_random(&store, &mut rng, "a", 20_000, span).await;
    let noise = store.stats().points - points.len() as u64;

    clock.set(at(2 * DAY_MS + 7 * HOUR_MS + 12_345));
    let horizon = at(DAY_MS + 7 * HOUR_MS + 12_345);
    // Whole minutes go: a point survives iff its minute ends after the horizon.
    let first_kept =
        horizon - chrono::Duration::milliseconds(horizon.timestamp_millis() % MINUTE_MS);
    let kept: Vec<_> = points
        .iter()
        .copied()
        .filter(|p| p.0 >= first_kept)
        .collect();
    let evicted = store.evict_expired();
    let kept_noise = store.stats().points - kept.len() as u64;
    assert_eq!(
        evicted,
        (points.len() - kept.len()) as u64 + noise - kept_noise
    );
    assert_eq!(store.stats().evicted_retention, evicted);
    assert_eq!(store.evict_expired(), 0);

    let mut windows = random_windows(&mut rng, span, 40);
    windows.push(TimeWindow::ALL);
    for w in windows {
        assert_matches(&summary(&store, "a", w).await, &kept, w);
    }

    clock.set(at(10 * DAY_MS));
    store.evict_expired();
    assert!(store.types().await.unwrap().is_empty());
    let stats = store.stats();
    assert_eq!((stats.points, stats.types), (0, 0));
    assert_eq!(stats.evicted_retention, points.len() as u64 + noise);
}

#[tokio::test]
async fn max_points_drops_the_globally_oldest() {
    let (store, _) = store_with(30, 1_000);
    // "old": one point a second for 10 minutes, valued by index; "new": an hour later.
    let old: Vec<Metric> = (0..600)
        .map(|i| metric("old", i * 1000, i as f64))
        .collect();
    store.insert_batch(old).await.unwrap();
    let new = (0..600)
        .map(|i| metric("new", HOUR_MS + i * 1000, 1.0))
        .collect();
    store.insert_batch(new).await.unwrap();
    let old_left = summary(&store, "old", TimeWindow::ALL).await;
    assert_eq!(
        (old_left.count, old_left.min, old_left.max),
        (400, Some(200.0), Some(599.0))
    );
    assert_eq!(summary(&store, "new", TimeWindow::ALL).await.count, 600);
    let stats = store.stats();
    assert_eq!((stats.points, stats.evicted_capacity), (1_000, 200));

    // Points older than everything stored are kept once acknowledged: room
    // is made before the write, from what was held (the next write's room
    // comes from them first).
    let older = (0..50).map(|i| metric("older", -DAY_MS + i, 1.0)).collect();
    store.insert_batch(older).await.unwrap();
    assert_eq!(summary(&store, "older", TimeWindow::ALL).await.count, 50);
    assert_eq!(summary(&store, "old", TimeWindow::ALL).await.count, 350);
    let stats = store.stats();
    assert_eq!(
        (stats.points, stats.evicted_capacity, stats.types),
        (1_000, 250, 3)
    );
    let next = vec![metric("new", 2 * HOUR_MS, 1.0)];
    store.insert_batch(next).await.unwrap();
    assert_eq!(summary(&store, "older", TimeWindow::ALL).await.count, 49);
}

#[tokio::test]
async fn a_batch_larger_than_the_store_is_refused_whole() {
    let (store, _) = store_with(30, 3);
    store
        .insert_batch(vec![metric("a", 0, 1.0), metric("a", 1_000, 2.0)])
        .await
        .unwrap();
    let five = (0..5).map(|i| metric("b", HOUR_MS + i, 1.0)).collect();
    assert!(matches!(
        store.insert_batch(five).await,
        Err(StoreError::Unavailable(_))
    ));
    let stats = store.stats();
    assert_eq!((stats.points, stats.evicted_capacity), (2, 0));
    assert_eq!(summary(&store, "b", TimeWindow::ALL).await.count, 0);
}

#[tokio::test]
async fn max_points_is_never_exceeded() {
    let mut rng = StdRng::seed_from_u64(0xcab);
    let (store, _) = store_with(30, 2_500);
    let mut inserted = 0;
    for _ in 0..40 {
        let n = rng.random_range(1..800);
        let batch = (0..n).map(|_| {
            let name = ["a", "b", "c"][rng.random_range(0..3)];
            metric(
                name,
                rng.random_range(0..2 * DAY_MS),
                rng.random_range(-1.0..1.0),
            )
        });
        store.insert_batch(batch.collect()).await.unwrap();
        inserted += n as u64;
        let stats = store.stats();
        assert!(stats.points <= 2_500);
        assert_eq!(stats.points + stats.evicted_capacity, inserted);
        let listed: u64 = store.types().await.unwrap().iter().map(|t| t.count).sum();
        assert_eq!(listed, stats.points);
    }
}

#[tokio::test]
async fn max_points_trims_a_lone_bucket_point_by_point() {
    let (store, _) = store_with(30, 10);
    // Ten points of one minute, shuffled, then five newer ones: room for
    // them comes from the oldest five of that minute.
    let mut first: Vec<i64> = (0..10).collect();
    first.shuffle(&mut StdRng::seed_from_u64(3));
    for part in [first, (10..15).collect()] {
        let batch = part
            .iter()
            .map(|&ms| metric("a", ms * 100, ms as f64))
            .collect();
        store.insert_batch(batch).await.unwrap();
    }
    let left = summary(&store, "a", TimeWindow::ALL).await;
    assert_eq!(
        (left.count, left.min, left.max, left.latest),
        (10, Some(5.0), Some(14.0), Some(14.0))
    );
    assert_eq!(store.stats().evicted_capacity, 5);
    let recent: Vec<f64> = store
        .recent(&ty("a"), 3)
        .await
        .unwrap()
        .iter()
        .map(|m| m.value)
        .collect();
    assert_eq!(recent, vec![14.0, 13.0, 12.0]);
}
