//! Settings of the resilience machinery: rate limiter, cache, upstream and its
//! simulator, circuit breakers, and the admin tokens that operate them.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::parse::{
    parse_cidrs, parse_http_url, parse_positive_duration, parse_ratio, parse_tokens,
};
use super::*;

/// What the limiter does while Redis cannot decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    /// Enforce the same policy with an in-process limiter (per instance).
    Local,
    /// Let every request through.
    Open,
    /// Refuse every limited request with 503.
    Closed,
}

/// The header the trusted proxies write the client's address into. Only
/// that one is read: a proxy passes on the others as the client sent them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, Envoy, cloud load balancers).
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), its `for=` parameters.
    #[value(name = "forwarded")]
    Forwarded,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rate limiting")]
pub struct LimiterSettings {
    /// Turn the /api rate limiter on or off.
    #[arg(global = true, long = "rate-limit-enabled", env = "RATE_LIMIT_ENABLED", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub enabled: bool,
    /// Writes (POST) allowed per client per write window.
    #[arg(global = true, long = "rate-limit-requests", env = "RATE_LIMIT_REQUESTS", default_value_t = DEFAULT_RATE_LIMIT_REQUESTS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    pub write_requests: u64,
    /// Length of the write window, in seconds.
    #[arg(global = true, long = "rate-limit-window-seconds", env = "RATE_LIMIT_WINDOW_SECONDS", default_value_t = DEFAULT_RATE_LIMIT_WINDOW_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub write_window_seconds: u64,
    /// Reads (GET) allowed per client per read window.
    #[arg(global = true, long = "rate-limit-read-requests", env = "RATE_LIMIT_READ_REQUESTS", default_value_t = DEFAULT_RATE_LIMIT_READ_REQUESTS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    pub read_requests: u64,
    /// Length of the read window, in seconds.
    #[arg(global = true, long = "rate-limit-read-window-seconds", env = "RATE_LIMIT_READ_WINDOW_SECONDS", default_value_t = DEFAULT_RATE_LIMIT_READ_WINDOW_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub read_window_seconds: u64,
    /// Longest wait on Redis for one decision before falling back, in milliseconds.
    #[arg(global = true, long = "rate-limit-redis-timeout-ms", env = "RATE_LIMIT_REDIS_TIMEOUT_MS", default_value_t = DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,
    /// How long a quota lease lasts, in milliseconds: a busy client's slots that Redis reserves for this instance, handed out without a call each (0: every decision calls Redis).
    #[arg(global = true, long = "rate-limit-lease-ms", env = "RATE_LIMIT_LEASE_MS", default_value_t = DEFAULT_RATE_LIMIT_LEASE_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub lease_ms: u64,
    /// Behaviour while Redis is unavailable.
    #[arg(global = true, long = "rate-limit-fail-mode", env = "RATE_LIMIT_FAIL_MODE", value_enum, default_value_t = FailMode::Local)]
    pub fail_mode: FailMode,
    /// Comma-separated CIDRs of proxies whose forwarded-address header (FORWARDED_HEADER) is believed.
    #[arg(global = true, long = "trusted-proxies", env = "TRUSTED_PROXIES", default_value = "", value_parser = parse_cidrs)]
    pub trusted_proxies: TrustedProxies,
    /// The header the trusted proxies set; the other is ignored.
    #[arg(global = true, long = "forwarded-header", env = "FORWARDED_HEADER", value_enum, default_value_t = ForwardedHeader::XForwardedFor)]
    pub forwarded_header: ForwardedHeader,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Summary cache")]
pub struct CacheSettings {
    /// Most summaries kept in the in-process tier.
    #[arg(global = true, long = "cache-local-capacity", env = "CACHE_LOCAL_CAPACITY", default_value_t = DEFAULT_CACHE_LOCAL_CAPACITY,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub local_capacity: u64,
    /// How long the in-process tier answers on its own before asking Redis, in milliseconds.
    #[arg(global = true, long = "cache-local-ttl-ms", env = "CACHE_LOCAL_TTL_MS", default_value_t = DEFAULT_CACHE_LOCAL_TTL_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub local_ttl_ms: u64,
    /// How long a summary stays fresh, in seconds.
    #[arg(global = true, long = "cache-ttl-seconds", env = "CACHE_TTL_SECONDS", default_value_t = DEFAULT_CACHE_TTL_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub ttl_seconds: u64,
    /// How long after expiry a summary may be served stale while it is refreshed (or when computing fails), in seconds.
    #[arg(global = true, long = "cache-stale-seconds", env = "CACHE_STALE_SECONDS", default_value_t = DEFAULT_CACHE_STALE_SECONDS,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub stale_seconds: u64,
    /// Longest wait on Redis for one cache read or write, in milliseconds.
    #[arg(global = true, id = "cache_redis_timeout_ms", long = "cache-redis-timeout-ms", env = "CACHE_REDIS_TIMEOUT_MS", default_value_t = DEFAULT_CACHE_REDIS_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Upstream and simulator")]
pub struct UpstreamSettings {
    /// Root URL of the external service (its data is at {url}/data); default: the built-in simulator at http://{addr}/simulator.
    #[arg(global = true, id = "upstream_url", long = "upstream-url", env = "UPSTREAM_URL", value_parser = parse_http_url)]
    pub url: Option<String>,
    /// Upper bound for every upstream call, in milliseconds.
    #[arg(global = true, id = "upstream_timeout_ms", long = "upstream-timeout-ms", env = "UPSTREAM_TIMEOUT_MS", default_value_t = DEFAULT_UPSTREAM_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// Simulator: probability (0..1) that a request fails, at start.
    #[arg(global = true, long = "simulator-failure-rate", env = "EXTERNAL_SERVICE_FAILURE_RATE", default_value_t = DEFAULT_SIMULATOR_FAILURE_RATE,
          value_parser = parse_ratio)]
    pub simulator_failure_rate: f64,
    /// Simulator: latency added to every answer, in milliseconds, at start.
    #[arg(global = true, long = "simulator-latency-ms", env = "EXTERNAL_SERVICE_LATENCY_MS", default_value_t = DEFAULT_SIMULATOR_LATENCY_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub simulator_latency_ms: u64,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Administration")]
pub struct AdminSettings {
    /// Comma-separated `name:token` pairs allowed to use /admin (tokens of 16+ characters); empty turns admin off.
    #[arg(global = true, long = "admin-tokens", env = "ADMIN_TOKENS", default_value = "", hide_env_values = true, value_parser = parse_tokens)]
    pub tokens: AdminTokens,
    /// Failed sign-ins (admin API and dashboard) a client may make per window; more are
    /// refused with 429 until the oldest leaves the window.
    #[arg(global = true, long = "sign-in-max-failures", env = "SIGN_IN_MAX_FAILURES", default_value_t = DEFAULT_SIGN_IN_MAX_FAILURES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_failures: usize,
    /// The window failed sign-ins are counted over.
    #[arg(global = true, long = "sign-in-failure-window", env = "SIGN_IN_FAILURE_WINDOW", default_value = DEFAULT_SIGN_IN_FAILURE_WINDOW, value_parser = parse_positive_duration)]
    pub failure_window: Duration,
}

/// Named admin tokens. `Debug` never shows a token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminTokens(pub Vec<(String, String)>);

impl AdminTokens {
    /// The name of the token matching `presented`; every token is compared in full, in
    /// constant time.
    pub fn find(&self, presented: &str) -> Option<&str> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (name, token) in &self.0 {
            if bool::from(token.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

/// The proxies allowed to tell us who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);
