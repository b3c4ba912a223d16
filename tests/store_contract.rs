//! The `MetricStore` contract: one suite, run against every backend.
//!
//! Each case in `cases` is an `async fn(Arc<dyn MetricStore>)`; the `contract!` macro
//! generates one `#[tokio::test]` per case and backend (`memory::<case>`,
//! `postgres::<case>`), so a failure names both the case and the backend.
//!
//! PostgreSQL runs in a private `initdb`/`pg_ctl` server (the harness of `tests/api`),
//! shared by the tests that run at the same time, with a fresh database per test. The
//! server stops when the last test using it drops its handle, so nothing outlives the run.
//!
//! Timestamps sit a few days before now (the PostgreSQL backend only has partitions from
//! `now - retention` to `now + 2 days`) and are whole milliseconds unless a case is about
//! sub-microsecond bounds. Percentiles may be nearest-rank or interpolated: a value passes
//! when it lies within 1% of the closed range between the two exact ranks around
//! `q * (n - 1)` (what `tests/api/summary.rs` accepts).

#[path = "api/postgres.rs"]
#[allow(dead_code)]
mod pg_server;

/// What `api/postgres.rs` needs from `tests/api/helpers.rs`.
mod helpers {
    use std::net::TcpListener as StdListener;

    pub fn free_port() -> u16 {
        StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }
}

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tally::breaker::Breaker;
use tally::config::Settings;
use tally::domain::{Aggregates, Metric, MetricType, TimeWindow};
use tally::store::{MemoryStore, MemoryStoreConfig, MetricStore, PostgresStore};
use tokio::task::JoinHandle;

use pg_server::TestPostgres;

/// The same retention for both backends.
const RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// How long a PostgreSQL store may take to prepare its schema.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One backend under test, torn down when dropped (tasks aborted, then the server handle
/// released: the server stops with the last handle).
pub struct Backend {
    store: Arc<dyn MetricStore>,
    tasks: Vec<JoinHandle<()>>,
    /// The PostgreSQL store, its server and its database's URL.
    postgres: Option<(Arc<PostgresStore>, Arc<TestPostgres>, String)>,
}

impl Backend {
    pub fn memory() -> Self {
        let store = MemoryStore::new(MemoryStoreConfig {
            max_points: u64::MAX,
            ..MemoryStoreConfig::unbounded(RETENTION)
        });
        Self {
            store: Arc::new(store),
            tasks: Vec::new(),
            postgres: None,
        }
    }

    /// A `PostgresStore` over a fresh database `name` on the shared private server,
    /// returned once its schema is ready.
    pub async fn postgres(name: &str) -> Self {
        let server = shared_server();
        let url = server.database(name).await;
        Self::postgres_at(server, url, RETENTION).await
    }

    /// A `PostgresStore` (another instance) over the database at `url`, once ready.
    pub async fn postgres_at(server: Arc<TestPostgres>, url: String, retention: Duration) -> Self {
        let settings = Settings::default();
        let breaker = Arc::new(Breaker::new(
            "database",
            tally::config::DatabaseBreakerSettings::default().config(),
        ));
        let (store, tasks) = PostgresStore::start(
            &settings.database,
            &url,
            retention,
            Duration::from_secs(86_400),
            breaker,
        )
        .expect("start the PostgreSQL store");
        let backend = Self {
            store: store.clone(),
            tasks,
            postgres: Some((Arc::clone(&store), server, url)),
        };
        let started = Instant::now();
        while !store.is_ready() {
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "the PostgreSQL store was not ready within {READY_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        backend
    }

    pub fn store(&self) -> Arc<dyn MetricStore> {
        Arc::clone(&self.store)
    }

    /// Rolls up whatever is waiting, now (PostgreSQL folds its writers' partials in the
    /// background every second; the embedded store rolls up as it writes).
    pub async fn settle(&self) {
        if let Some((store, _, _)) = &self.postgres {
            store.compact().await.expect("compaction");
        }
    }

    /// A second instance over the same data: another `PostgresStore` on the same
    /// database, or the same embedded store.
    pub async fn twin(&self) -> Backend {
        match &self.postgres {
            Some((_, server, url)) => {
                Self::postgres_at(Arc::clone(server), url.clone(), RETENTION).await
            }
            None => Self {
                store: self.store(),
                tasks: Vec::new(),
                postgres: None,
            },
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The server shared by the PostgreSQL tests running right now. Only a weak reference is
/// kept here, so the server stops (`TestPostgres::drop`) when the last test lets go of it,
/// and a later test starts a new one: no process outlives the test binary.
fn shared_server() -> Arc<TestPostgres> {
    static SERVER: Mutex<Weak<TestPostgres>> = Mutex::new(Weak::new());
    let mut slot = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(TestPostgres::start());
    *slot = Arc::downgrade(&server);
    server
}

/// Generates one test per case and backend.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = crate::Backend::memory();
                    crate::cases::$case(backend.store()).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = crate::Backend::postgres(stringify!($case)).await;
                    crate::cases::$case(backend.store()).await;
                }
            )*
        }
    };
}

/// Generates one test per case and backend for the cases that need the backend itself
/// (to settle its rollups, or to open a second instance).
macro_rules! contract_with_backend {
    ($($case:ident),* $(,)?) => {
        mod rollups_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let backend = crate::Backend::memory();
                    crate::rollups::$case(&backend).await;
                }
            )*
        }

        mod rollups_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let backend = crate::Backend::postgres(stringify!($case)).await;
                    crate::rollups::$case(&backend).await;
                }
            )*
        }
    };
}

#[path = "store_contract/postgres_only.rs"]
mod postgres_only;
#[path = "store_contract/rollups.rs"]
mod rollups;

contract_with_backend!(
    out_of_order_points_into_rolled_up_buckets,
    windows_cut_at_every_edge,
    concurrent_writers_are_all_counted,
    series_steps_match_their_intervals,
);

contract!(
    insert_then_summarize,
    random_windows_match_brute_force,
    empty_windows_and_unknown_types_have_no_values,
    recent_is_newest_first_limited_and_per_type,
    types_are_sorted_with_count_and_last_timestamp,
    batches_land_whole,
    huge_values_stay_finite,
    opposite_extremes_stay_finite,
    negative_zero_and_tiny_values,
    window_bounds_between_microseconds,
    idempotent_writes_store_once,
);

// ---------------------------------------------------------------------------------------
// Helpers shared by the cases.
// ---------------------------------------------------------------------------------------

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Three days ago, to the millisecond: every case's points lie within two days after it.
fn base() -> DateTime<Utc> {
    let ms = (Utc::now() - chrono::Duration::days(3)).timestamp_millis();
    Utc.timestamp_millis_opt(ms).unwrap()
}

fn ty(name: &str) -> MetricType {
    MetricType::parse(name).unwrap()
}

fn metric(name: &str, timestamp: DateTime<Utc>, value: f64) -> Metric {
    Metric {
        timestamp,
        value,
        metric_type: ty(name),
    }
}

fn window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> TimeWindow {
    TimeWindow { from, to }
}

async fn summary(store: &Arc<dyn MetricStore>, name: &str, w: TimeWindow) -> Aggregates {
    store
        .summarize(&ty(name), w)
        .await
        .unwrap_or_else(|e| panic!("summarize {name} over {w:?}: {e}"))
}

/// Every number an aggregate may hold, for finiteness checks.
fn numbers(a: &Aggregates) -> [Option<f64>; 9] {
    [
        a.sum, a.average, a.min, a.max, a.latest, a.p50, a.p90, a.p95, a.p99,
    ]
}

/// Asserts a percentile lies within 1% of the exact answer: anywhere between the two exact
/// ranks around `q * (n - 1)` (nearest-rank and interpolation both qualify), widened by 1% of
/// their magnitude (and by the smallest normal, below which a sketch may answer zero).
fn assert_percentile(what: &str, got: Option<f64>, sorted: &[f64], q: f64) {
    let n = sorted.len();
    let rank = q * (n - 1) as f64;
    let lo = sorted[rank.floor() as usize];
    let hi = sorted[rank.ceil() as usize];
    let slack = |v: f64| 0.01 * v.abs() + f64::MIN_POSITIVE;
    let p = got.unwrap_or_else(|| panic!("{what}: p{} missing", q * 100.0));
    assert!(
        p.is_finite() && p >= lo - slack(lo) && p <= hi + slack(hi),
        "{what}: p{} = {p:e}, exact ranks {lo:e} ..= {hi:e} (n = {n})",
        q * 100.0
    );
}

/// Asserts `got` matches a brute-force computation over `points` of type `name` in `w`.
/// Timestamps of one type must be distinct, so "latest" is unambiguous.
fn assert_summary(what: &str, got: &Aggregates, points: &[Metric], name: &str, w: TimeWindow) {
    let inside: Vec<&Metric> = points
        .iter()
        .filter(|m| m.metric_type.as_str() == name && w.contains(m.timestamp))
        .collect();
    assert_eq!(got.count, inside.len() as u64, "{what}: count over {w:?}");
    if inside.is_empty() {
        assert_eq!(got, &Aggregates::default(), "{what}: empty over {w:?}");
        return;
    }
    let mut values: Vec<f64> = inside.iter().map(|m| m.value).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let newest = inside.iter().max_by_key(|m| m.timestamp).unwrap();
    assert_eq!(
        inside
            .iter()
            .filter(|m| m.timestamp == newest.timestamp)
            .count(),
        1,
        "{what}: the test needs distinct timestamps"
    );
    assert_eq!(got.min, Some(values[0]), "{what}: min over {w:?}");
    assert_eq!(got.max, Some(values[n - 1]), "{what}: max over {w:?}");
    assert_eq!(got.latest, Some(newest.value), "{what}: latest over {w:?}");
    let sum: f64 = values.iter().sum();
    let abs: f64 = values.iter().map(|v| v.abs()).sum();
    let tol = 1e-9 * abs + f64::MIN_POSITIVE;
    let got_sum = got.sum.expect("sum");
    assert!(
        (got_sum - sum).abs() <= tol,
        "{what}: sum over {w:?}: got {got_sum:e}, exact {sum:e}"
    );
    let average = got.average.expect("average");
    assert!(
        (average - sum / n as f64).abs() <= tol / n as f64,
        "{what}: average over {w:?}: got {average:e}, exact {:e}",
        sum / n as f64
    );
    for (q, p) in [
        (0.5, got.p50),
        (0.9, got.p90),
        (0.95, got.p95),
        (0.99, got.p99),
    ] {
        assert_percentile(&format!("{what} over {w:?}"), p, &values, q);
    }
}

/// Every window over every named type, against brute force.
async fn check(
    what: &str,
    store: &Arc<dyn MetricStore>,
    points: &[Metric],
    names: &[&str],
    windows: &[TimeWindow],
) {
    for name in names {
        for &w in windows {
            let got = summary(store, name, w).await;
            assert_summary(what, &got, points, name, w);
        }
    }
}

mod cases {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::atomic::AtomicBool;

    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use tally::domain::TypeInfo;

    use super::*;

    /// Exact counts, sum, min, max, average and latest, and percentiles within 1%, over the
    /// whole store and over bounded windows whose bounds sit on points (`from` included,
    /// `to` excluded) or between them.
    pub async fn insert_then_summarize(store: Arc<dyn MetricStore>) {
        let base = base();
        let at = |i: i64| base + chrono::Duration::milliseconds(i * 10 * MINUTE_MS + 250);
        // A permutation of -40.0, -37.5, ..., 210.0: latest is neither min nor max, and
        // every partial sum is exact.
        let points: Vec<Metric> = (0..101)
            .map(|i| metric("lat", at(i), ((i * 37) % 101) as f64 * 2.5 - 40.0))
            .collect();
        // Out of order: the newer half first, then the older half, then another type.
        store.insert_batch(points[50..].to_vec()).await.unwrap();
        store.insert_batch(points[..50].to_vec()).await.unwrap();
        store
            .insert_batch(vec![metric("other", at(20), 1e6)])
            .await
            .unwrap();

        let all = summary(&store, "lat", TimeWindow::ALL).await;
        assert_eq!(all.count, 101);
        assert_eq!(all.sum, Some(8585.0));
        assert_eq!(all.average, Some(85.0));
        assert_eq!(all.min, Some(-40.0));
        assert_eq!(all.max, Some(210.0));
        assert_eq!(all.latest, Some(((100 * 37) % 101) as f64 * 2.5 - 40.0));
        assert_summary("all", &all, &points, "lat", TimeWindow::ALL);

        let one_ms = chrono::Duration::milliseconds(1);
        for (w, count) in [
            (window(Some(at(10)), Some(at(90))), 80),
            (window(Some(at(10) + one_ms), Some(at(90) + one_ms)), 80),
            (window(Some(at(10) - one_ms), Some(at(90) - one_ms)), 80),
            (window(None, Some(at(50))), 50),
            (window(Some(at(50)), None), 51),
            (window(Some(at(37)), Some(at(38))), 1),
        ] {
            let got = summary(&store, "lat", w).await;
            assert_eq!(got.count, count, "count over {w:?}");
            assert_summary("bounded", &got, &points, "lat", w);
        }
    }

    /// A value from a mix of shapes: a narrow band, negatives, zeros, many magnitudes.
    fn value(rng: &mut impl Rng) -> f64 {
        match rng.random_range(0..20) {
            0..=11 => rng.random_range(50.0..150.0),
            12..=13 => -rng.random_range(0.0..1000.0),
            14 => 0.0,
            15..=17 => 10f64.powf(rng.random_range(-6.0..9.0)),
            _ => f64::from(rng.random_range(-5..5)),
        }
    }

    /// 2,000 points of four types over two days, inserted shuffled in mixed batches, against
    /// brute force over random windows (bounded, half-open and unbounded).
    pub async fn random_windows_match_brute_force(store: Arc<dyn MetricStore>) {
        let mut rng = StdRng::seed_from_u64(0x7a11_c0de);
        let base = base();
        let span_ms = 2 * DAY_MS;
        let names = ["cpu.load", "mem_used", "disk:io", "net-rx"];
        let mut seen = HashSet::new();
        let mut points: Vec<Metric> = Vec::with_capacity(2_000);
        while points.len() < 2_000 {
            let ms = rng.random_range(0..span_ms);
            if !seen.insert(ms) {
                continue;
            }
            let name = names[rng.random_range(0..names.len())];
            let ts = base + chrono::Duration::milliseconds(ms);
            points.push(metric(name, ts, value(&mut rng)));
        }
        let mut shuffled = points.clone();
        shuffled.shuffle(&mut rng);
        let mut rest = &shuffled[..];
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(rng.random_range(1..400).min(rest.len()));
            store.insert_batch(batch.to_vec()).await.unwrap();
            rest = tail;
        }

        let mut windows = vec![TimeWindow::ALL];
        for i in 0..10 {
            let from_ms = rng.random_range(-HOUR_MS..span_ms + HOUR_MS);
            // Some bounds on whole minutes, hours and days (relative to the epoch).
            let unit = [1, MINUTE_MS, HOUR_MS, DAY_MS][i % 4];
            let from_ms = from_ms - (base.timestamp_millis() + from_ms).rem_euclid(unit);
            let len_ms = rng.random_range(1..span_ms);
            let from = base + chrono::Duration::milliseconds(from_ms);
            let to = from + chrono::Duration::milliseconds(len_ms);
            windows.push(window(
                (i % 5 != 0).then_some(from),
                (i % 3 != 0).then_some(to),
            ));
        }
        for name in names {
            for &w in &windows {
                let got = summary(&store, name, w).await;
                assert_summary(name, &got, &points, name, w);
            }
        }
    }

    /// Count 0 and every aggregate `None`: windows without points (between points, empty,
    /// reversed, before and after the data) and a type never stored.
    pub async fn empty_windows_and_unknown_types_have_no_values(store: Arc<dyn MetricStore>) {
        let base = base();
        let ms = |n: i64| base + chrono::Duration::milliseconds(n);
        store
            .insert_batch(vec![metric("a", ms(0), 1.0), metric("a", ms(HOUR_MS), 2.0)])
            .await
            .unwrap();
        for w in [
            window(Some(ms(1)), Some(ms(HOUR_MS))),
            window(Some(ms(0)), Some(ms(0))),
            window(Some(ms(5)), Some(ms(-5))),
            window(None, Some(ms(0))),
            window(Some(ms(HOUR_MS + 1)), None),
            window(Some(ms(-DAY_MS)), Some(ms(-1))),
        ] {
            assert_eq!(
                summary(&store, "a", w).await,
                Aggregates::default(),
                "over {w:?}"
            );
        }
        for w in [TimeWindow::ALL, window(Some(ms(-1)), Some(ms(1)))] {
            assert_eq!(
                summary(&store, "nope", w).await,
                Aggregates::default(),
                "unknown type over {w:?}"
            );
        }
        // The stored type still answers.
        assert_eq!(summary(&store, "a", TimeWindow::ALL).await.count, 2);
    }

    /// `recent` answers the newest points of one type, newest first, at most `limit`.
    pub async fn recent_is_newest_first_limited_and_per_type(store: Arc<dyn MetricStore>) {
        let base = base();
        let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
        // Type "r.a" across minutes, hours and a day boundary, out of order; "r.b" is newer.
        let mut a: Vec<Metric> = (0..30)
            .map(|i| {
                metric(
                    "r.a",
                    at(i * 47 * MINUTE_MS + i * 7),
                    f64::from(i as i32) * 1.5,
                )
            })
            .collect();
        let b: Vec<Metric> = (0..10)
            .map(|i| metric("r.b", at(DAY_MS + 1 + i * SECOND_MS), -f64::from(i as i32)))
            .collect();
        let mut batch: Vec<Metric> = a.iter().rev().step_by(2).cloned().collect();
        batch.extend(b.iter().cloned());
        store.insert_batch(batch).await.unwrap();
        let odd: Vec<Metric> = a.iter().rev().skip(1).step_by(2).cloned().collect();
        store.insert_batch(odd).await.unwrap();

        a.sort_by_key(|m| std::cmp::Reverse(m.timestamp));
        let mut b_newest = b.clone();
        b_newest.reverse();
        for (limit, want) in [
            (5, &a[..5]),
            (1, &a[..1]),
            (30, &a[..]),
            (1_000, &a[..]),
            (0, &a[..0]),
        ] {
            let got = store.recent(&ty("r.a"), limit).await.unwrap();
            assert_eq!(got, want, "recent(r.a, {limit})");
        }
        assert_eq!(store.recent(&ty("r.b"), 3).await.unwrap(), &b_newest[..3]);
        assert_eq!(store.recent(&ty("r.b"), 100).await.unwrap(), b_newest);
        assert!(store.recent(&ty("r.none"), 5).await.unwrap().is_empty());
    }

    /// `types` lists every stored type sorted by name (byte order, as `MetricType` sorts),
    /// with its point count and greatest timestamp (not the last inserted).
    pub async fn types_are_sorted_with_count_and_last_timestamp(store: Arc<dyn MetricStore>) {
        assert!(store.types().await.unwrap().is_empty(), "a new store");
        let base = base();
        // Names whose byte order differs from a case-insensitive or punctuation-blind
        // order: uppercase before lowercase, '-' < '.' < digits < ':' < '_' < letters.
        let names = [
            "alpha", "Zeta", "alpha_b", "alpha.b", "alpha-b", "alpha:b", "alpha1", "beta", "ALPHA",
            "a",
        ];
        let mut want: BTreeMap<MetricType, (u64, DateTime<Utc>)> = BTreeMap::new();
        let mut batch = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let count = i as i64 + 1;
            for k in 0..count {
                // Newest first within each type, so the last inserted is the oldest.
                let ts = base + chrono::Duration::milliseconds((count - k) * MINUTE_MS + i as i64);
                batch.push(metric(name, ts, k as f64));
                let entry = want.entry(ty(name)).or_insert((0, ts));
                entry.0 += 1;
                entry.1 = entry.1.max(ts);
            }
        }
        batch.shuffle(&mut StdRng::seed_from_u64(5));
        store.insert_batch(batch).await.unwrap();

        let want: Vec<TypeInfo> = want
            .into_iter()
            .map(|(metric_type, (count, last_timestamp))| TypeInfo {
                metric_type,
                count,
                last_timestamp,
            })
            .collect();
        let got = store.types().await.unwrap();
        let got_names: Vec<&str> = got.iter().map(|t| t.metric_type.as_str()).collect();
        let want_names: Vec<&str> = want.iter().map(|t| t.metric_type.as_str()).collect();
        assert_eq!(got_names, want_names, "order");
        assert_eq!(got, want);

        // Pages of 3, each after the last name of the one before, walk the same listing.
        let mut paged: Vec<TypeInfo> = Vec::new();
        loop {
            let after = paged.last().map(|t| t.metric_type.clone());
            let page = store.types_page(after.as_ref(), 3).await.unwrap();
            assert!(page.len() <= 3);
            let done = page.len() < 3;
            paged.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(paged, want);
        // After a name that is not stored: from the next one in byte order.
        let from_b = store.types_page(Some(&ty("alpha2")), 2).await.unwrap();
        let names: Vec<&str> = from_b.iter().map(|t| t.metric_type.as_str()).collect();
        assert_eq!(names, ["alpha:b", "alpha_b"]);
        assert!(
            store
                .types_page(Some(&ty("zz")), 5)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Every batch lands whole: batches mixing three types add up exactly, and a reader
    /// running alongside never sees part of a batch.
    pub async fn batches_land_whole(store: Arc<dyn MetricStore>) {
        let base = base();
        let sizes = [("batch.a", 7usize), ("batch.b", 11), ("batch.c", 13)];
        let per_batch: usize = sizes.iter().map(|s| s.1).sum();
        let batches = 40;

        // The reader reads once before the writes start, then until they are done.
        let stop = Arc::new(AtomicBool::new(false));
        let (started, reading) = tokio::sync::oneshot::channel();
        let reader = {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seen = vec![summary(&store, "batch.c", TimeWindow::ALL).await.count];
                let _ = started.send(());
                while !stop.load(Ordering::Acquire) {
                    seen.push(summary(&store, "batch.c", TimeWindow::ALL).await.count);
                    tokio::task::yield_now().await;
                }
                seen
            })
        };
        reading.await.unwrap();
        let mut n = 0i64;
        for _ in 0..batches {
            let mut batch = Vec::with_capacity(per_batch);
            for &(name, size) in &sizes {
                for _ in 0..size {
                    n += 1;
                    let ts = base + chrono::Duration::milliseconds(n * 997);
                    batch.push(metric(name, ts, n as f64));
                }
            }
            batch.shuffle(&mut StdRng::seed_from_u64(n as u64));
            store.insert_batch(batch).await.unwrap();
            // Room for the reader between batches (the embedded store writes in microseconds).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.store(true, Ordering::Release);
        let seen = reader.await.unwrap();
        for count in &seen {
            assert_eq!(count % 13, 0, "a reader saw part of a batch: {seen:?}");
        }

        let mut total = 0;
        for &(name, size) in &sizes {
            let got = summary(&store, name, TimeWindow::ALL).await;
            assert_eq!(got.count, (size * batches) as u64, "{name}");
            total += got.count;
        }
        assert_eq!(total, (per_batch * batches) as u64);
        let types = store.types().await.unwrap();
        let counted: Vec<(&str, u64)> = types
            .iter()
            .map(|t| (t.metric_type.as_str(), t.count))
            .collect();
        let want: Vec<(&str, u64)> = sizes
            .iter()
            .map(|&(name, size)| (name, (size * batches) as u64))
            .collect();
        assert_eq!(counted, want);
        assert_eq!(store.stats().points, total, "stats().points");
    }

    /// Values near `f64::MAX`: the sum saturates at `±f64::MAX`, the average stays finite
    /// and correct, and no aggregate is infinite (the embedded store's
    /// `huge_values_stay_finite`, with distinct timestamps).
    pub async fn huge_values_stay_finite(store: Arc<dyn MetricStore>) {
        let base = base();
        let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
        store
            .insert_batch(vec![
                metric("big", at(0), 1e308),
                metric("big", at(1), 1e308),
            ])
            .await
            .unwrap();
        let got = summary(&store, "big", TimeWindow::ALL).await;
        assert_eq!(got.count, 2);
        assert_eq!(got.sum, Some(f64::MAX), "{got:?}");
        assert_eq!(got.average, Some(1e308), "{got:?}");
        assert_eq!(
            (got.min, got.max, got.latest),
            (Some(1e308), Some(1e308), Some(1e308))
        );
        assert_eq!((got.p50, got.p99), (Some(1e308), Some(1e308)), "{got:?}");

        store
            .insert_batch(vec![
                metric("small", at(0), -1e308),
                metric("small", at(1), -1e308),
            ])
            .await
            .unwrap();
        let got = summary(&store, "small", TimeWindow::ALL).await;
        assert_eq!(got.sum, Some(-f64::MAX), "{got:?}");
        assert_eq!(got.average, Some(-1e308), "{got:?}");

        let extremes = [f64::MAX, -f64::MAX, f64::MAX, f64::MAX, -1e308];
        let batch = extremes
            .iter()
            .enumerate()
            .map(|(i, &v)| metric("mix", at(5 + i as i64), v))
            .collect();
        store.insert_batch(batch).await.unwrap();
        let got = summary(&store, "mix", TimeWindow::ALL).await;
        assert_eq!(got.count, 5);
        assert_eq!(
            (got.min, got.max, got.latest),
            (Some(-f64::MAX), Some(f64::MAX), Some(-1e308))
        );
        // The exact sum, 2 * MAX - 1e308, is beyond f64: saturated.
        assert_eq!(got.sum, Some(f64::MAX), "{got:?}");
        for v in numbers(&got) {
            assert!(v.unwrap().is_finite(), "{got:?}");
        }
        let average = f64::MAX / 5.0 * 2.0 - 1e308 / 5.0;
        assert!((got.average.unwrap() - average).abs() < 1e295, "{got:?}");
        let mut sorted = extremes.to_vec();
        sorted.sort_by(f64::total_cmp);
        for (q, p) in [
            (0.5, got.p50),
            (0.9, got.p90),
            (0.95, got.p95),
            (0.99, got.p99),
        ] {
            assert_percentile("mix", p, &sorted, q);
        }
    }

    /// Percentiles between opposite extremes: `Aggregates` promises every number finite,
    /// so neither interpolation nor a sketch may answer ±infinity (or NaN) here.
    pub async fn opposite_extremes_stay_finite(store: Arc<dyn MetricStore>) {
        let base = base();
        let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
        let values = [-f64::MAX, f64::MAX, -1e308, 1e308];
        let batch = values
            .iter()
            .enumerate()
            .map(|(i, &v)| metric("wide", at(i as i64), v))
            .collect();
        store.insert_batch(batch).await.unwrap();
        for (w, n) in [
            (window(Some(at(0)), Some(at(2))), 2),
            (window(Some(at(2)), Some(at(4))), 2),
            (TimeWindow::ALL, 4),
        ] {
            let got = summary(&store, "wide", w).await;
            assert_eq!(got.count, n);
            for v in numbers(&got) {
                assert!(v.unwrap().is_finite(), "over {w:?}: {got:?}");
            }
            assert_eq!(got.sum, Some(0.0), "over {w:?}: {got:?}");
            assert_eq!(got.average, Some(0.0), "over {w:?}: {got:?}");
        }
    }

    /// Negative zero, tiny and subnormal values (the embedded store's
    /// `negative_zero_and_tiny_values`): exact min/max/latest, sums without loss, and
    /// percentiles within 1% (or below the smallest normal).
    pub async fn negative_zero_and_tiny_values(store: Arc<dyn MetricStore>) {
        let base = base();
        let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
        let values = [
            -5.0, 0.0, -0.0, 3.0, 1e-300, 2e-300, -1e-310, 7.5, -2.5, 0.0,
        ];
        let points: Vec<Metric> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| metric("n", at(i as i64 * 20_000), v))
            .collect();
        store.insert_batch(points.clone()).await.unwrap();
        for w in [
            TimeWindow::ALL,
            window(Some(at(30_000)), Some(at(150_000))),
            window(Some(at(70_000)), Some(at(130_000))),
        ] {
            let got = summary(&store, "n", w).await;
            assert_summary("n", &got, &points, "n", w);
            for v in numbers(&got) {
                assert!(v.unwrap().is_finite(), "over {w:?}: {got:?}");
            }
        }
        let subnormal = summary(&store, "n", window(Some(at(30_000)), Some(at(150_000)))).await;
        assert_eq!(subnormal.min, Some(-1e-310), "a subnormal kept exactly");
        let tiny = summary(&store, "n", window(Some(at(80_000)), Some(at(110_000)))).await;
        assert_eq!(tiny.count, 2);
        assert!((tiny.sum.unwrap() - 3e-300).abs() <= 1e-310, "{tiny:?}");
        assert!(
            (tiny.average.unwrap() - 1.5e-300).abs() <= 1e-310,
            "{tiny:?}"
        );
        assert_percentile("tiny", tiny.p50, &[1e-300, 2e-300], 0.5);
        let zeros = summary(&store, "n", window(Some(at(20_000)), Some(at(60_000)))).await;
        assert_eq!(zeros.count, 2);
        for v in numbers(&zeros) {
            assert_eq!(v, Some(0.0), "{zeros:?}");
        }
    }

    /// A write with an idempotency key is stored once: the same key and request again is
    /// the first answer and stores nothing, the key with another request stores nothing,
    /// and each key is on its own.
    pub async fn idempotent_writes_store_once(store: Arc<dyn MetricStore>) {
        use tally::domain::IdempotencyKey;
        use tally::store::{Idempotent, Recorded};
        let at = base();
        let idem = |key: &str, fingerprint: u8, answer: &'static str| Idempotent {
            key: IdempotencyKey::parse(key).unwrap(),
            fingerprint: [fingerprint; 32],
            response: bytes::Bytes::from_static(answer.as_bytes()),
        };
        let write = |v: f64| vec![metric("once", at, v), metric("once", at, v + 1.0)];
        let first = store.insert_idempotent(write(1.0), idem("k-1", 7, "{\"accepted\":2}"));
        assert_eq!(first.await.unwrap(), Recorded::Stored);
        let again = store.insert_idempotent(write(1.0), idem("k-1", 7, "ignored"));
        assert_eq!(
            again.await.unwrap(),
            Recorded::Replay(bytes::Bytes::from_static(b"{\"accepted\":2}"))
        );
        let other = store.insert_idempotent(write(5.0), idem("k-1", 8, "other"));
        assert_eq!(other.await.unwrap(), Recorded::Mismatch);
        assert_eq!(summary(&store, "once", TimeWindow::ALL).await.count, 2);
        let second = store.insert_idempotent(write(9.0), idem("k-2", 7, "{}"));
        assert_eq!(second.await.unwrap(), Recorded::Stored);
        let got = summary(&store, "once", TimeWindow::ALL).await;
        assert_eq!((got.count, got.max), (4, Some(10.0)));
        // Writes without a key are stored every time, beside them.
        store.insert_batch(write(20.0)).await.unwrap();
        store.insert_batch(write(20.0)).await.unwrap();
        assert_eq!(summary(&store, "once", TimeWindow::ALL).await.count, 8);
    }

    /// Window bounds finer than the stored microseconds: `[from, to)` still means
    /// `from <= ts < to` for the exact bound (as `TimeWindow::contains` says). A point at
    /// microsecond `t` is inside `[.., t + 0.5 µs)` and outside `[t + 0.5 µs, ..)`.
    pub async fn window_bounds_between_microseconds(store: Arc<dyn MetricStore>) {
        let t = base();
        let ns = |n: i64| t + chrono::Duration::nanoseconds(n);
        store
            .insert_batch(vec![metric("fine", t, 4.0)])
            .await
            .unwrap();
        for (w, count) in [
            (window(Some(ns(-1_000)), Some(ns(500))), 1),
            (window(None, Some(ns(500))), 1),
            (window(Some(ns(-500)), Some(ns(1))), 1),
            (window(Some(ns(500)), None), 0),
            (window(Some(ns(1)), Some(ns(2_000))), 0),
            (window(Some(ns(-1_500)), Some(ns(-500))), 0),
        ] {
            assert_eq!(w.contains(t), count == 1, "the test's own expectation");
            let got = summary(&store, "fine", w).await;
            assert_eq!(got.count, count, "over {w:?}: {got:?}");
        }
    }
}
