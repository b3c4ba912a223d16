//! The PostgreSQL backend (`DATABASE_URL`): a pooled connection with bounded
//! timeouts, migrations embedded in the binary and applied at startup (under
//! the migrator's advisory lock, so several instances may start at once),
//! group-committed writes, and summaries computed in SQL. Every call goes
//! through the `database` circuit breaker, so an outage fails fast instead of
//! making requests wait.

mod compact;
mod guard;
mod listing;
mod rollup;
mod schema;
mod summary;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::{mpsc, oneshot};

use super::{Idempotent, MetricStore, Recorded, StoreError, StoreStats};
use crate::breaker::Breaker;
use crate::config::DatabaseSettings;
use crate::domain::{Aggregates, Metric, MetricType, SeriesWindow, TimeWindow, TypeInfo};
use guard::guarded;
use writer::{Committed, Pending, PendingKey, Writer};

/// Name of the breaker around the database.
pub const BREAKER: &str = "database";
/// Ingests queued for the writer; beyond this, writes are refused at once.
const QUEUE: usize = 10_000;
/// How often the database is asked `SELECT 1`, so health sees an outage (and the
/// recovery) within seconds even when no request touches the database.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

pub struct PostgresStore {
    pool: PgPool,
    breaker: Arc<Breaker>,
    timeout: Duration,
    idempotency_ttl: Duration,
    /// `TALLY_RETENTION`: partitions are kept from `now - retention` on.
    retention: Duration,
    writes: mpsc::Sender<Pending>,
    /// Set once migrations have run; until then every call is refused.
    ready: Arc<AtomicBool>,
    /// Rollups cover the times before this (µs; `i64::MAX` once every row stored before
    /// rollups existed is rolled up). Only grows, so a stale value is merely slower.
    watermark: AtomicI64,
    /// Whether the last probe (`SELECT 1`, bounded by `DATABASE_TIMEOUT`) was answered.
    reachable: AtomicBool,
    points: Arc<AtomicU64>,
    committed: Arc<AtomicU64>,
    evicted: Arc<AtomicU64>,
    types: Arc<AtomicU64>,
}

impl PostgresStore {
    /// Connects lazily and prepares the schema in the background (retrying
    /// until the database answers), so the service starts during an outage.
    pub fn start(
        settings: &DatabaseSettings,
        url: &str,
        retention: Duration,
        idempotency_ttl: Duration,
        breaker: Arc<Breaker>,
    ) -> Result<(Arc<Self>, Vec<tokio::task::JoinHandle<()>>), StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid DATABASE_URL: {e}")))?
            .application_name("tally")
            // The server gives up on any statement past the bound, too.
            .options([(
                "statement_timeout",
                settings.timeout.as_millis().to_string(),
            )]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.pool_size)
            .acquire_timeout(settings.timeout)
            .connect_lazy_with(options);
        let (tx, rx) = mpsc::channel(QUEUE);
        let committed = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            pool: pool.clone(),
            breaker: Arc::clone(&breaker),
            timeout: settings.timeout,
            commit_delay: settings.commit_delay,
            commit_rows: settings.commit_rows,
            max_commits: settings.max_commits,
            committed: Arc::clone(&committed),
        };
        let store = Arc::new(Self {
            pool,
            breaker,
            timeout: settings.timeout,
            idempotency_ttl,
            retention,
            writes: tx,
            ready: Arc::default(),
            watermark: AtomicI64::new(i64::MIN),
            reachable: AtomicBool::new(false),
            points: Arc::default(),
            committed,
            evicted: Arc::default(),
            types: Arc::default(),
        });
        let tasks = vec![
            tokio::spawn(writer.run(rx)),
            tokio::spawn(schema::maintain(Arc::clone(&store), retention)),
            tokio::spawn(Arc::clone(&store).probe()),
            tokio::spawn(compact::run(Arc::clone(&store))),
        ];
        Ok((store, tasks))
    }

    /// Asks the database `SELECT 1` every `PROBE_INTERVAL` (outside the breaker: it is
    /// how an outage is seen without traffic), logging each change.
    async fn probe(self: Arc<Self>) {
        let mut tick = tokio::time::interval(PROBE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let select = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.pool);
            let up = matches!(tokio::time::timeout(self.timeout, select).await, Ok(Ok(1)));
            if self.reachable.swap(up, Ordering::AcqRel) != up {
                match up {
                    true => tracing::info!(event = "database_connected", "the database answers"),
                    false => tracing::warn!(
                        event = "database_disconnected",
                        "the database does not answer; writes and reads fail until it does"
                    ),
                }
            }
        }
    }

    /// Sends a write to the group-commit writer and waits for its commit.
    async fn write(
        &self,
        metrics: Vec<Metric>,
        key: Option<PendingKey>,
    ) -> Result<Committed, StoreError> {
        self.check_ready()?;
        let (done, outcome) = oneshot::channel();
        self.writes
            .try_send(Pending {
                rows: metrics,
                key,
                done,
            })
            .map_err(|_| StoreError::Unavailable("the database writer is saturated".into()))?;
        // The writer answers within its own timeout; this bound is a backstop.
        match tokio::time::timeout(self.timeout * 2, outcome).await {
            Ok(Ok(result)) => result,
            _ => Err(StoreError::Unavailable(
                "the write's outcome is unknown; it was not acknowledged".into(),
            )),
        }
    }

    /// Folds every waiting partial into the rollups and finishes building the rollups of
    /// rows stored before they existed, now, rather than within the background pass's
    /// next seconds. For tests and tools: summaries are correct either way.
    pub async fn compact(&self) -> Result<(), StoreError> {
        self.check_ready()?;
        let failed = |e: sqlx::Error| StoreError::Unavailable(format!("compaction failed: {e}"));
        let deadline = tokio::time::Instant::now() + self.timeout * 100;
        loop {
            let progress = if self.watermark() != i64::MAX {
                let step = compact::backfill(&self.pool, self.retention)
                    .await
                    .map_err(failed)?;
                step.map(|w| self.watermark.store(w, Ordering::Release))
                    .is_some()
            } else {
                match compact::fold(&self.pool, self.retention)
                    .await
                    .map_err(failed)?
                {
                    Some(0) => return Ok(()),
                    folded => folded.is_some(),
                }
            };
            if progress {
                continue;
            }
            // Another pass holds the lock: wait for it.
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Unavailable(
                    "compaction: another pass held the lock throughout".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn watermark(&self) -> i64 {
        self.watermark.load(Ordering::Acquire)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn check_ready(&self) -> Result<(), StoreError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the database is not reachable yet (schema not prepared)".into(),
            ))
        }
    }
}

#[async_trait]
impl MetricStore for PostgresStore {
    async fn insert_batch(&self, metrics: Vec<Metric>) -> Result<(), StoreError> {
        if metrics.is_empty() {
            return self.check_ready();
        }
        self.write(metrics, None).await.map(|_| ())
    }

    async fn insert_idempotent(
        &self,
        metrics: Vec<Metric>,
        idem: Idempotent,
    ) -> Result<Recorded, StoreError> {
        let key = PendingKey {
            key: idem.key.as_str().to_owned(),
            fingerprint: idem.fingerprint.to_vec(),
            response: idem.response.to_vec(),
            expires_at: Utc::now()
                + chrono::Duration::from_std(self.idempotency_ttl).unwrap_or(chrono::Duration::MAX),
        };
        if self.write(metrics, Some(key)).await? == Committed::Stored {
            return Ok(Recorded::Stored);
        }
        // Recorded by an earlier write: the same request gets its answer again.
        let lookup = sqlx::query_as::<_, (Vec<u8>, Vec<u8>)>(
            "SELECT fingerprint, response FROM idempotency_keys \
             WHERE key = $1 AND expires_at > now()",
        )
        .bind(idem.key.as_str())
        .fetch_optional(&self.pool);
        match guarded(&self.breaker, self.timeout, "query", lookup).await? {
            Some((fingerprint, response)) if fingerprint == idem.fingerprint => {
                Ok(Recorded::Replay(response.into()))
            }
            Some(_) => Ok(Recorded::Mismatch),
            None => Err(StoreError::Unavailable(
                "the idempotency key expired while this write ran; retry".into(),
            )),
        }
    }

    async fn summarize(
        &self,
        metric_type: &MetricType,
        window: TimeWindow,
    ) -> Result<Aggregates, StoreError> {
        self.check_ready()?;
        summary::summarize(self, metric_type, window).await
    }

    async fn series(
        &self,
        metric_type: &MetricType,
        window: SeriesWindow,
    ) -> Result<Vec<Aggregates>, StoreError> {
        self.check_ready()?;
        summary::series(self, metric_type, window).await
    }

    async fn recent(
        &self,
        metric_type: &MetricType,
        limit: usize,
    ) -> Result<Vec<Metric>, StoreError> {
        self.check_ready()?;
        let query = sqlx::query_as::<_, (DateTime<Utc>, f64)>(
            "SELECT ts, value FROM metrics WHERE type = $1 ORDER BY ts DESC LIMIT $2",
        )
        .bind(metric_type.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool);
        let rows = guarded(&self.breaker, self.timeout, "query", query).await?;
        Ok(rows
            .into_iter()
            .map(|(timestamp, value)| Metric {
                timestamp,
                value,
                metric_type: metric_type.clone(),
            })
            .collect())
    }

    async fn types_page(
        &self,
        after: Option<&MetricType>,
        limit: usize,
    ) -> Result<Vec<TypeInfo>, StoreError> {
        self.check_ready()?;
        let after = after.map(MetricType::as_str);
        let covered = self.watermark() == i64::MAX;
        let page = listing::page(&self.pool, covered, after, limit);
        let listing = guarded(&self.breaker, self.timeout, "query", page).await?;
        if after.is_none() && listing.len() < limit {
            // The whole listing: the count is known.
            self.types.store(listing.len() as u64, Ordering::Relaxed);
        }
        Ok(listing
            .into_iter()
            .filter_map(|(name, (count, last))| {
                Some(TypeInfo {
                    metric_type: MetricType::parse(&name).ok()?,
                    count,
                    last_timestamp: rollup::time(last),
                })
            })
            .collect())
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            points: (self.points.load(Ordering::Relaxed) + self.committed.load(Ordering::Relaxed))
                .saturating_sub(self.evicted.load(Ordering::Relaxed)),
            evicted_retention: self.evicted.load(Ordering::Relaxed),
            types: self.types.load(Ordering::Relaxed),
            ..StoreStats::default()
        }
    }

    fn prepared(&self) -> bool {
        self.is_ready()
    }

    fn database_up(&self) -> Option<bool> {
        Some(
            self.is_ready()
                && self.reachable.load(Ordering::Acquire)
                && !self.breaker.state().is_open(),
        )
    }
}
