//! `/dashboard/cache`: each tier's numbers, hit ratio over time, and the TTLs.

use askama::Template;

use super::Stat;
use crate::cache::TierStats;
use crate::config::CacheSettings;
use crate::dashboard::charts::{Chart, Unit};
use crate::dashboard::format;
use crate::dashboard::history::History;
use crate::dashboard::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq)]
pub struct TierRow {
    pub tier: &'static str,
    pub hits: String,
    pub misses: String,
    pub stale: String,
    pub entries: String,
    pub hit_ratio: String,
}

impl TierRow {
    fn of(tier: &'static str, t: &TierStats) -> Self {
        Self {
            tier,
            hits: format::count(t.hits),
            misses: format::count(t.misses),
            stale: format::count(t.stale),
            entries: t.entries.map_or_else(|| "shared".to_owned(), format::count),
            hit_ratio: format::percent(t.hit_ratio()),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/live/cache.html")]
pub struct CacheLive {
    pub tiers: Vec<TierRow>,
    pub stats: Vec<Stat>,
    pub charts: Vec<Chart>,
    /// (setting, value)
    pub settings: Vec<(&'static str, String)>,
}

impl CacheLive {
    pub fn build(s: &Snapshot, h: &History, settings: &CacheSettings) -> Self {
        let c = &s.cache;
        let ratio_series: Vec<f64> = h
            .series(|t| t.cache_served)
            .iter()
            .zip(h.series(|t| t.cache_lookups))
            .map(|(served, lookups)| {
                if lookups == 0.0 {
                    0.0
                } else {
                    (served / lookups).min(1.0)
                }
            })
            .collect();
        Self {
            tiers: vec![
                TierRow::of("memory", &c.memory),
                TierRow::of("redis", &c.redis),
            ],
            stats: vec![
                Stat::new(
                    "Hit ratio",
                    format::percent(c.hit_ratio()),
                    "either tier, since start",
                ),
                Stat::new(
                    "Coalesced waiters",
                    format::count(c.coalesced_waiters),
                    "waited for another request's computation",
                ),
                Stat::new(
                    "Refreshes",
                    format::count(c.refreshes),
                    "background, while serving stale",
                ),
                Stat::new(
                    "Computations",
                    format::count(c.computations),
                    "summaries computed by the store",
                ),
                Stat::new(
                    "Stale if error",
                    format::count(c.stale_if_error),
                    "stale served because computing failed",
                ),
                Stat::new(
                    "Redis errors",
                    format::count(c.redis_errors),
                    "failed or timed-out cache calls",
                ),
            ],
            charts: vec![
                Chart::over_history("Hit ratio", Unit::Ratio, &[("hit ratio", ratio_series)]),
                Chart::over_history(
                    "Summary lookups",
                    Unit::PerSecond,
                    &[
                        ("lookups", h.series(|t| t.cache_lookups)),
                        ("served from cache", h.series(|t| t.cache_served)),
                    ],
                ),
            ],
            settings: vec![
                (
                    "CACHE_LOCAL_CAPACITY",
                    format!("{} entries", format::count(settings.local_capacity)),
                ),
                (
                    "CACHE_LOCAL_TTL_MS",
                    format!("{} ms", settings.local_ttl_ms),
                ),
                ("CACHE_TTL_SECONDS", format!("{} s", settings.ttl_seconds)),
                (
                    "CACHE_STALE_SECONDS",
                    format!("{} s", settings.stale_seconds),
                ),
                (
                    "CACHE_REDIS_TIMEOUT_MS",
                    format!("{} ms", settings.redis_timeout_ms),
                ),
            ],
        }
    }
}
