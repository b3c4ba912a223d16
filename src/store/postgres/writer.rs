//! Group commit: concurrent ingests are gathered into one multi-row INSERT
//! (one transaction), flushed after `commit_delay` or `commit_rows` rows,
//! whichever comes first, with at most `max_commits` commits at a time (while
//! they run, the next batch grows).
//! Each caller is told the outcome of the transaction that held its rows, so
//! a 201 is only ever sent after the commit. A caller with an idempotency key
//! has its key recorded by the same statement, and its rows inserted only if
//! the key was new (or its earlier record had expired).
//! The same statement appends the batch's partial aggregates, one per type and minute
//! (and idempotency key), to `rollup_delta`: a rollup never disagrees with the rows
//! committed, and concurrent writers never contend for a row.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::guarded;
use super::rollup::{Columns, MINUTE_US, Partials};
use crate::breaker::Breaker;
use crate::domain::Metric;
use crate::store::StoreError;

/// Binds the partials' columns as `$4` to `$13` (after the raw rows' three).
macro_rules! bind_deltas {
    ($query:expr, $d:expr $(,)?) => {{
        let d: &Columns = $d;
        $query
            .bind(&d.types)
            .bind(&d.buckets)
            .bind(&d.counts)
            .bind(&d.sums)
            .bind(&d.mins)
            .bind(&d.maxs)
            .bind(&d.firsts)
            .bind(&d.lasts)
            .bind(&d.latests)
            .bind(&d.states)
    }};
}

/// One caller's rows and where to send the commit's outcome.
pub struct Pending {
    pub rows: Vec<Metric>,
    pub key: Option<PendingKey>,
    pub done: oneshot::Sender<Result<Committed, StoreError>>,
}

/// An idempotency key to record with a caller's rows.
pub struct PendingKey {
    pub key: String,
    pub fingerprint: Vec<u8>,
    pub response: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

/// What the commit did with one caller's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Stored,
    /// Its key is recorded already (by another write): its rows were not inserted.
    KeyTaken,
}

pub struct Writer {
    pub pool: PgPool,
    pub breaker: Arc<Breaker>,
    pub timeout: Duration,
    pub commit_delay: Duration,
    pub commit_rows: usize,
    pub max_commits: usize,
    /// Rows committed (added to the store's point count).
    pub committed: Arc<AtomicU64>,
}

impl Writer {
    pub async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let slots = Arc::new(Semaphore::new(self.max_commits));
        let this = Arc::new(self);
        while let Some(first) = rx.recv().await {
            let mut rows = first.rows.len();
            let mut batch = vec![first];
            let deadline = Instant::now() + this.commit_delay;
            while rows < this.commit_rows {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => {
                        rows += p.rows.len();
                        batch.push(p);
                    }
                    _ => break,
                }
            }
            // Waiting for a slot lets the next batch grow meanwhile.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let this = Arc::clone(&this);
            tokio::spawn(async move {
                let outcome = this.commit(&batch, rows).await;
                drop(slot);
                for p in batch {
                    let answer = match &outcome {
                        Ok(recorded) => Ok(match &p.key {
                            Some(k) if !recorded.contains(&k.key) => Committed::KeyTaken,
                            _ => Committed::Stored,
                        }),
                        Err(e) => Err(e.clone()),
                    };
                    let _ = p.done.send(answer);
                }
            });
        }
    }

    /// Commits the batch; returns the keys recorded (their callers' rows are in).
    async fn commit(&self, batch: &[Pending], rows: usize) -> Result<HashSet<String>, StoreError> {
        let mut ts: Vec<DateTime<Utc>> = Vec::with_capacity(rows);
        let mut types: Vec<&str> = Vec::with_capacity(rows);
        let mut values: Vec<f64> = Vec::with_capacity(rows);
        let keyed = batch.iter().any(|p| p.key.is_some());
        let mut row_keys: Vec<Option<&str>> = Vec::with_capacity(if keyed { rows } else { 0 });
        let mut partials = Partials::default();
        for p in batch {
            let key = p.key.as_ref().map(|k| k.key.as_str());
            for m in &p.rows {
                ts.push(m.timestamp);
                types.push(m.metric_type.as_str());
                values.push(m.value);
                if keyed {
                    row_keys.push(key);
                }
                let micros = m.timestamp.timestamp_micros();
                partials.add(m.metric_type.as_str(), key, MINUTE_US, micros, m.value);
            }
        }
        let deltas = partials.columns();
        if !keyed {
            // One statement is one transaction: every caller's rows and partials or none.
            let insert = bind_deltas!(
                sqlx::query(
                    "WITH raw AS ( \
                       INSERT INTO metrics (ts, type, value) \
                       SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::float8[])) \
                     INSERT INTO rollup_delta \
                       (type, minute, count, sum, min, max, first_ts, last_ts, latest, state) \
                     SELECT * FROM UNNEST($4::text[], $5::timestamptz[], $6::int8[], $7::float8[], \
                       $8::float8[], $9::float8[], $10::timestamptz[], $11::timestamptz[], \
                       $12::float8[], $13::bytea[])",
                )
                .bind(&ts)
                .bind(&types)
                .bind(&values),
                &deltas,
            )
            .execute(&self.pool);
            guarded(&self.breaker, self.timeout, "insert", insert).await?;
            self.committed.fetch_add(rows as u64, Ordering::Relaxed);
            return Ok(HashSet::new());
        }
        let keys: Vec<&PendingKey> = batch.iter().filter_map(|p| p.key.as_ref()).collect();
        // Still one statement: the keys that are new (or whose record expired) are
        // recorded, and the rows (and partials) of the callers without a key or with a
        // recorded one are inserted, together or not at all.
        let insert = bind_deltas!(
            sqlx::query_scalar::<_, String>(
                "WITH recorded AS ( \
                   INSERT INTO idempotency_keys (key, fingerprint, response, expires_at) \
                   SELECT * FROM UNNEST($15::text[], $16::bytea[], $17::bytea[], $18::timestamptz[]) \
                   ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
                     response = EXCLUDED.response, expires_at = EXCLUDED.expires_at \
                     WHERE idempotency_keys.expires_at <= now() \
                   RETURNING key), \
                 inserted AS ( \
                   INSERT INTO metrics (ts, type, value) \
                   SELECT u.ts, u.type, u.value \
                   FROM UNNEST($1::timestamptz[], $2::text[], $3::float8[], $19::text[]) \
                     AS u(ts, type, value, key) \
                   WHERE u.key IS NULL OR u.key IN (SELECT key FROM recorded) \
                   RETURNING 1), \
                 rolled AS ( \
                   INSERT INTO rollup_delta \
                     (type, minute, count, sum, min, max, first_ts, last_ts, latest, state) \
                   SELECT d.type, d.minute, d.count, d.sum, d.min, d.max, d.first_ts, d.last_ts, \
                     d.latest, d.state \
                   FROM UNNEST($4::text[], $5::timestamptz[], $6::int8[], $7::float8[], \
                     $8::float8[], $9::float8[], $10::timestamptz[], $11::timestamptz[], \
                     $12::float8[], $13::bytea[], $14::text[]) \
                     AS d(type, minute, count, sum, min, max, first_ts, last_ts, latest, state, key) \
                   WHERE d.key IS NULL OR d.key IN (SELECT key FROM recorded) \
                   RETURNING 1) \
                 SELECT key FROM recorded",
            )
            .bind(&ts)
            .bind(&types)
            .bind(&values),
            &deltas,
        )
        .bind(&deltas.keys)
        .bind(keys.iter().map(|k| k.key.as_str()).collect::<Vec<_>>())
        .bind(
            keys.iter()
                .map(|k| k.fingerprint.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(
            keys.iter()
                .map(|k| k.response.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(keys.iter().map(|k| k.expires_at).collect::<Vec<_>>())
        .bind(&row_keys)
        .fetch_all(&self.pool);
        let recorded: HashSet<String> = guarded(&self.breaker, self.timeout, "insert", insert)
            .await?
            .into_iter()
            .collect();
        let stored: usize = batch
            .iter()
            .filter(|p| p.key.as_ref().is_none_or(|k| recorded.contains(&k.key)))
            .map(|p| p.rows.len())
            .sum();
        self.committed.fetch_add(stored as u64, Ordering::Relaxed);
        Ok(recorded)
    }
}
