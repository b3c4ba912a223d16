//! The shared Redis connection: built with bounded timeouts and exponential
//! reconnect, never awaited at startup, and watched by a background PING so
//! `/health` can answer from memory without touching Redis.
//!
//! The first connection is the start state, not an outage: until it is made (or
//! `2 × REDIS_TIMEOUT` has passed without it) the connection is *unsettled*: `/ready`
//! answers 503 and callers skip Redis without asking its breaker, so the first
//! requests cannot open the `redis` breaker on a Redis that is up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fred::prelude::{ClientLike, Config, ReconnectPolicy};
use fred::types::Builder;
use tokio::task::JoinHandle;

use crate::breaker::{Breaker, BreakerConfig, Permit};
use crate::config::RedisSettings;

/// How often the watcher checks the connection.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Reconnect backoff: 100 ms doubling up to 5 s, forever.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 5_000;

pub struct Redis {
    client: fred::clients::Client,
    connected: AtomicBool,
    /// The first connection was made, or the bound for it passed.
    settled: AtomicBool,
    timeout: Duration,
}

/// How long the first connection may take before the service starts without it
/// (degraded), in multiples of `REDIS_TIMEOUT`.
pub const FIRST_CONNECT_TIMEOUTS: u32 = 2;

impl Redis {
    /// Starts connecting in the background; returns at once even if Redis is down.
    pub fn start(
        settings: &RedisSettings,
    ) -> Result<(Arc<Self>, JoinHandle<()>), fred::error::Error> {
        let mut config = Config::from_url(&settings.url)?;
        // Keep retrying when Redis is down at startup, not only after a first success.
        config.fail_fast = false;
        let timeout = settings.timeout;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                // A command waits for one connection at most; the caller decides what to do next.
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                RECONNECT_MIN_MS,
                RECONNECT_MAX_MS,
                2,
            ))
            .build()?;
        client.connect();
        let redis = Arc::new(Self {
            client,
            connected: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            timeout,
        });
        let watcher = tokio::spawn(Arc::clone(&redis).watch());
        Ok((redis, watcher))
    }

    /// Whether the last health PING succeeded.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Whether the first connection was made, or its bound passed (see the module).
    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    pub fn client(&self) -> &fred::clients::Client {
        &self.client
    }

    async fn ping(&self) -> bool {
        let ping = self.client.ping::<String>(None);
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }

    async fn watch(self: Arc<Self>) {
        let bound = self.timeout * FIRST_CONNECT_TIMEOUTS;
        let first = tokio::time::timeout(bound, self.client.wait_for_connect()).await;
        let up = matches!(first, Ok(Ok(())));
        self.connected.store(up, Ordering::Relaxed);
        self.settled.store(true, Ordering::Release);
        match up {
            true => tracing::info!(event = "redis_connected", "redis is reachable"),
            false => tracing::warn!(
                event = "redis_disconnected",
                bound_ms = bound.as_millis() as u64,
                "redis did not connect in time; serving degraded and reconnecting"
            ),
        }
        let mut tick = tokio::time::interval(PING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let up = self.ping().await;
            if self.connected.swap(up, Ordering::Relaxed) != up {
                match up {
                    true => tracing::info!(event = "redis_connected", "redis is reachable"),
                    false => tracing::warn!(
                        event = "redis_disconnected",
                        "redis is unreachable; serving degraded and reconnecting"
                    ),
                }
            }
        }
    }
}

/// Name of the breaker every Redis caller (limiter, cache) shares.
pub const BREAKER: &str = "redis";

/// The `redis` breaker's rules: one failed call (a timeout is already a strong
/// signal) takes Redis out of use, so no request waits on a dead Redis; one
/// probe every two seconds brings it back.
pub fn breaker_config() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 1,
        reset_timeout: Duration::from_secs(2),
        half_open_permits: 1,
        ..BreakerConfig::default()
    }
}

/// How a Redis caller asks: through the shared `redis` breaker.
pub struct RedisGate {
    redis: Arc<Redis>,
    breaker: Arc<Breaker>,
}

impl RedisGate {
    pub fn new(redis: Arc<Redis>, breaker: Arc<Breaker>) -> Self {
        Self { redis, breaker }
    }

    pub fn client(&self) -> &fred::clients::Client {
        self.redis.client()
    }

    /// Leave to call Redis once (record how it went), or `None` while the
    /// breaker is open: then skip Redis without waiting. Before the first
    /// connection settles it is `None` too, without asking the breaker: not
    /// being connected yet is the start state, not a failure.
    pub fn permit(&self) -> Option<Permit<'_>> {
        if !self.redis.is_settled() {
            return None;
        }
        self.breaker.try_acquire().ok()
    }
}

/// Validates a Redis URL at configuration time.
pub fn parse_url(raw: &str) -> Result<String, String> {
    // TLS (rediss://) is not compiled in; say so at startup rather than at first use.
    if !raw.starts_with("redis://") {
        return Err("must start with redis://".into());
    }
    Config::from_url(raw)
        .map(|_| raw.to_owned())
        .map_err(|e| format!("invalid Redis URL: {e}"))
}
