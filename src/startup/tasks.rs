//! The application's background tasks and its stop signal: the metrics sampler, the
//! embedded store's eviction, and SIGINT/SIGTERM.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;
use crate::store::MemoryStore;
use crate::telemetry::metrics::installed;
use crate::telemetry::names::*;

/// How often gauges are sampled from state (and the recorder kept up).
pub(super) const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// How often expired points are dropped.
const EVICTION_INTERVAL: Duration = Duration::from_secs(1);

/// Upkeep and the gauges sampled from state, every `period`.
pub(super) async fn sample_metrics(state: Arc<AppState>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let Some(h) = installed() else {
            return;
        };
        h.run_upkeep();
        let store = state.store.stats();
        metrics::gauge!(STORE_POINTS).set(store.points as f64);
        metrics::gauge!(STORE_TYPES).set(store.types as f64);
        metrics::counter!(STORE_POINTS_EVICTED_TOTAL, LABEL_REASON => "retention")
            .absolute(store.evicted_retention);
        metrics::counter!(STORE_POINTS_EVICTED_TOTAL, LABEL_REASON => "capacity")
            .absolute(store.evicted_capacity);
        if let Some(limits) = store.limits {
            metrics::counter!(STORE_POINTS_EVICTED_TOTAL, LABEL_REASON => "memory")
                .absolute(store.evicted_memory);
            metrics::gauge!(STORE_MEMORY_BYTES).set(store.memory_bytes as f64);
            metrics::gauge!(STORE_MEMORY_MAX_BYTES).set(limits.max_bytes as f64);
            metrics::gauge!(STORE_TYPES_MAX).set(limits.max_types as f64);
            metrics::counter!(STORE_WRITES_REFUSED_TOTAL, LABEL_REASON => "type_limit")
                .absolute(store.refused_type_limit);
        }
        let cache = state.cache.stats();
        metrics::gauge!(CACHE_ENTRIES, LABEL_TIER => "memory")
            .set(cache.memory.entries.unwrap_or(0) as f64);
        metrics::gauge!(CACHE_HIT_RATIO, LABEL_TIER => "memory").set(cache.memory.hit_ratio());
        metrics::gauge!(CACHE_HIT_RATIO, LABEL_TIER => "redis").set(cache.redis.hit_ratio());
        metrics::gauge!(CACHE_HIT_RATIO, LABEL_TIER => "all").set(cache.hit_ratio());
    }
}

pub(super) async fn evict_expired(store: Arc<MemoryStore>) {
    let mut tick = tokio::time::interval(EVICTION_INTERVAL);
    loop {
        tick.tick().await;
        let evicted = store.evict_expired();
        if evicted > 0 {
            tracing::debug!(evicted, "dropped points past retention");
        }
    }
}

/// SIGINT or SIGTERM (containers stop with SIGTERM). The handlers are
/// installed when this is called, not when it is first awaited: call it
/// before the listener is bound, so a signal that arrives while the service
/// is starting still means a graceful stop.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| signal(SignalKind::interrupt()).map(|interrupt| (term, interrupt)));
        async move {
            match handlers {
                Ok((mut term, mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
