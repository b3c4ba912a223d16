//! Group commit: concurrent ingests are gathered into one multi-row INSERT
//! (one transaction), flushed after `commit_delay` or `commit_rows` rows,
//! whichever comes first, with at most `max_commits` commits at a time (while
//! they run, the next batch grows).
//! Each caller is told the outcome of the transaction that held its rows, so
//! a 201 is only ever sent after the commit. A caller with an idempotency key
//! has its key recorded by the same statement, and its rows inserted only if
//! the key was new (or its earlier record had expired).
//! The same statement appends the batch's partial aggregates (one per type and minute),
//! packed into one `rollup_delta` row (one per idempotency key): a rollup never
//! disagrees with the rows committed, and concurrent writers never contend for a row.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::guarded;
use super::rollup::{self, MINUTE_US, Packed, Partials};
use crate::breaker::Breaker;
use crate::domain::Metric;
use crate::store::StoreError;

/// The packed partials' columns, bound as `$4` to `$7` (after the raw rows' three).
struct Deltas {
    los: Vec<DateTime<Utc>>,
    his: Vec<DateTime<Utc>>,
    packed: Vec<Vec<u8>>,
    keys: Vec<Option<String>>,
}

impl Deltas {
    fn of(rows: Vec<Packed>) -> Self {
        let mut d = Deltas {
            los: Vec::with_capacity(rows.len()),
            his: Vec::with_capacity(rows.len()),
            packed: Vec::with_capacity(rows.len()),
            keys: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            d.los.push(rollup::time(row.lo));
            d.his.push(rollup::time(row.hi));
            d.packed.push(row.bytes);
            d.keys.push(row.key);
        }
        d
    }
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
        let deltas = Deltas::of(partials.pack());
        if !keyed {
            // One statement is one transaction: every caller's rows and partials or none.
            let insert = sqlx::query(
                "WITH raw AS ( \
                   INSERT INTO metrics (ts, type, value) \
                   SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::float8[])) \
                 INSERT INTO rollup_delta (minute_lo, minute_hi, partials) \
                 SELECT * FROM UNNEST($4::timestamptz[], $5::timestamptz[], $6::bytea[])",
            )
            .bind(&ts)
            .bind(&types)
            .bind(&values)
            .bind(&deltas.los)
            .bind(&deltas.his)
            .bind(&deltas.packed)
            .execute(&self.pool);
            guarded(&self.breaker, self.timeout, "insert", insert).await?;
            self.committed.fetch_add(rows as u64, Ordering::Relaxed);
            return Ok(HashSet::new());
        }
        let keys: Vec<&PendingKey> = batch.iter().filter_map(|p| p.key.as_ref()).collect();
        // Still one statement: the keys that are new (or whose record expired) are
        // recorded, and the rows (and partials) of the callers without a key or with a
        // recorded one are inserted, together or not at all.
        let insert = sqlx::query_scalar::<_, String>(
            "WITH recorded AS ( \
               INSERT INTO idempotency_keys (key, fingerprint, response, expires_at) \
               SELECT * FROM UNNEST($8::text[], $9::bytea[], $10::bytea[], $11::timestamptz[]) \
               ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
                 response = EXCLUDED.response, expires_at = EXCLUDED.expires_at \
                 WHERE idempotency_keys.expires_at <= now() \
               RETURNING key), \
             inserted AS ( \
               INSERT INTO metrics (ts, type, value) \
               SELECT u.ts, u.type, u.value \
               FROM UNNEST($1::timestamptz[], $2::text[], $3::float8[], $12::text[]) \
                 AS u(ts, type, value, key) \
               WHERE u.key IS NULL OR u.key IN (SELECT key FROM recorded) \
               RETURNING 1), \
             rolled AS ( \
               INSERT INTO rollup_delta (minute_lo, minute_hi, partials) \
               SELECT d.lo, d.hi, d.partials \
               FROM UNNEST($4::timestamptz[], $5::timestamptz[], $6::bytea[], $7::text[]) \
                 AS d(lo, hi, partials, key) \
               WHERE d.key IS NULL OR d.key IN (SELECT key FROM recorded) \
               RETURNING 1) \
             SELECT key FROM recorded",
        )
        .bind(&ts)
        .bind(&types)
        .bind(&values)
        .bind(&deltas.los)
        .bind(&deltas.his)
        .bind(&deltas.packed)
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
