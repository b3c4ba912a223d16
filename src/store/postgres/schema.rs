//! The schema over time: embedded migrations at startup (retried until the
//! database answers), then partitions kept ahead of the clock and dropped
//! whole once past retention (or TimescaleDB's chunks dropped), under an
//! advisory lock so instances don't race.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use super::PostgresStore;
use super::compact::WATERMARK;

pub static MIGRATOR: Migrator = sqlx::migrate!("src/store/postgres/migrations");

/// How often partitions are created ahead and expired ones dropped.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);
/// Days of partitions kept ready ahead of today.
const DAYS_AHEAD: u64 = 2;
/// Any constant shared by every instance of tally.
const LOCK_KEY: i64 = 0x7461_6c6c_7970_6172; // "tallypar"
/// How many `DATABASE_TIMEOUT`s the startup preparation, or one maintenance
/// pass, may take in all, on the client's clock. `statement_timeout` bounds
/// a statement only once the server has it: a connection that stops
/// answering would otherwise hold readiness (or partition upkeep) for good.
const PASS_TIMEOUTS: u32 = 15;

/// `work`, or an error once `bound` has passed.
pub(super) async fn bounded<T>(
    bound: Duration,
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(bound, work).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer from the database within {bound:?}")),
    }
}

/// Migrates (retrying with backoff), then maintains partitions forever.
pub async fn maintain(store: Arc<PostgresStore>, retention: Duration) {
    let bound = store.timeout * PASS_TIMEOUTS;
    let mut backoff = Duration::from_millis(200);
    loop {
        match bounded(bound, prepare(&store.pool, retention)).await {
            Ok((points, dropped, watermark)) => {
                store.points.store(points, Ordering::Relaxed);
                store.watermark.store(watermark, Ordering::Release);
                store.evicted.fetch_add(dropped, Ordering::Relaxed);
                store.ready.store(true, Ordering::Release);
                tracing::info!(event = "database_ready", points, "database schema is ready");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "database not ready");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        match bounded(bound, partitions(&store.pool, retention)).await {
            Ok(dropped) => {
                store.evicted.fetch_add(dropped, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "partition maintenance failed; will retry"),
        }
        let expired = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= now()")
            .execute(&store.pool);
        if let Err(e) = bounded(bound, expired).await {
            tracing::warn!(error = %e, "deleting expired idempotency keys failed; will retry");
        }
    }
}

/// Migrations and partitions; the current point count, the rows dropped and the
/// rollups' backfill watermark.
async fn prepare(pool: &PgPool, retention: Duration) -> Result<(u64, u64, i64), sqlx::Error> {
    MIGRATOR.run(pool).await?;
    let (watermark,): (i64,) = sqlx::query_as(WATERMARK).fetch_one(pool).await?;
    // Counted before the drop: `stats` subtracts what retention drops.
    let count = super::listing::points(pool, watermark == i64::MAX).await?;
    let dropped = partitions(pool, retention).await?;
    Ok((count, dropped, watermark))
}

/// Tables partitioned by day: the raw rows and their minute rollups, kept and dropped
/// together (hour and day rollups, 25 rows a type and day, are deleted by range).
const DAILY: [&str; 2] = ["metrics", "rollup_minute"];

/// Creates missing day partitions from the retention horizon to a few days
/// ahead and drops those wholly past retention, for the raw rows and their minute
/// rollups alike, and deletes the hour and day rollups and waiting partials of the
/// days dropped; returns the raw rows dropped. With TimescaleDB, `metrics` is a
/// hypertable and drops its expired chunks instead.
pub async fn partitions(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    let horizon = horizon(retention);
    let first = horizon.date_naive();
    let last = Utc::now().date_naive() + Days::new(DAYS_AHEAD);
    let mut dropped = 0u64;
    for table in DAILY {
        let (partitioned,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p \
             JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = $1)",
        )
        .bind(table)
        .fetch_one(&mut *tx)
        .await?;
        if !partitioned {
            // A hypertable: TimescaleDB drops whole chunks.
            sqlx::query("SELECT drop_chunks($1::regclass, older_than => $2)")
                .bind(table)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
            continue;
        }
        let existing: Vec<(String,)> = sqlx::query_as(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
        )
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
        let existing: Vec<NaiveDate> = existing
            .iter()
            .filter_map(|(n,)| day_of(table, n))
            .collect();
        let mut day = first;
        while day <= last {
            if !existing.contains(&day) {
                let next = day + Days::new(1);
                sqlx::query(&format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} FOR VALUES FROM ('{day}') TO ('{next}')",
                    name_of(table, day)
                ))
                .execute(&mut *tx)
                .await?;
            }
            day = day + Days::new(1);
        }
        for day in existing {
            // The partition's last instant is before the horizon: nothing in it is retained.
            if day + Days::new(1) <= first {
                let name = name_of(table, day);
                if table == "metrics" {
                    let (rows,): (i64,) =
                        sqlx::query_as(&format!("SELECT count(*)::int8 FROM {name}"))
                            .fetch_one(&mut *tx)
                            .await?;
                    dropped += rows.max(0) as u64;
                    tracing::info!(event = "partition_dropped", partition = %name, rows, "dropped a partition past retention");
                }
                sqlx::query(&format!("DROP TABLE {name}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    let first = first.and_time(chrono::NaiveTime::MIN).and_utc();
    for expired in [
        "DELETE FROM rollup_hour WHERE bucket < $1",
        "DELETE FROM rollup_day WHERE bucket < $1",
        // Partials waiting for those days (the pass drops those of rows that straddle).
        "DELETE FROM rollup_delta WHERE minute_hi < $1",
    ] {
        sqlx::query(expired).bind(first).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(dropped)
}

/// The oldest instant retained.
pub(super) fn horizon(retention: Duration) -> chrono::DateTime<Utc> {
    chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| Utc::now().checked_sub_signed(r))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
}

/// The days partitions exist for, as the start of the first and the end of the last
/// (µs): from the retention horizon's day to `DAYS_AHEAD` days ahead (the last one is
/// created up to a maintenance interval late, so one day less is promised).
pub(super) fn partitioned_days(retention: Duration) -> (i64, i64) {
    let start = |day: NaiveDate| {
        day.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros()
    };
    let today = Utc::now().date_naive();
    (
        start(horizon(retention).date_naive()),
        start(today + Days::new(DAYS_AHEAD)),
    )
}

/// `metrics_p20261130` for `metrics` on 2026-11-30.
fn name_of(table: &str, day: NaiveDate) -> String {
    format!("{table}_p{}", day.format("%Y%m%d"))
}

fn day_of(table: &str, name: &str) -> Option<NaiveDate> {
    let day = name.strip_prefix(table)?.strip_prefix("_p")?;
    NaiveDate::parse_from_str(day, "%Y%m%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(name_of("metrics", day), "metrics_p20261130");
        assert_eq!(day_of("metrics", "metrics_p20261130"), Some(day));
        assert_eq!(day_of("rollup_hour", "rollup_hour_p20261130"), Some(day));
        assert_eq!(day_of("metrics", "metrics_default"), None);
        assert_eq!(day_of("metrics", "other_p20261130"), None);
        assert_eq!(day_of("rollup_hour", "rollup_hour_day_p20261130"), None);
    }
}
