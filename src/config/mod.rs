//! Typed settings: one struct per concern, each field from a flag or its
//! environment variable, with a named default.
//!
//! `tally --help` lists every setting with its variable and default. Tests
//! build `Settings` in code (`Settings::default()` and field updates) and never
//! touch the process environment.
//!
//! One file per group: `service` (server, Redis, store, logs), `resilience`
//! (limiter, cache, upstream, admin), `breakers` (the three breakers' policies), `parse` (value
//! parsers).

mod breakers;
mod parse;
mod resilience;
mod service;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

pub use breakers::*;
pub use resilience::{
    AdminSettings, AdminTokens, CacheSettings, FailMode, ForwardedHeader, LimiterSettings,
    TrustedProxies, UpstreamSettings,
};
pub use service::{
    DashboardSettings, DatabaseSettings, LogFormat, LogSettings, RedisSettings, ServerSettings,
    StoreSettings,
};

pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_REDIS_TIMEOUT: &str = "500ms";
pub const DEFAULT_RETENTION: &str = "7d";
pub const DEFAULT_MAX_POINTS: u64 = 10_000_000;
/// Fits a 512 MiB container with room for the rest of the process.
pub const DEFAULT_MAX_MEMORY: &str = "256MiB";
/// A type costs at least about 6 KB (its minute, hour and day maps): 20,000 fresh types
/// take about half the default memory budget.
pub const DEFAULT_MAX_TYPES: u64 = 20_000;
/// The draft's example lifetime: a day of retries.
pub const DEFAULT_IDEMPOTENCY_TTL: &str = "24h";
/// About 40 MiB of keys and answers at most, in the memory budget.
pub const DEFAULT_IDEMPOTENCY_MAX_KEYS: usize = 100_000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_FUTURE_SKEW: &str = "5m";
/// A day at one-minute steps.
pub const DEFAULT_SERIES_MAX_POINTS: usize = 1_440;
/// Longer than a load balancer needs to see `/ready` fail: HAProxy checking every second
/// and marking a server down after two failures (`deploy/haproxy.cfg`) takes about 2 s.
pub const DEFAULT_SHUTDOWN_DELAY: &str = "5s";
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "10s";
pub const DEFAULT_HEADER_TIMEOUT: &str = "10s";
pub const DEFAULT_BODY_TIMEOUT: &str = "30s";
/// Four of the largest bodies at once: about 40 MiB while they are parsed.
pub const DEFAULT_MAX_INFLIGHT_BYTES: &str = "4MiB";
/// Above the 60 s idle timeout of common load balancers, so they close first.
pub const DEFAULT_KEEPALIVE_TIMEOUT: &str = "75s";
pub const DEFAULT_SEND_TIMEOUT: &str = "30s";
/// Under the usual 65,536 file descriptors, with room for Redis, PostgreSQL and logs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_LOG_FILTER: &str = "info";
pub const DEFAULT_RATE_LIMIT_REQUESTS: u64 = 100;
pub const DEFAULT_RATE_LIMIT_WINDOW_SECONDS: u64 = 60;
pub const DEFAULT_RATE_LIMIT_READ_REQUESTS: u64 = 600;
pub const DEFAULT_RATE_LIMIT_READ_WINDOW_SECONDS: u64 = 60;
pub const DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS: u64 = 50;
pub const DEFAULT_RATE_LIMIT_LEASE_MS: u64 = 500;
pub const DEFAULT_CACHE_LOCAL_CAPACITY: u64 = 10_000;
pub const DEFAULT_CACHE_LOCAL_TTL_MS: u64 = 1_000;
pub const DEFAULT_CACHE_TTL_SECONDS: u64 = 10;
pub const DEFAULT_CACHE_STALE_SECONDS: u64 = 30;
pub const DEFAULT_CACHE_REDIS_TIMEOUT_MS: u64 = 50;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_SIMULATOR_FAILURE_RATE: f64 = 0.1;
pub const DEFAULT_SIMULATOR_LATENCY_MS: u64 = 20;
pub const DEFAULT_DATABASE_POOL_SIZE: u32 = 10;
pub const DEFAULT_DATABASE_TIMEOUT: &str = "2s";
pub const DEFAULT_DATABASE_COMMIT_DELAY: &str = "0ms";
pub const DEFAULT_DATABASE_COMMIT_ROWS: usize = 5_000;
pub const DEFAULT_DATABASE_MAX_COMMITS: usize = 2;
pub const DEFAULT_DASHBOARD_MAX_STREAMS: usize = 200;
/// A few tabs of the dashboard per operator.
pub const DEFAULT_DASHBOARD_MAX_STREAMS_PER_CLIENT: usize = 4;
pub const DEFAULT_DASHBOARD_SESSION_TTL: &str = "8h";
pub const DEFAULT_SIGN_IN_MAX_FAILURES: usize = 10;
pub const DEFAULT_SIGN_IN_FAILURE_WINDOW: &str = "1m";
/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// A settings error as one line naming what the operator set: the environment variable
/// and the flag, the value and the rule, e.g.
/// `TALLY_MAX_POINTS (--max-points) = 'lots': invalid digit found in string`.
/// Errors about no one setting keep clap's own first line.
pub fn one_line_error(e: &clap::Error) -> String {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return first;
    };
    // `--max-points <MAX_POINTS>` names the flag; find its variable.
    let long = arg
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches("--");
    let command = Cli::command();
    let Some(setting) = command.get_arguments().find(|a| a.get_long() == Some(long)) else {
        return first;
    };
    // The rule: the values allowed, or what clap says after the value (the parser's reason).
    let rule = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => format!("must be one of {}", valid.join(", ")),
        _ => first
            .split_once(&format!("for '{arg}'"))
            .map(|(_, rest)| rest.trim_start_matches(':').trim())
            .filter(|rest| !rest.is_empty())
            .unwrap_or("not a valid value")
            .to_owned(),
    };
    let var = setting.get_env().map(|v| v.to_string_lossy().into_owned());
    // A secret is not repeated: a URL without its password, anything else not at all.
    let value = match setting.is_hide_env_values_set() {
        false => format!("'{value}'"),
        true if value.contains("://") => format!("'{}'", parse::redact_password(value)),
        true => "(not shown)".to_owned(),
    };
    match var {
        Some(var) => format!("{var} (--{long}) = {value}: {rule}"),
        None => format!("--{long} = {value}: {rule}"),
    }
}

/// Command line of the `tally` binary.
#[derive(Debug, Parser)]
#[command(name = "tally", version, about = "Real-time analytics API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (the default).
    Serve,
    /// Print the OpenAPI document the server serves at /openapi.json.
    Openapi,
    /// Run only the upstream simulator (at /simulator/data) on --addr.
    Simulator,
}

/// Everything the service needs to start.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub store: StoreSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub limiter: LimiterSettings,
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub upstream: UpstreamSettings,
    #[command(flatten)]
    pub breaker: BreakerSettings,
    #[command(flatten)]
    pub redis_breaker: RedisBreakerSettings,
    #[command(flatten)]
    pub database_breaker: DatabaseBreakerSettings,
    #[command(flatten)]
    pub admin: AdminSettings,
    #[command(flatten)]
    pub log: LogSettings,
    #[command(flatten)]
    pub dashboard: DashboardSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                addr: DEFAULT_ADDR
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8000))),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                shutdown_delay: parse::default_duration(DEFAULT_SHUTDOWN_DELAY),
                shutdown_timeout: parse::default_duration(DEFAULT_SHUTDOWN_TIMEOUT),
                header_timeout: parse::default_duration(DEFAULT_HEADER_TIMEOUT),
                body_timeout: parse::default_duration(DEFAULT_BODY_TIMEOUT),
                max_inflight_bytes: parse::default_size(DEFAULT_MAX_INFLIGHT_BYTES) as usize,
                keepalive_timeout: parse::default_duration(DEFAULT_KEEPALIVE_TIMEOUT),
                send_timeout: parse::default_duration(DEFAULT_SEND_TIMEOUT),
                max_connections: DEFAULT_MAX_CONNECTIONS,
            },
            redis: RedisSettings {
                url: DEFAULT_REDIS_URL.into(),
                ca_file: None,
                timeout: parse::default_duration(DEFAULT_REDIS_TIMEOUT),
            },
            store: StoreSettings {
                retention: parse::default_duration(DEFAULT_RETENTION),
                max_points: DEFAULT_MAX_POINTS,
                max_memory: parse::default_size(DEFAULT_MAX_MEMORY),
                max_types: DEFAULT_MAX_TYPES,
                idempotency_ttl: parse::default_duration(DEFAULT_IDEMPOTENCY_TTL),
                max_idempotency_keys: DEFAULT_IDEMPOTENCY_MAX_KEYS,
                series_max_points: DEFAULT_SERIES_MAX_POINTS,
                max_future_skew: parse::default_duration(DEFAULT_MAX_FUTURE_SKEW),
            },
            database: DatabaseSettings {
                url: None,
                pool_size: DEFAULT_DATABASE_POOL_SIZE,
                timeout: parse::default_duration(DEFAULT_DATABASE_TIMEOUT),
                commit_delay: parse::default_duration(DEFAULT_DATABASE_COMMIT_DELAY),
                commit_rows: DEFAULT_DATABASE_COMMIT_ROWS,
                max_commits: DEFAULT_DATABASE_MAX_COMMITS,
            },
            limiter: LimiterSettings {
                enabled: true,
                write_requests: DEFAULT_RATE_LIMIT_REQUESTS,
                write_window_seconds: DEFAULT_RATE_LIMIT_WINDOW_SECONDS,
                read_requests: DEFAULT_RATE_LIMIT_READ_REQUESTS,
                read_window_seconds: DEFAULT_RATE_LIMIT_READ_WINDOW_SECONDS,
                redis_timeout_ms: DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS,
                lease_ms: DEFAULT_RATE_LIMIT_LEASE_MS,
                fail_mode: FailMode::Local,
                trusted_proxies: TrustedProxies::default(),
                forwarded_header: ForwardedHeader::XForwardedFor,
            },
            cache: CacheSettings {
                local_capacity: DEFAULT_CACHE_LOCAL_CAPACITY,
                local_ttl_ms: DEFAULT_CACHE_LOCAL_TTL_MS,
                ttl_seconds: DEFAULT_CACHE_TTL_SECONDS,
                stale_seconds: DEFAULT_CACHE_STALE_SECONDS,
                redis_timeout_ms: DEFAULT_CACHE_REDIS_TIMEOUT_MS,
            },
            upstream: UpstreamSettings {
                url: None,
                timeout_ms: DEFAULT_UPSTREAM_TIMEOUT_MS,
                simulator_failure_rate: DEFAULT_SIMULATOR_FAILURE_RATE,
                simulator_latency_ms: DEFAULT_SIMULATOR_LATENCY_MS,
            },
            breaker: BreakerSettings::default(),
            redis_breaker: RedisBreakerSettings::default(),
            database_breaker: DatabaseBreakerSettings::default(),
            admin: AdminSettings {
                tokens: AdminTokens::default(),
                max_failures: DEFAULT_SIGN_IN_MAX_FAILURES,
                failure_window: parse::default_duration(DEFAULT_SIGN_IN_FAILURE_WINDOW),
            },
            log: LogSettings {
                metrics_enabled: true,
                format: LogFormat::Text,
                filter: DEFAULT_LOG_FILTER.into(),
            },
            dashboard: DashboardSettings {
                enabled: true,
                max_streams: DEFAULT_DASHBOARD_MAX_STREAMS,
                max_streams_per_client: DEFAULT_DASHBOARD_MAX_STREAMS_PER_CLIENT,
                session_ttl: parse::default_duration(DEFAULT_DASHBOARD_SESSION_TTL),
            },
        }
    }
}
