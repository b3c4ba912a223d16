//! PostgreSQL's own promises about rollups: retention drops their partitions with the
//! raw ones, and a database from before rollups gets them built in the background while
//! its summaries stay correct.

use std::collections::HashSet;

use rand::SeedableRng;
use sqlx::PgPool;

use super::*;

/// Partitions of `table` by the day they hold (`metrics_p20261130` -> `20261130`).
async fn partition_days(pool: &PgPool, table: &str) -> HashSet<String> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap();
    names
        .into_iter()
        .filter_map(|(n,)| Some(n.strip_prefix(&format!("{table}_p"))?.to_owned()))
        .collect()
}

/// Partitioned by day; hour and day rollups are plain tables, their rows deleted by range.
const TABLES: [&str; 2] = ["metrics", "rollup_minute"];

/// Rows of the hour and day rollups in the UTC day of `t`.
async fn rollup_rows(pool: &PgPool, t: DateTime<Utc>) -> i64 {
    let day = t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    let (rows,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rollup_hour WHERE bucket >= $1 AND bucket < $2) \
              + (SELECT count(*) FROM rollup_day WHERE bucket >= $1 AND bucket < $2)",
    )
    .bind(day)
    .bind(day + chrono::Duration::days(1))
    .fetch_one(pool)
    .await
    .unwrap();
    rows
}

/// Rows five days old and one day old, rolled up; an instance with three days' retention
/// drops the old day's partitions of the raw rows and of the minute rollups together,
/// deletes its hour and day rollups, and the summaries hold the recent day only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_rollup_partitions_with_the_rows() {
    let first = Backend::postgres("retention_drops_rollups").await;
    let (_, server, url) = first.postgres.clone().unwrap();
    let now = Utc::now();
    let old_day = now - chrono::Duration::days(5);
    let recent_day = now - chrono::Duration::days(1);
    let points: Vec<Metric> = (0..200)
        .map(|i| {
            let day = if i % 2 == 0 { old_day } else { recent_day };
            metric("kept", day + chrono::Duration::seconds(i * 30), i as f64)
        })
        .collect();
    first.store().insert_batch(points.clone()).await.unwrap();
    first.settle().await;
    let pool = PgPool::connect(&url).await.unwrap();
    let old = old_day.format("%Y%m%d").to_string();
    for table in TABLES {
        assert!(
            partition_days(&pool, table).await.contains(&old),
            "{table} has {old}"
        );
    }
    drop(first);

    let second = Backend::postgres_at(server, url, Duration::from_secs(3 * 86_400)).await;
    for table in TABLES {
        let days = partition_days(&pool, table).await;
        assert!(!days.contains(&old), "{table} still has {old}: {days:?}");
        assert!(days.contains(&recent_day.format("%Y%m%d").to_string()));
    }
    assert_eq!(
        rollup_rows(&pool, old_day).await,
        0,
        "hour and day rollups of {old}"
    );
    assert!(rollup_rows(&pool, recent_day).await >= 2);
    let kept: Vec<Metric> = points
        .iter()
        .filter(|m| m.timestamp >= recent_day)
        .cloned()
        .collect();
    let store = second.store();
    for w in [TimeWindow::ALL, window(Some(old_day), Some(now))] {
        let got = summary(&store, "kept", w).await;
        assert_summary("after retention", &got, &kept, "kept", w);
    }
    assert_eq!(store.stats().points, 100, "{:?}", store.stats());
}

/// The watermark of the rollups' backfill, as text.
async fn watermark(pool: &PgPool) -> String {
    let (w,): (String,) = sqlx::query_as("SELECT watermark::text FROM rollup_backfill")
        .fetch_one(pool)
        .await
        .unwrap();
    w
}

/// A database written before rollups existed (rows stored, then the rollup migration
/// undone) is migrated by the next instance: its summaries are right from the start
/// (raw rows), while the backfill runs (rollups before the watermark, raw rows after,
/// points written meanwhile counted once), and once it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_stored_before_rollups_get_them_in_the_background() {
    let first = Backend::postgres("backfill").await;
    let (_, server, url) = first.postgres.clone().unwrap();
    let base = base();
    let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
    let names = ["old.a", "old.b"];
    let mut points: Vec<Metric> = (0..1_200i64)
        .map(|i| {
            metric(
                names[(i % 2) as usize],
                at(i * 173_177),
                ((i * 31) % 97) as f64,
            )
        })
        .collect();
    first.store().insert_batch(points.clone()).await.unwrap();
    drop(first);
    let pool = PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE rollup_delta, rollup_minute, rollup_hour, rollup_day, rollup_backfill; \
         DELETE FROM _sqlx_migrations WHERE version = 3",
    )
    .execute(&pool)
    .await
    .unwrap();

    // Hold the rollup passes' lock: the backfill cannot start yet.
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x7461_6c6c_7972_6f6ci64)
        .execute(&mut *holder)
        .await
        .unwrap();
    let second = Backend::postgres_at(Arc::clone(&server), url.clone(), RETENTION).await;
    assert_eq!(
        watermark(&pool).await,
        "-infinity",
        "the migration saw rows"
    );
    let store = second.store();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xbac4_f111);
    let windows = windows(&mut rng, base);
    check("before the backfill", &store, &points, &names, &windows).await;
    // Written meanwhile, into the days to be backfilled: partials wait.
    let late: Vec<Metric> = (0..100i64)
        .map(|i| metric(names[(i % 2) as usize], at(i * 1_733_333 + 7), -(i as f64)))
        .collect();
    store.insert_batch(late.clone()).await.unwrap();
    points.extend(late);
    check("partials waiting", &store, &points, &names, &windows).await;

    // Let the backfill run, checking the summaries at whatever point it has reached.
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(0x7461_6c6c_7972_6f6ci64)
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        check("during the backfill", &store, &points, &names, &windows).await;
        if watermark(&pool).await == "infinity" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backfill did not finish"
        );
    }
    second.settle().await;
    check("after the backfill", &store, &points, &names, &windows).await;
    let (days,): (i64,) = sqlx::query_as("SELECT count(*) FROM rollup_day")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        days >= 6,
        "day rollups of both types over 3 days and more: {days}"
    );
}

fn windows(rng: &mut rand::rngs::StdRng, base: DateTime<Utc>) -> Vec<TimeWindow> {
    use rand::Rng;
    let mut windows = vec![TimeWindow::ALL];
    for i in 0..8i64 {
        let from = base + chrono::Duration::milliseconds(rng.random_range(0..2 * DAY_MS));
        let to = from + chrono::Duration::milliseconds(rng.random_range(1..2 * DAY_MS) + i);
        windows.push(window(Some(from), (i % 3 != 0).then_some(to)));
    }
    windows
}
