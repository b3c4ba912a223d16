//! What every handler shares: the store, the Redis connection and the rules
//! fixed by configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::cache::SummaryCache;
use crate::limiter::RateLimiter;
use crate::redis::Redis;
use crate::store::MetricStore;

pub struct AppState {
    pub store: Arc<dyn MetricStore>,
    pub redis: Arc<Redis>,
    /// `None` when rate limiting is turned off.
    pub limiter: Option<Arc<RateLimiter>>,
    pub cache: SummaryCache,
    pub retention: Duration,
    pub max_future_skew: Duration,
    pub started: Instant,
    /// False once shutdown has begun, so load balancers drain this instance.
    accepting: AtomicBool,
}

impl AppState {
    pub fn new(
        store: Arc<dyn MetricStore>,
        redis: Arc<Redis>,
        limiter: Option<Arc<RateLimiter>>,
        cache: SummaryCache,
        retention: Duration,
        max_future_skew: Duration,
    ) -> Self {
        Self {
            store,
            redis,
            limiter,
            cache,
            retention,
            max_future_skew,
            started: Instant::now(),
            accepting: AtomicBool::new(true),
        }
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Relaxed);
    }
}
