//! Read-through cache for summaries and series: a bounded in-process tier in front of
//! Redis, one computation per key at a time (single flight), stale-while-
//! revalidate and stale-if-error (RFC 5861), and statistics.
//!
//! Lookup order: the memory tier (an entry that arrived less than the local TTL
//! ago answers without any Redis call) -> Redis (bounded by its timeout, skipped
//! while Redis is known down) -> the store, through single flight. Only
//! successful, finite results are cached; errors never are.

mod entry;
mod flight;
mod keys;
mod local;
mod lookup;
mod remote;
mod stats;

use std::future::Future;

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub use entry::{Entry, Lifetimes, Report};
pub use keys::CacheKey;
pub use lookup::{CacheStatus, Lookup};
pub use stats::{CacheStats, TierStats};

use entry::{Freshness, SharedEntry};
use flight::{Flights, Role};
use local::LocalTier;
use remote::{RemoteError, RemoteTier};
use stats::{CacheCounters, Tier};

use crate::breaker::Breaker;
use crate::config::CacheSettings;
use crate::redis::Redis;
use crate::store::StoreError;

/// Wall-clock milliseconds; injected so tests can move time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct ReadCache {
    local: LocalTier,
    remote: Arc<RemoteTier>,
    flights: Arc<Flights>,
    counters: Arc<CacheCounters>,
    lifetimes: Lifetimes,
    clock: Clock,
}

impl ReadCache {
    /// `breaker` is the shared `redis` breaker.
    pub fn new(settings: &CacheSettings, redis: Arc<Redis>, breaker: Arc<Breaker>) -> Self {
        let clock: Clock = Arc::new(|| chrono::Utc::now().timestamp_millis());
        Self::with_clock(settings, redis, breaker, clock)
    }

    pub fn with_clock(
        settings: &CacheSettings,
        redis: Arc<Redis>,
        breaker: Arc<Breaker>,
        clock: Clock,
    ) -> Self {
        let lifetimes = Lifetimes {
            ttl: Duration::from_secs(settings.ttl_seconds),
            stale: Duration::from_secs(settings.stale_seconds),
        };
        let keep = lifetimes.ttl + lifetimes.stale;
        Self {
            local: LocalTier::new(
                settings.local_capacity,
                Duration::from_millis(settings.local_ttl_ms),
                keep,
            ),
            remote: Arc::new(RemoteTier::new(
                redis,
                breaker,
                Duration::from_millis(settings.redis_timeout_ms),
                keep,
            )),
            flights: Arc::new(Flights::default()),
            counters: Arc::new(CacheCounters::default()),
            lifetimes,
            clock,
        }
    }

    /// Every series of the cache at zero (call once the recorder is installed).
    pub fn register_metrics(&self) {
        self.counters.register_metrics();
    }

    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot(self.local.len())
    }

    /// A fresh memory-tier entry for `key`, counted as a memory hit, or
    /// `None` (nothing counted): the common case, answered without building
    /// `get`'s future, which is kilobytes. `get` covers everything else.
    pub fn fresh_from_memory(&self, key: &CacheKey) -> Option<Lookup> {
        let now = (self.clock)();
        let local = self.local.get(key)?;
        let fresh = self.local.is_recent(&local, now)
            && self.lifetimes.freshness(&local.entry, now) == Freshness::Fresh;
        fresh.then(|| {
            self.counters.hit(Tier::Memory);
            self.lookup(&local.entry, CacheStatus::Hit(Tier::Memory), now)
        })
    }

    /// The answer for `key` through every tier, traced as a `cache.lookup` span (its
    /// tier and result recorded): what the summary and series services call.
    pub async fn read_through<F, Fut>(
        &self,
        key: &CacheKey,
        compute: F,
    ) -> Result<Lookup, StoreError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Report, StoreError>> + Send + 'static,
    {
        let span = tracing::info_span!(
            "cache.lookup",
            cache.tier = tracing::field::Empty,
            cache.result = tracing::field::Empty,
        );
        let lookup = match span.in_scope(|| self.fresh_from_memory(key)) {
            Some(hit) => hit,
            // Boxed: the cache's future is kilobytes, and every endpoint layer
            // around the handler would otherwise hold (and move) a copy of it.
            None => Box::pin(self.get(key, compute).instrument(span.clone())).await?,
        };
        let (tier, result) = lookup.trace_fields();
        span.record("cache.tier", tier);
        span.record("cache.result", result);
        Ok(lookup)
    }

    /// The answer for `key`: from a tier, or computed by `compute` (at most
    /// one computation per key at a time in this instance).
    pub async fn get<F, Fut>(&self, key: &CacheKey, compute: F) -> Result<Lookup, StoreError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Report, StoreError>> + Send + 'static,
    {
        let now = (self.clock)();
        let local = self.local.get(key);
        if let Some(l) = local.as_ref().filter(|l| self.local.is_recent(l, now)) {
            match self.lifetimes.freshness(&l.entry, now) {
                Freshness::Fresh => {
                    self.counters.hit(Tier::Memory);
                    return Ok(self.lookup(&l.entry, CacheStatus::Hit(Tier::Memory), now));
                }
                Freshness::Stale => {
                    self.counters.stale(Tier::Memory);
                    self.refresh(key, compute);
                    return Ok(self.lookup(&l.entry, CacheStatus::Stale(Tier::Memory), now));
                }
                Freshness::Dead => {}
            }
        }
        // Anything not dead can stand in if the computation fails.
        let mut fallback = local
            .map(|l| l.entry)
            .filter(|e| self.lifetimes.freshness(e, now) != Freshness::Dead);
        let remote = self.remote.get(key).await;
        if let Err(RemoteError::Failed) = remote {
            self.counters.redis_error();
        }
        if let (Err(_), Some(entry)) = (&remote, &fallback) {
            // Redis cannot say (down, slow or skipped by the breaker): the
            // memory copy stands in for it within the answer's own
            // lifetimes. `CACHE_LOCAL_TTL_MS` only bounds how long memory
            // answers without asking Redis; without this, every request
            // past it recomputed while Redis was out.
            match self.lifetimes.freshness(entry, now) {
                Freshness::Fresh => {
                    self.counters.hit(Tier::Memory);
                    return Ok(self.lookup(entry, CacheStatus::Hit(Tier::Memory), now));
                }
                Freshness::Stale => {
                    self.counters.stale(Tier::Memory);
                    self.refresh(key, compute);
                    return Ok(self.lookup(entry, CacheStatus::Stale(Tier::Memory), now));
                }
                Freshness::Dead => {}
            }
        }
        self.counters.miss(Tier::Memory);
        match remote {
            Ok(Some(entry)) => {
                let entry = Arc::new(entry);
                match self.lifetimes.freshness(&entry, now) {
                    Freshness::Fresh => {
                        self.counters.hit(Tier::Redis);
                        self.local.put(key, Arc::clone(&entry), now);
                        return Ok(self.lookup(&entry, CacheStatus::Hit(Tier::Redis), now));
                    }
                    Freshness::Stale => {
                        self.counters.stale(Tier::Redis);
                        self.local.put(key, Arc::clone(&entry), now);
                        self.refresh(key, compute);
                        return Ok(self.lookup(&entry, CacheStatus::Stale(Tier::Redis), now));
                    }
                    Freshness::Dead => self.counters.miss(Tier::Redis),
                }
            }
            Ok(None) => self.counters.miss(Tier::Redis),
            Err(_) => {}
        }

        // The computation runs in its own task: keep it in this request's trace.
        let work = self.computation(key, compute).in_current_span();
        let (role, slot) = self.flights.join(key.as_str(), work);
        if role == Role::Waiter {
            self.counters.coalesced();
        }
        match flight::wait(slot).await {
            Ok(entry) => {
                let status = match role {
                    Role::Leader => CacheStatus::Miss,
                    Role::Waiter => CacheStatus::Collapsed,
                };
                Ok(self.lookup(&entry, status, (self.clock)()))
            }
            Err(reason) => match fallback.take() {
                Some(stale) => {
                    self.counters.stale_if_error();
                    tracing::warn!(key = key.as_str(), %reason, "serving a stale answer: the store failed");
                    Ok(self.lookup(&stale, CacheStatus::StaleIfError, (self.clock)()))
                }
                None => Err(StoreError::Unavailable(reason)),
            },
        }
    }

    /// Starts one background recomputation of `key` unless one is running.
    fn refresh<F, Fut>(&self, key: &CacheKey, compute: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Report, StoreError>> + Send + 'static,
    {
        let work = self.computation(key, compute).in_current_span();
        if self.flights.start_if_idle(key.as_str(), work) {
            self.counters.refresh();
        }
    }

    /// Computes, then stores a successful finite result in both tiers.
    fn computation<F, Fut>(
        &self,
        key: &CacheKey,
        compute: F,
    ) -> impl Future<Output = flight::Outcome> + Send + 'static
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Report, StoreError>> + Send + 'static,
    {
        let key = key.clone();
        let counters = Arc::clone(&self.counters);
        let remote = Arc::clone(&self.remote);
        let clock = Arc::clone(&self.clock);
        let local = self.local.clone();
        async move {
            counters.computation();
            let report = compute().await.map_err(|e| e.to_string())?;
            if !report.is_finite() {
                return Err("the answer has non-finite numbers; not cached".into());
            }
            let entry: SharedEntry = Arc::new(Entry::new(report, clock()));
            local.put(&key, Arc::clone(&entry), clock());
            // Waiters need not wait for Redis: share it in the background.
            let shared = Arc::clone(&entry);
            tokio::spawn(async move {
                if let Err(RemoteError::Failed) = remote.put(&key, &shared).await {
                    counters.redis_error();
                }
            });
            Ok(entry)
        }
    }

    fn lookup(&self, entry: &SharedEntry, status: CacheStatus, now: i64) -> Lookup {
        Lookup {
            entry: Arc::clone(entry),
            status,
            age: entry::age(entry, now),
            ttl_left: self.lifetimes.ttl_left_secs(entry, now),
        }
    }
}
