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
use fred::types::config::TlsConnector;
use tokio::task::JoinHandle;

use crate::breaker::{Breaker, BreakerError, Outcome};
use crate::config::RedisSettings;
use crate::telemetry::metrics;

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
        if let Some(path) = &settings.ca_file {
            let Some(tls) = config.tls.as_mut() else {
                return Err(fred::error::Error::new(
                    fred::error::ErrorKind::Config,
                    "REDIS_CA_FILE is set but REDIS_URL does not use TLS (rediss://…)",
                ));
            };
            tls.connector = trusting(path)?;
        }
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

/// A TLS connector that trusts only the CAs in the PEM file at `path` (and verifies the
/// server's name against its certificate, as every rustls connector does).
fn trusting(path: &std::path::Path) -> Result<TlsConnector, fred::error::Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let invalid = |why: String| {
        fred::error::Error::new(
            fred::error::ErrorKind::Tls,
            format!("REDIS_CA_FILE {}: {why}", path.display()),
        )
    };
    let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("not a PEM certificate: {e}")))?;
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("holds no certificate".into()));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config))
}

/// Name of the breaker every Redis caller (limiter, cache) shares.
pub const BREAKER: &str = "redis";

/// How a Redis caller asks: every call goes through the shared `redis` breaker's guard
/// (`Breaker::call`: permit, bounded call, outcome) and is timed in
/// `tally_redis_command_duration_seconds`.
#[derive(Clone)]
pub struct RedisGate {
    redis: Arc<Redis>,
    breaker: Arc<Breaker>,
}

/// Why a guarded Redis call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// Not asked: the breaker is open, or the first connection has not settled.
    Skipped,
    /// Asked, and it failed or ran past its bound (counted against the breaker once).
    Failed(String),
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Skipped => {
                f.write_str("redis is not being asked (breaker open or not connected yet)")
            }
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl RedisGate {
    pub fn new(redis: Arc<Redis>, breaker: Arc<Breaker>) -> Self {
        Self { redis, breaker }
    }

    pub fn client(&self) -> &fred::clients::Client {
        self.redis.client()
    }

    /// Whether a call would be made now. Before the first connection settles it is
    /// `false` without asking the breaker: not being connected yet is the start state,
    /// not a failure. Advisory: `call` asks again.
    pub fn available(&self) -> bool {
        self.redis.is_settled() && self.breaker.is_call_permitted()
    }

    /// Runs one Redis command (`op` names it in the metrics) through the breaker, for at
    /// most `timeout`. Skipped at once, without waiting, while the breaker is open.
    pub async fn call<T, E: std::fmt::Display>(
        &self,
        op: &'static str,
        timeout: Duration,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Unreachable> {
        if !self.redis.is_settled() {
            return Err(Unreachable::Skipped);
        }
        let started = tokio::time::Instant::now();
        let result = self
            .breaker
            .call(timeout, fut, |r| match r {
                Ok(_) => Outcome::Success,
                Err(_) => Outcome::Failure,
            })
            .await;
        let failed = match result {
            Ok(value) => {
                metrics::redis_call(op, started.elapsed(), true);
                return Ok(value);
            }
            Err(BreakerError::Open { .. }) => return Err(Unreachable::Skipped),
            Err(BreakerError::Timeout) => format!("no answer from Redis within {timeout:?}"),
            Err(BreakerError::Inner(e)) => e.to_string(),
        };
        metrics::redis_call(op, started.elapsed(), false);
        Err(Unreachable::Failed(failed))
    }
}
