//! Rate limiting for `/api`: an exact sliding window kept in Redis (one script
//! call per decision, Redis time, and quota leases that let a busy client's
//! requests skip the call), with an in-process window of the same policy when
//! Redis fails or is slow. Redis calls go through the shared `redis` circuit
//! breaker: while it is open no request waits on Redis, and decisions go local
//! until a probe succeeds.

mod batch;
mod decisions;
mod identity;
mod lease;
mod local;
mod middleware;
mod policy;
mod redis_window;
mod sign_in;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

pub use identity::{ClientKey, Identify, client_ip};
pub use lease::LIMIT_SHARE;
pub use local::LocalWindow;
pub use middleware::RateLimit;
pub use policy::{Policy, PolicyName};
pub use redis_window::{KEY_PREFIX, RedisWindow};
pub use sign_in::{SignInGuard, SignInRefused, Surface};
pub use stats::{BackendCounts, LimitedClient, LimiterStats, PolicyStats, mask};

use decisions::{DecisionCounters, DecisionLabel};
use lease::{Leases, Take};
use poem::http::HeaderValue;
use stats::LimiterCounters;

use crate::breaker::Breaker;
use crate::config::{FailMode, ForwardedHeader, LimiterSettings, TrustedProxies};
use crate::redis::{Redis, RedisGate};
use crate::telemetry::names;

/// What a window says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Requests still accepted in the current window (after this one).
    pub remaining: u64,
    /// Until the oldest counted request leaves the window.
    pub reset: Duration,
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Backend {
    Redis = 1,
    Local = 2,
    /// Redis unavailable and the fail mode is `open` or `closed`.
    Fallback = 3,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::Local => "local",
            Backend::Fallback => "none",
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A window decided; `verdict` says whether to serve.
    Decided { verdict: Verdict, backend: Backend },
    /// Redis is unavailable and the fail mode lets the request through unmetered.
    Open,
    /// Redis is unavailable and the fail mode refuses the request.
    Closed,
}

pub struct RateLimiter {
    write: Policy,
    read: Policy,
    trusted: TrustedProxies,
    forwarded_header: ForwardedHeader,
    gate: RedisGate,
    window: RedisWindow,
    leases: Arc<Leases>,
    local: LocalWindow,
    fail_mode: FailMode,
    last_backend: AtomicU8,
    counters: LimiterCounters,
    decisions: DecisionCounters,
    /// `RateLimit-Policy` per policy (write, read): fixed, so built once.
    policy_headers: [HeaderValue; 2],
}

impl RateLimiter {
    /// Every series of the limiter at zero, so rates and alerts see them from the first
    /// scrape (call once the recorder is installed).
    pub fn register_metrics(&self) {
        self.decisions.register();
        for policy in [PolicyName::Write, PolicyName::Read] {
            for name in [
                names::RATE_LIMIT_LEASE_SLOTS_GRANTED_TOTAL,
                names::RATE_LIMIT_LEASE_SLOTS_RETURNED_TOTAL,
            ] {
                metrics::counter!(name, names::LABEL_POLICY => policy.as_str()).increment(0);
            }
        }
        for backend in [Backend::Redis, Backend::Local, Backend::Fallback] {
            metrics::counter!(names::RATE_LIMIT_BACKEND_SWITCHES_TOTAL, names::LABEL_BACKEND => backend.as_str())
                .increment(0);
        }
    }

    /// `breaker` is the shared `redis` breaker.
    pub fn new(settings: &LimiterSettings, redis: Arc<Redis>, breaker: Arc<Breaker>) -> Self {
        let write = Policy {
            name: PolicyName::Write,
            limit: settings.write_requests,
            window: Duration::from_secs(settings.write_window_seconds),
        };
        let read = Policy {
            name: PolicyName::Read,
            limit: settings.read_requests,
            window: Duration::from_secs(settings.read_window_seconds),
        };
        let timeout = Duration::from_millis(settings.redis_timeout_ms);
        let gate = RedisGate::new(redis, breaker);
        let leases = Arc::new(Leases::new(
            Duration::from_millis(settings.lease_ms),
            timeout,
        ));
        Self {
            write,
            read,
            trusted: settings.trusted_proxies.clone(),
            forwarded_header: settings.forwarded_header,
            gate: gate.clone(),
            window: RedisWindow::new(gate, write, read, Arc::clone(&leases), timeout),
            leases,
            local: LocalWindow::new(),
            fail_mode: settings.fail_mode,
            last_backend: AtomicU8::new(0),
            counters: LimiterCounters::default(),
            decisions: DecisionCounters::default(),
            // Static values: a clone on every response is then a copy, not a
            // reference count shared by every core (two short strings per
            // limiter, kept for the process' life).
            policy_headers: [write, read]
                .map(|p| HeaderValue::from_static(Box::leak(p.policy_header().into_boxed_str()))),
        }
    }

    pub fn policy(&self, name: PolicyName) -> &Policy {
        match name {
            PolicyName::Write => &self.write,
            PolicyName::Read => &self.read,
        }
    }

    /// The `RateLimit-Policy` header of a policy.
    pub fn policy_header(&self, name: PolicyName) -> HeaderValue {
        match name {
            PolicyName::Write => self.policy_headers[0].clone(),
            PolicyName::Read => self.policy_headers[1].clone(),
        }
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// The header the trusted proxies write the client's address into.
    pub fn forwarded_header(&self) -> ForwardedHeader {
        self.forwarded_header
    }

    /// Remembers a refused client (by its masked address) for the dashboard.
    pub fn note_limited(&self, ip: std::net::IpAddr, name: PolicyName) {
        self.counters.limited_client(ip, name, chrono::Utc::now());
    }

    pub fn stats(&self) -> LimiterStats {
        let backend = match self.last_backend.load(Ordering::Relaxed) {
            1 => Some(Backend::Redis),
            2 => Some(Backend::Local),
            3 => Some(Backend::Fallback),
            _ => None,
        };
        LimiterStats {
            write: self.counters.policy(self.write),
            read: self.counters.policy(self.read),
            backend,
            by_backend: self.counters.by_backend(),
            fail_mode: self.fail_mode,
            recent: self.counters.recent(),
        }
    }

    /// Decides one request of `client` under `policy`.
    pub async fn check(&self, name: PolicyName, client: ClientKey) -> Decision {
        let policy = self.policy(name);
        let (lease, give_back) = match self.leases.take(policy, client) {
            // Quota Redis reserved for this instance: no call.
            Take::Leased(verdict) => {
                let decision = Decision::Decided {
                    verdict,
                    backend: Backend::Redis,
                };
                self.record(policy, &decision);
                return decision;
            }
            Take::Ask { lease, give_back } => (lease, give_back),
        };
        // While the `redis` breaker is open, don't wait on Redis at all. The batching
        // task's guarded call tells the breaker how Redis did.
        let decision = match self.gate.available() {
            true => match self.window.decide(policy, client, lease, give_back).await {
                Ok(verdict) => Decision::Decided {
                    verdict,
                    backend: Backend::Redis,
                },
                Err(err) => {
                    tracing::debug!(error = %err, "rate-limit decision fell back");
                    self.fallback(policy, client)
                }
            },
            false => self.fallback(policy, client),
        };
        self.record(policy, &decision);
        decision
    }

    fn fallback(&self, policy: &Policy, client: ClientKey) -> Decision {
        match self.fail_mode {
            FailMode::Local => Decision::Decided {
                verdict: self.local.decide(policy, client),
                backend: Backend::Local,
            },
            FailMode::Open => Decision::Open,
            FailMode::Closed => Decision::Closed,
        }
    }

    fn record(&self, policy: &Policy, decision: &Decision) {
        let outcome = DecisionLabel::of(decision);
        let backend = match decision {
            Decision::Decided { backend, .. } => *backend,
            Decision::Open | Decision::Closed => Backend::Fallback,
        };
        self.counters.decided(
            policy.name,
            matches!(outcome, DecisionLabel::Allowed),
            backend,
        );
        // Read first: the value rarely changes, and a swap on every request
        // would move its cache line between cores each time.
        if self.last_backend.load(Ordering::Relaxed) != backend as u8
            && self.last_backend.swap(backend as u8, Ordering::AcqRel) != backend as u8
        {
            metrics::counter!(names::RATE_LIMIT_BACKEND_SWITCHES_TOTAL, names::LABEL_BACKEND => backend.as_str())
                .increment(1);
            tracing::info!(event = "rate_limit_backend", backend = backend.as_str(), fail_mode = ?self.fail_mode, "rate limiter backend is now {}", backend.as_str());
        }
        self.decisions.count(policy.name, outcome, backend);
    }
}
