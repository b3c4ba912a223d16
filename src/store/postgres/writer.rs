//! Group commit: concurrent ingests are gathered into one multi-row INSERT
//! (one transaction), flushed after `commit_delay` or `commit_rows` rows,
//! whichever comes first, with at most `max_commits` commits at a time (while
//! they run, the next batch grows).
//! Each caller is told the outcome of the transaction that held its rows, so
//! a 201 is only ever sent after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::guarded;
use crate::breaker::Breaker;
use crate::domain::Metric;
use crate::store::StoreError;

/// One caller's rows and where to send the commit's outcome.
pub struct Pending {
    pub rows: Vec<Metric>,
    pub done: oneshot::Sender<Result<(), StoreError>>,
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
                    let _ = p.done.send(outcome.clone());
                }
            });
        }
    }

    async fn commit(&self, batch: &[Pending], rows: usize) -> Result<(), StoreError> {
        let mut ts: Vec<DateTime<Utc>> = Vec::with_capacity(rows);
        let mut types: Vec<&str> = Vec::with_capacity(rows);
        let mut values: Vec<f64> = Vec::with_capacity(rows);
        for m in batch.iter().flat_map(|p| &p.rows) {
            ts.push(m.timestamp);
            types.push(m.metric_type.as_str());
            values.push(m.value);
        }
        // One statement is one transaction: every caller's rows or none.
        let insert = sqlx::query(
            "INSERT INTO metrics (ts, type, value) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::float8[])",
        )
        .bind(&ts)
        .bind(&types)
        .bind(&values)
        .execute(&self.pool);
        guarded(&self.breaker, self.timeout, "insert", insert).await?;
        self.committed.fetch_add(rows as u64, Ordering::Relaxed);
        Ok(())
    }
}
