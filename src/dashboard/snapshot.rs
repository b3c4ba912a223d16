//! Everything the pages show, read from the shared state in one pass (no
//! I/O, no awaits: each part is an atomic read or a short lock).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::breaker::{AuditEntry, BreakerStatus};
use crate::cache::CacheStats;
use crate::limiter::LimiterStats;
use crate::state::AppState;
use crate::store::StoreStats;
use crate::telemetry::TrafficCounts;
use crate::upstream::SimulatorConfig;
use crate::upstream::simulator::SimulatorChange;

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    pub uptime: Duration,
    pub accepting: bool,
    pub redis_connected: bool,
    /// `None` with the embedded store.
    pub database_up: Option<bool>,
    pub traffic: TrafficCounts,
    /// Sorted by name.
    pub breakers: Vec<BreakerStatus>,
    pub cache: CacheStats,
    /// `None` when rate limiting is off.
    pub limiter: Option<LimiterStats>,
    pub store: StoreStats,
    pub simulator: SimulatorConfig,
    pub breaker_audit: Vec<AuditEntry>,
    pub simulator_audit: Vec<SimulatorChange>,
}

impl Snapshot {
    pub fn take(state: &AppState) -> Self {
        let mut breakers: Vec<BreakerStatus> =
            state.breakers.all().iter().map(|b| b.status()).collect();
        breakers.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            at: Utc::now(),
            uptime: state.lifecycle.started.elapsed(),
            accepting: state.lifecycle.is_accepting(),
            redis_connected: state.redis.is_connected(),
            database_up: state.store.database_up(),
            traffic: state.traffic.counts(),
            breakers,
            cache: state.cache.stats(),
            limiter: state.limiter.as_ref().map(|l| l.stats()),
            store: state.store.stats(),
            simulator: state.upstream.simulator.config(),
            breaker_audit: state.breakers.audit_log(),
            simulator_audit: state.upstream.simulator.audit_log(),
        }
    }

    pub fn breaker(&self, name: &str) -> Option<&BreakerStatus> {
        self.breakers.iter().find(|b| b.name == name)
    }
}
