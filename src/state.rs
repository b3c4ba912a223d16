//! What every handler shares: the store, the Redis connection and the rules
//! fixed by configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::breaker::{Breaker, Breakers};
use crate::cache::ReadCache;
use crate::config::AdminTokens;
use crate::limiter::{Identify, RateLimiter, SignInGuard};
use crate::redis::Redis;
use crate::series::TimeSeries;
use crate::store::MetricStore;
use crate::summary::Summaries;
use crate::telemetry::Traffic;
use crate::upstream::{Simulator, UpstreamClient};

/// The external upstream and what guards it.
pub struct Upstream {
    pub client: UpstreamClient,
    pub timeout: Duration,
    pub breaker: Arc<Breaker>,
    /// The built-in simulator served at `/simulator` (the default upstream).
    pub simulator: Arc<Simulator>,
}

pub struct AppState {
    pub store: Arc<dyn MetricStore>,
    pub redis: Arc<Redis>,
    /// `None` when rate limiting is turned off.
    pub limiter: Option<Arc<RateLimiter>>,
    pub cache: Arc<ReadCache>,
    /// Summaries through the cache: what the API and the dashboard both ask.
    pub summaries: Summaries,
    /// Time series through the cache: what the API and the dashboard's chart both ask.
    pub series: TimeSeries,
    pub breakers: Arc<Breakers>,
    pub upstream: Upstream,
    pub admin_tokens: AdminTokens,
    /// Who a request comes from (trusted proxies), for every per-client limit.
    pub identify: Identify,
    /// Failed sign-ins per client (admin API and dashboard).
    pub sign_ins: SignInGuard,
    /// Idempotency keys being stored by this instance right now.
    pub idempotency: crate::store::KeysInFlight,
    pub retention: Duration,
    pub max_future_skew: Duration,
    pub lifecycle: Lifecycle,
    /// Answers and ingested points counted since start.
    pub traffic: Arc<Traffic>,
}

/// When the instance started, and whether it still takes traffic (false once
/// shutdown has begun, so load balancers drain it).
pub struct Lifecycle {
    pub started: Instant,
    accepting: AtomicBool,
    stopping: Notify,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            accepting: AtomicBool::new(true),
            stopping: Notify::new(),
        }
    }
}

impl Lifecycle {
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Relaxed);
        self.stopping.notify_waiters();
    }

    /// Resolves once shutdown has begun (long-lived responses such as the
    /// dashboard's event streams end then, so draining does not wait on them).
    pub async fn stopped(&self) {
        loop {
            // Registered before the check, so a stop in between is not missed.
            let notified = self.stopping.notified();
            if !self.is_accepting() {
                return;
            }
            notified.await;
        }
    }
}
