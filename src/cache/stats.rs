//! Cache statistics: counters updated on the hot path (atomics), read as one
//! snapshot by telemetry and the dashboard.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Counter;

use crate::telemetry::names;

#[derive(Default)]
pub struct TierCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
}

#[derive(Default)]
pub struct CacheCounters {
    pub memory: TierCounters,
    pub redis: TierCounters,
    coalesced: AtomicU64,
    refreshes: AtomicU64,
    redis_errors: AtomicU64,
    computations: AtomicU64,
    stale_if_error: AtomicU64,
    /// `tally_cache_requests_total` by tier and result, registered on first use
    /// (after the recorder is installed) and kept: every summary request counts
    /// one, and a kept handle is an atomic add instead of a series lookup.
    requests: OnceLock<[[Counter; 3]; 2]>,
}

/// Which tier answered, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory = 0,
    Redis = 1,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Redis => "redis",
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl CacheCounters {
    fn tier(&self, tier: Tier) -> &TierCounters {
        match tier {
            Tier::Memory => &self.memory,
            Tier::Redis => &self.redis,
        }
    }

    pub fn hit(&self, tier: Tier) {
        bump(&self.tier(tier).hits);
        self.request(tier, 0);
    }

    pub fn miss(&self, tier: Tier) {
        bump(&self.tier(tier).misses);
        self.request(tier, 1);
    }

    pub fn stale(&self, tier: Tier) {
        bump(&self.tier(tier).stale);
        self.request(tier, 2);
    }

    /// Every series of the cache at zero, so rates and alerts see them from the first
    /// scrape (call once the recorder is installed).
    pub fn register_metrics(&self) {
        self.request_counters();
        for name in [
            names::CACHE_COALESCED_TOTAL,
            names::CACHE_REFRESHES_TOTAL,
            names::CACHE_REDIS_ERRORS_TOTAL,
            names::CACHE_STALE_IF_ERROR_TOTAL,
        ] {
            metrics::counter!(name).increment(0);
        }
    }

    /// `result`: 0 hit, 1 miss, 2 stale.
    fn request(&self, tier: Tier, result: usize) {
        self.request_counters()[tier as usize][result].increment(1);
    }

    fn request_counters(&self) -> &[[Counter; 3]; 2] {
        self.requests.get_or_init(|| {
            [Tier::Memory, Tier::Redis].map(|tier| {
                ["hit", "miss", "stale"].map(|result| {
                    metrics::counter!(
                        names::CACHE_REQUESTS_TOTAL,
                        names::LABEL_TIER => tier.as_str(),
                        names::LABEL_RESULT => result
                    )
                })
            })
        })
    }

    pub fn coalesced(&self) {
        bump(&self.coalesced);
        metrics::counter!(names::CACHE_COALESCED_TOTAL).increment(1);
    }

    pub fn refresh(&self) {
        bump(&self.refreshes);
        metrics::counter!(names::CACHE_REFRESHES_TOTAL).increment(1);
    }

    pub fn redis_error(&self) {
        bump(&self.redis_errors);
        metrics::counter!(names::CACHE_REDIS_ERRORS_TOTAL).increment(1);
    }

    pub fn computation(&self) {
        bump(&self.computations);
    }

    pub fn stale_if_error(&self) {
        bump(&self.stale_if_error);
        metrics::counter!(names::CACHE_STALE_IF_ERROR_TOTAL).increment(1);
    }

    pub fn snapshot(&self, memory_entries: u64) -> CacheStats {
        let tier = |t: &TierCounters, entries| TierStats {
            hits: t.hits.load(Ordering::Relaxed),
            misses: t.misses.load(Ordering::Relaxed),
            stale: t.stale.load(Ordering::Relaxed),
            entries,
        };
        CacheStats {
            memory: tier(&self.memory, Some(memory_entries)),
            redis: tier(&self.redis, None),
            coalesced_waiters: self.coalesced.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            redis_errors: self.redis_errors.load(Ordering::Relaxed),
            computations: self.computations.load(Ordering::Relaxed),
            stale_if_error: self.stale_if_error.load(Ordering::Relaxed),
        }
    }
}

/// One tier's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    pub hits: u64,
    pub misses: u64,
    /// Stale entries served (stale-while-revalidate).
    pub stale: u64,
    /// Entries held (the memory tier only; Redis is shared and not counted).
    pub entries: Option<u64>,
}

impl TierStats {
    /// Share of lookups in this tier answered from it (fresh or stale), 0..1.
    pub fn hit_ratio(&self) -> f64 {
        let served = self.hits + self.stale;
        let total = served + self.misses;
        if total == 0 {
            0.0
        } else {
            served as f64 / total as f64
        }
    }
}

/// Everything the telemetry and dashboard need, in one struct.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheStats {
    pub memory: TierStats,
    pub redis: TierStats,
    /// Requests that waited for another request's computation.
    pub coalesced_waiters: u64,
    /// Background refreshes started (stale-while-revalidate).
    pub refreshes: u64,
    pub redis_errors: u64,
    /// Summaries computed by the store on behalf of the cache.
    pub computations: u64,
    /// Stale entries served because the computation failed.
    pub stale_if_error: u64,
}

impl CacheStats {
    /// Share of summary requests answered from either tier, 0..1.
    pub fn hit_ratio(&self) -> f64 {
        let served = self.memory.hits + self.memory.stale + self.redis.hits + self.redis.stale;
        let total = self.memory.hits + self.memory.stale + self.memory.misses;
        if total == 0 {
            0.0
        } else {
            (served as f64 / total as f64).min(1.0)
        }
    }
}
