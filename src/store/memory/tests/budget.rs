//! The memory budget (`max_bytes`) and the type cap (`max_types`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::summary::insert_random;
use super::*;
use crate::store::StoreError;

fn budget(max_bytes: u64, max_types: u64) -> (MemoryStore, TestClock) {
    store_with_config(MemoryStoreConfig {
        max_bytes,
        max_types,
        ..MemoryStoreConfig::unbounded(std::time::Duration::from_secs(30 * 86_400))
    })
}

/// The running byte count is what every structure adds up to, after inserts in and out of
/// order, point-by-point trims, whole-minute evictions and retention.
#[tokio::test]
async fn the_running_count_matches_a_recount() {
    let mut rng = StdRng::seed_from_u64(0xb17e5);
    let max = 3 << 20;
    let (store, clock) = budget(max, u64::MAX);
    for name in ["a", "b", "c"] {
        insert_random(&store, &mut rng, name, 8_000, 3 * DAY_MS).await;
        let (running, recount) = store.bytes_and_recount();
        assert_eq!(running, recount);
        assert!(running <= max, "{running}");
    }
    assert!(store.stats().evicted_memory > 0, "the budget was reached");
    clock.set(at(32 * DAY_MS));
    store.evict_expired();
    let (running, recount) = store.bytes_and_recount();
    assert_eq!(running, recount);
    assert_eq!(store.stats().memory_bytes, running);
}

/// Over the budget the globally oldest points go first, a point older than everything held
/// is kept once acknowledged, and every eviction is counted with its reason.
#[tokio::test]
async fn over_the_budget_the_oldest_go_first() {
    let max = 200_000;
    let (store, _) = budget(max, u64::MAX);
    let mut inserted = 0u64;
    // One point a second across types, oldest first, far more than fits.
    for minute in 0..200 {
        let batch: Vec<Metric> = (0..60)
            .map(|s| {
                let name = ["x", "y"][(s % 2) as usize];
                metric(name, (minute * 60 + s) * 1_000, s as f64)
            })
            .collect();
        inserted += batch.len() as u64;
        store.insert_batch(batch).await.unwrap();
        let stats = store.stats();
        assert!(stats.memory_bytes <= max, "{} > {max}", stats.memory_bytes);
        assert_eq!(stats.points + stats.evicted_memory, inserted);
    }
    let stats = store.stats();
    assert!(
        stats.evicted_memory > 0 && stats.points > 1_000,
        "{stats:?}"
    );
    // What is left is the newest: every point from some instant on.
    let kept = store.recent(&ty("x"), usize::MAX).await.unwrap();
    let oldest_kept = kept.last().unwrap().timestamp;
    let all = summary(
        &store,
        "x",
        window(
            Some(oldest_kept.timestamp_millis() - base().timestamp_millis()),
            None,
        ),
    )
    .await;
    assert_eq!(all.count, kept.len() as u64);
    let y = summary(&store, "y", TimeWindow::ALL).await.count;
    assert_eq!(kept.len() as u64 + y, stats.points);
    assert!(oldest_kept > at(50 * MINUTE_MS), "{oldest_kept}");

    let older: Vec<Metric> = (0..30).map(|i| metric("older", -DAY_MS + i, 1.0)).collect();
    store.insert_batch(older).await.unwrap();
    assert_eq!(summary(&store, "older", TimeWindow::ALL).await.count, 30);
    assert!(store.stats().memory_bytes <= max);
}

/// A write whose worst case cannot fit the whole budget is refused whole.
#[tokio::test]
async fn a_write_larger_than_the_budget_is_refused_whole() {
    let (store, _) = budget(1 << 20, u64::MAX);
    store.insert_batch(vec![metric("a", 0, 1.0)]).await.unwrap();
    let huge: Vec<Metric> = (0..100_000).map(|i| metric("b", i, 1.0)).collect();
    let err = store.insert_batch(huge).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("TALLY_MAX_MEMORY")),
        "{err}"
    );
    assert_eq!(store.stats().points, 1);
}

/// The sketch bomb: types with the smallest and largest normal magnitudes cost a few
/// hundred bytes each, not megabytes.
#[tokio::test]
async fn extreme_values_cost_little() {
    let (store, _) = budget(u64::MAX, u64::MAX);
    let batch: Vec<Metric> = (0..50)
        .flat_map(|i| {
            let name = format!("bomb.{i}");
            [metric(&name, i, 1e-307), metric(&name, i + 1, 1e308)]
        })
        .collect();
    store.insert_batch(batch).await.unwrap();
    // A fresh type's maps cost about 6 KB whatever its values; its sketches a few bytes.
    let bytes = store.stats().memory_bytes;
    assert!(bytes < 50 * 7_000, "{bytes} bytes for 50 types");
}

/// Past the cap a write that creates a type is refused whole, naming the new types; writes
/// to existing types go on; a type whose points are all evicted stops counting.
#[tokio::test]
async fn the_type_cap_refuses_new_types_whole() {
    let (store, clock) = store_with_config(MemoryStoreConfig {
        max_types: 3,
        ..MemoryStoreConfig::unbounded(std::time::Duration::from_secs(86_400))
    });
    let three: Vec<Metric> = ["a", "b", "c"].iter().map(|n| metric(n, 0, 1.0)).collect();
    store.insert_batch(three).await.unwrap();
    let mixed = vec![
        metric("a", 10, 2.0),
        metric("d", 10, 1.0),
        metric("e", 11, 1.0),
    ];
    match store.insert_batch(mixed).await {
        Err(StoreError::TypeLimit {
            limit,
            held,
            new_types,
        }) => {
            assert_eq!((limit, held), (3, 3));
            assert_eq!(new_types, vec![ty("d"), ty("e")]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        summary(&store, "a", TimeWindow::ALL).await.count,
        1,
        "nothing stored"
    );
    assert_eq!(store.stats().refused_type_limit, 1);
    store
        .insert_batch(vec![metric("b", 20, 1.0)])
        .await
        .unwrap();

    // A day later "a", "b" and "c" have left retention: "d" fits.
    clock.set(at(2 * DAY_MS));
    store.evict_expired();
    store
        .insert_batch(vec![metric("d", 2 * DAY_MS - 5, 1.0)])
        .await
        .unwrap();
    let newest = store.newest_types().await;
    assert_eq!(
        newest.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["d"]
    );
}

/// Random writes under a tight budget and cap: never over either, a refused write stores
/// nothing, and the running count holds.
#[tokio::test]
async fn random_writes_never_exceed_the_budget() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let max = 4 << 20;
    let (store, _) = budget(max, 40);
    let mut refused = 0;
    for _ in 0..80 {
        let n = rng.random_range(1..400);
        // Mostly types that fit; now and then one that may not.
        let types = if rng.random_bool(0.2) { 48 } else { 36 };
        let batch: Vec<Metric> = (0..n)
            .map(|_| {
                let name = format!("t{}", rng.random_range(0..types));
                let v = if rng.random_bool(0.1) {
                    1e300
                } else {
                    rng.random_range(-1e3..1e3)
                };
                metric(&name, rng.random_range(0..2 * DAY_MS), v)
            })
            .collect();
        let before = store.stats();
        match store.insert_batch(batch).await {
            Ok(()) => {}
            Err(StoreError::TypeLimit { .. }) => {
                refused += 1;
                assert_eq!(store.stats().points, before.points, "nothing stored");
            }
            Err(e) => panic!("{e}"),
        }
        let (running, recount) = store.bytes_and_recount();
        assert_eq!(running, recount);
        assert!(running <= max);
        assert!(store.stats().types <= 40);
    }
    let stats = store.stats();
    assert!(
        stats.evicted_memory > 0 && refused > 0,
        "{stats:?}, {refused} refused"
    );
    assert_eq!(stats.refused_type_limit, refused);
}
