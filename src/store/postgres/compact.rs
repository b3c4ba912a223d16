//! The background pass that keeps the rollups, on every instance, one at a time (under
//! an advisory lock): it folds the partials writers append to `rollup_delta` into the
//! minute, hour and day levels and deletes them, in one transaction, and builds the
//! rollups of rows stored before rollups existed (`rollup_backfill`), a day at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{PgConnection, PgPool};
use tokio::time::Instant;

use super::PostgresStore;
use super::rollup::{
    self, Columns, DAY_US, HOUR_US, MINUTE_US, PartialKey, Partials, Row, Unpacked,
};
use super::schema::{bounded, partitioned_days};
use crate::store::rollup::{Agg, Sketch, Summary};

/// How often partials are folded in.
const INTERVAL: Duration = Duration::from_secs(1);
/// `rollup_delta` rows (one a commit) folded per transaction.
const FOLD_ROWS: i64 = 5_000;
/// How often `rollup_delta` is vacuumed: it is read whole by summaries, so the rows
/// folded and deleted must not pile up as dead tuples until autovacuum comes by.
const VACUUM_INTERVAL: Duration = Duration::from_secs(5);
/// Time one pass may spend before giving the next tick its turn.
const PASS_BUDGET: Duration = Duration::from_secs(2);
/// A backfill step reads a whole day of raw rows: its own, longer statement bound.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(600);
/// Any constant shared by every instance of tally ("tallyrol").
const LOCK_KEY: i64 = 0x7461_6c6c_7972_6f6c;
/// The levels, their tables and widths.
const LEVELS: [(&str, i64); 3] = [
    ("rollup_minute", MINUTE_US),
    ("rollup_hour", HOUR_US),
    ("rollup_day", DAY_US),
];

/// The backfill's watermark in microseconds (`i64::MAX` once done, `i64::MIN` before).
pub(super) const WATERMARK: &str = "SELECT CASE WHEN watermark = 'infinity' THEN 9223372036854775807 \
     WHEN watermark = '-infinity' THEN -9223372036854775808 \
     ELSE (extract(epoch FROM watermark) * 1000000)::int8 END FROM rollup_backfill";

/// Folds and backfills every `INTERVAL` once the schema is ready; logs each change
/// between working and failing (a database outage would otherwise log every second).
pub async fn run(store: Arc<PostgresStore>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut vacuumed = Instant::now();
    loop {
        tick.tick().await;
        if !store.is_ready() {
            continue;
        }
        let mut outcome = pass(&store).await;
        if outcome.is_ok() && vacuumed.elapsed() >= VACUUM_INTERVAL {
            vacuumed = Instant::now();
            let vacuum = sqlx::query("VACUUM rollup_delta").execute(&store.pool);
            outcome = bounded(store.timeout * 5, vacuum).await.map(|_| ());
        }
        match outcome {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(event = "rollups_resumed", "rollup maintenance works again");
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(event = "rollups_failing", error = %e,
                    "rollup maintenance failed; summaries stay correct, reading more partials, until it works");
            }
            _ => {}
        }
    }
}

/// Backfills (while rows from before rollups are left), then folds partials, within
/// `PASS_BUDGET`. Backfilling first lets a backfilled day take its own waiting partials.
async fn pass(store: &PostgresStore) -> Result<(), String> {
    let started = Instant::now();
    while store.watermark() != i64::MAX && started.elapsed() < PASS_BUDGET {
        let step = backfill(&store.pool, store.retention);
        match bounded(BACKFILL_TIMEOUT, step).await? {
            Some(w) => store.watermark.store(w, Ordering::Release),
            None => return Ok(()), // another instance holds the lock
        }
    }
    let bound = store.timeout * 5;
    while bounded(bound, fold(&store.pool, store.retention)).await? == Some(FOLD_ROWS as usize)
        && started.elapsed() < PASS_BUDGET
    {}
    Ok(())
}

/// Folds up to `FOLD_ROWS` rows of partials into the levels; returns how many, or `None`
/// when another pass (of this instance or another) holds the lock.
pub(super) async fn fold(pool: &PgPool, retention: Duration) -> Result<Option<usize>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !try_lock(&mut tx).await? {
        return Ok(None);
    }
    let claimed: Vec<(Vec<u8>,)> = sqlx::query_as(
        "DELETE FROM rollup_delta WHERE ctid = ANY(ARRAY( \
           SELECT ctid FROM rollup_delta LIMIT $1)) RETURNING partials",
    )
    .bind(FOLD_ROWS)
    .fetch_all(&mut *tx)
    .await?;
    if claimed.is_empty() {
        return Ok(Some(0));
    }
    let mut partials = Vec::new();
    for (packed,) in &claimed {
        rollup::unpack(packed, |_, _| true, &mut partials).map_err(decode_error)?;
    }
    fold_partials(&mut tx, partials, retention).await?;
    tx.commit().await?;
    Ok(Some(claimed.len()))
}

/// Merges partials into the three levels. Those of minutes past retention are dropped
/// (their rows are gone); those beyond the partitions made so far (TimescaleDB takes
/// rows at any time) are appended again as one row, to wait for their partition.
async fn fold_partials(
    tx: &mut PgConnection,
    partials: Vec<Unpacked>,
    retention: Duration,
) -> Result<(), sqlx::Error> {
    let (first, ahead) = partitioned_days(retention);
    let mut waiting = Partials::default();
    for p in partials.iter().filter(|p| p.minute >= ahead) {
        waiting.merge(&p.ty, MINUTE_US, p.minute, &p.agg, &p.sketch);
    }
    for row in waiting.pack() {
        sqlx::query(
            "INSERT INTO rollup_delta (minute_lo, minute_hi, partials) VALUES ($1, $2, $3)",
        )
        .bind(rollup::time(row.lo))
        .bind(rollup::time(row.hi))
        .bind(row.bytes)
        .execute(&mut *tx)
        .await?;
    }
    let foldable: Vec<&Unpacked> = partials
        .iter()
        .filter(|p| first <= p.minute && p.minute < ahead)
        .collect();
    if foldable.is_empty() {
        return Ok(());
    }
    for (table, width) in LEVELS {
        let mut fresh = Partials::default();
        for p in &foldable {
            fresh.merge(&p.ty, width, p.minute, &p.agg, &p.sketch);
        }
        merge_into(tx, table, fresh.into_map()).await?;
    }
    Ok(())
}

/// A rollup row with its key.
#[derive(sqlx::FromRow)]
struct KeyedRow {
    #[sqlx(rename = "type")]
    ty: String,
    bucket: DateTime<Utc>,
    #[sqlx(flatten)]
    row: Row,
}

/// Merges `fresh` into the rows of `table` (existing ones first: the fresh points came later).
async fn merge_into(
    tx: &mut PgConnection,
    table: &str,
    fresh: HashMap<PartialKey<'_>, Summary>,
) -> Result<(), sqlx::Error> {
    let (types, buckets): (Vec<&str>, Vec<DateTime<Utc>>) = fresh
        .keys()
        .map(|(ty, bucket, _)| (*ty, rollup::time(*bucket)))
        .unzip();
    let existing: Vec<KeyedRow> = sqlx::query_as(&format!(
        "SELECT r.type, r.bucket, r.count, r.min, r.max, r.first_ts, r.last_ts, \
           r.latest, r.state \
         FROM {table} r JOIN UNNEST($1::text[], $2::timestamptz[]) AS k(type, bucket) \
           ON r.type = k.type AND r.bucket = k.bucket"
    ))
    .bind(&types)
    .bind(&buckets)
    .fetch_all(&mut *tx)
    .await?;
    let mut existing: HashMap<(String, i64), (Agg, Sketch)> = existing
        .into_iter()
        .map(|k| {
            let decoded = rollup::decode(k.row).map_err(decode_error)?;
            Ok(((k.ty, rollup::micros(k.bucket)), decoded))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let mut columns = Columns::default();
    for ((ty, bucket, _), summary) in fresh {
        let mut merged = Summary::new();
        if let Some((agg, sketch)) = existing.remove(&(ty.to_owned(), bucket)) {
            merged.merge(&agg, &sketch);
        }
        merged.merge(&summary.agg, &summary.sketch);
        columns.push(ty, bucket, &merged);
    }
    upsert(tx, table, &columns).await
}

/// Writes `columns` into `table`, replacing rows with the same key.
async fn upsert(tx: &mut PgConnection, table: &str, c: &Columns) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {table} (type, bucket, count, sum, min, max, first_ts, last_ts, latest, state) \
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::float8[], \
           $5::float8[], $6::float8[], $7::timestamptz[], $8::timestamptz[], $9::float8[], \
           $10::bytea[]) \
         ON CONFLICT (type, bucket) DO UPDATE SET count = EXCLUDED.count, sum = EXCLUDED.sum, \
           min = EXCLUDED.min, max = EXCLUDED.max, first_ts = EXCLUDED.first_ts, \
           last_ts = EXCLUDED.last_ts, latest = EXCLUDED.latest, state = EXCLUDED.state"
    ))
    .bind(&c.types)
    .bind(&c.buckets)
    .bind(&c.counts)
    .bind(&c.sums)
    .bind(&c.mins)
    .bind(&c.maxs)
    .bind(&c.firsts)
    .bind(&c.lasts)
    .bind(&c.latests)
    .bind(&c.states)
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// Builds the rollups of one day of rows stored before rollups existed, from its raw
/// rows, and moves the watermark past it; returns the new watermark (`i64::MAX` when
/// no day is left), or `None` when another instance holds the lock.
///
/// One snapshot (repeatable read) sees the raw rows and the waiting partials alike: all
/// the partials are taken (those of other days folded, the day's own dropped), so every
/// raw row is counted once. A concurrent fold that slips in between the snapshot and the
/// lock fails this step, which is retried.
pub(super) async fn backfill(
    pool: &PgPool,
    retention: Duration,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "SET LOCAL statement_timeout = {}",
        BACKFILL_TIMEOUT.as_millis()
    ))
    .execute(&mut *tx)
    .await?;
    if !try_lock(&mut tx).await? {
        return Ok(None);
    }
    let (watermark,): (i64,) = sqlx::query_as(WATERMARK).fetch_one(&mut *tx).await?;
    let day = match watermark {
        i64::MAX => return Ok(Some(i64::MAX)),
        // The first step: from the day of the oldest row (one scan, once).
        i64::MIN => {
            let (first,): (Option<DateTime<Utc>>,) = sqlx::query_as("SELECT min(ts) FROM metrics")
                .fetch_one(&mut *tx)
                .await?;
            first.map_or(i64::MAX, |t| rollup::micros(t).div_euclid(DAY_US) * DAY_US)
        }
        w => w,
    };
    let (more,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM metrics WHERE ts >= $1)")
        .bind((day != i64::MAX).then(|| rollup::time(day)))
        .fetch_one(&mut *tx)
        .await?;
    if day == i64::MAX || !more {
        set_watermark(&mut tx, None).await?;
        tx.commit().await?;
        return Ok(Some(i64::MAX));
    }
    let claimed: Vec<(Vec<u8>,)> = sqlx::query_as("DELETE FROM rollup_delta RETURNING partials")
        .fetch_all(&mut *tx)
        .await?;
    let mut others = Vec::new();
    let not_today = |_: &str, minute: i64| minute.div_euclid(DAY_US) * DAY_US != day;
    for (packed,) in &claimed {
        rollup::unpack(packed, not_today, &mut others).map_err(decode_error)?;
    }
    fold_partials(&mut tx, others, retention).await?;
    let (from, to) = (rollup::time(day), rollup::time(day + DAY_US));
    let mut minutes: HashMap<(String, i64), Summary> = HashMap::new();
    {
        let mut rows = sqlx::query_as::<_, (String, DateTime<Utc>, f64)>(
            "SELECT type, ts, value FROM metrics WHERE ts >= $1 AND ts < $2",
        )
        .bind(from)
        .bind(to)
        .fetch(&mut *tx);
        while let Some((ty, ts, value)) = rows.try_next().await? {
            let ts = rollup::micros(ts);
            let minute = ts.div_euclid(MINUTE_US) * MINUTE_US;
            minutes
                .entry((ty, minute))
                .or_insert_with(Summary::new)
                .add(ts, value);
        }
    }
    for (table, width) in LEVELS {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE bucket >= $1 AND bucket < $2"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        let mut level = Partials::default();
        for ((ty, minute), summary) in &minutes {
            level.merge(ty, width, *minute, &summary.agg, &summary.sketch);
        }
        upsert(&mut tx, table, &level.columns()).await?;
    }
    let next = day + DAY_US;
    set_watermark(&mut tx, Some(next)).await?;
    tx.commit().await?;
    tracing::info!(event = "rollups_backfilled", day = %from.date_naive(),
        "built the rollups of a day of rows stored before rollups existed");
    Ok(Some(next))
}

async fn set_watermark(tx: &mut PgConnection, to: Option<i64>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE rollup_backfill SET watermark = coalesce($1, 'infinity')")
        .bind(to.map(rollup::time))
        .execute(&mut *tx)
        .await
        .map(|_| ())
}

async fn try_lock(tx: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    Ok(locked)
}

fn decode_error(e: crate::store::StoreError) -> sqlx::Error {
    sqlx::Error::Decode(e.to_string().into())
}
