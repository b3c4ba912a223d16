//! Typed settings: one struct per concern, each field from a flag or its
//! environment variable, with a named default.
//!
//! `tally --help` lists every setting with its variable and default. Tests
//! build `Settings` in code (`Settings::default()` and field updates) and never
//! touch the process environment.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::breaker::{self, BreakerConfig};
use crate::domain::parse_duration;

pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_REDIS_TIMEOUT: &str = "500ms";
pub const DEFAULT_RETENTION: &str = "7d";
pub const DEFAULT_MAX_POINTS: u64 = 10_000_000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_FUTURE_SKEW: &str = "5m";
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "10s";
pub const DEFAULT_LOG_FILTER: &str = "info";
pub const DEFAULT_RATE_LIMIT_REQUESTS: u64 = 100;
pub const DEFAULT_RATE_LIMIT_WINDOW_SECONDS: u64 = 60;
pub const DEFAULT_RATE_LIMIT_READ_REQUESTS: u64 = 600;
pub const DEFAULT_RATE_LIMIT_READ_WINDOW_SECONDS: u64 = 60;
pub const DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS: u64 = 50;
pub const DEFAULT_CACHE_LOCAL_CAPACITY: u64 = 10_000;
pub const DEFAULT_CACHE_LOCAL_TTL_MS: u64 = 1_000;
pub const DEFAULT_CACHE_TTL_SECONDS: u64 = 10;
pub const DEFAULT_CACHE_STALE_SECONDS: u64 = 30;
pub const DEFAULT_CACHE_REDIS_TIMEOUT_MS: u64 = 50;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_SIMULATOR_FAILURE_RATE: f64 = 0.1;
pub const DEFAULT_SIMULATOR_LATENCY_MS: u64 = 20;
// The breaker's own defaults, in the units of the settings.
pub const DEFAULT_BREAKER_FAILURE_THRESHOLD: u32 = breaker::DEFAULT_FAILURE_THRESHOLD;
pub const DEFAULT_BREAKER_WINDOW_SECONDS: u64 = breaker::DEFAULT_WINDOW.as_secs();
pub const DEFAULT_BREAKER_FAILURE_RATE: f64 = breaker::DEFAULT_FAILURE_RATE;
pub const DEFAULT_BREAKER_MIN_CALLS: u32 = breaker::DEFAULT_MIN_CALLS;
pub const DEFAULT_BREAKER_SLOW_CALL_MS: u64 = breaker::DEFAULT_SLOW_CALL.as_millis() as u64;
pub const DEFAULT_BREAKER_RESET_TIMEOUT_SECONDS: u64 = breaker::DEFAULT_RESET_TIMEOUT.as_secs();
pub const DEFAULT_BREAKER_HALF_OPEN_PERMITS: u32 = breaker::DEFAULT_HALF_OPEN_PERMITS;
/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

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
    pub limiter: LimiterSettings,
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub upstream: UpstreamSettings,
    #[command(flatten)]
    pub breaker: BreakerSettings,
    #[command(flatten)]
    pub admin: AdminSettings,
    #[command(flatten)]
    pub log: LogSettings,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerSettings {
    /// Address to listen on (use 0.0.0.0 only behind a firewall or in a container).
    #[arg(global = true, long = "addr", env = "TALLY_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[arg(global = true, long = "max-body-bytes", env = "TALLY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    #[arg(global = true, long = "shutdown-timeout", env = "TALLY_SHUTDOWN_TIMEOUT", default_value = DEFAULT_SHUTDOWN_TIMEOUT, value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisSettings {
    /// Redis connection URL.
    #[arg(global = true, long = "redis-url", env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, value_parser = crate::redis::parse_url)]
    pub url: String,
    /// Upper bound for connecting to Redis and for each Redis command.
    #[arg(global = true, long = "redis-timeout", env = "REDIS_TIMEOUT", default_value = DEFAULT_REDIS_TIMEOUT, value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Storage")]
pub struct StoreSettings {
    /// How long points are kept (e.g. 7d, 12h).
    #[arg(global = true, long = "retention", env = "TALLY_RETENTION", default_value = DEFAULT_RETENTION, value_parser = parse_positive_duration)]
    pub retention: Duration,
    /// Most points kept in memory; the oldest go first when it is reached.
    #[arg(global = true, long = "max-points", env = "TALLY_MAX_POINTS", default_value_t = DEFAULT_MAX_POINTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_points: u64,
    /// How far ahead of the server clock a timestamp may be.
    #[arg(global = true, long = "max-future-skew", env = "TALLY_MAX_FUTURE_SKEW", default_value = DEFAULT_MAX_FUTURE_SKEW, value_parser = parse_duration)]
    pub max_future_skew: Duration,
}

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
    /// Behaviour while Redis is unavailable.
    #[arg(global = true, long = "rate-limit-fail-mode", env = "RATE_LIMIT_FAIL_MODE", value_enum, default_value_t = FailMode::Local)]
    pub fail_mode: FailMode,
    /// Comma-separated CIDRs of proxies whose X-Forwarded-For / Forwarded headers are believed.
    #[arg(global = true, long = "trusted-proxies", env = "TRUSTED_PROXIES", default_value = "", value_parser = parse_cidrs)]
    pub trusted_proxies: TrustedProxies,
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
#[command(next_help_heading = "Circuit breakers")]
pub struct BreakerSettings {
    /// Consecutive failures that open a breaker.
    #[arg(global = true, long = "breaker-failure-threshold", env = "CIRCUIT_BREAKER_FAILURE_THRESHOLD", default_value_t = DEFAULT_BREAKER_FAILURE_THRESHOLD,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub failure_threshold: u32,
    /// Sliding window for the failure and slow-call rates, in seconds.
    #[arg(global = true, id = "breaker_window_seconds", long = "breaker-window-seconds", env = "CIRCUIT_BREAKER_WINDOW_SECONDS", default_value_t = DEFAULT_BREAKER_WINDOW_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub window_seconds: u64,
    /// Failure (or slow-call) rate over the window that opens a breaker (0..1).
    #[arg(global = true, id = "breaker_failure_rate", long = "breaker-failure-rate", env = "CIRCUIT_BREAKER_FAILURE_RATE", default_value_t = DEFAULT_BREAKER_FAILURE_RATE,
          value_parser = parse_ratio)]
    pub failure_rate: f64,
    /// Calls in the window before the rates count.
    #[arg(global = true, long = "breaker-min-calls", env = "CIRCUIT_BREAKER_MIN_CALLS", default_value_t = DEFAULT_BREAKER_MIN_CALLS,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub min_calls: u32,
    /// Calls slower than this count as slow, in milliseconds.
    #[arg(global = true, long = "breaker-slow-call-ms", env = "CIRCUIT_BREAKER_SLOW_CALL_MS", default_value_t = DEFAULT_BREAKER_SLOW_CALL_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub slow_call_ms: u64,
    /// How long an open breaker waits before probing, in seconds.
    #[arg(global = true, long = "breaker-reset-timeout", env = "CIRCUIT_BREAKER_RESET_TIMEOUT", default_value_t = DEFAULT_BREAKER_RESET_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub reset_timeout_seconds: u64,
    /// Probe calls a half-open breaker admits.
    #[arg(global = true, long = "breaker-half-open-permits", env = "CIRCUIT_BREAKER_HALF_OPEN_PERMITS", default_value_t = DEFAULT_BREAKER_HALF_OPEN_PERMITS,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub half_open_permits: u32,
}

impl BreakerSettings {
    pub fn config(&self) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: self.failure_threshold,
            window: Duration::from_secs(self.window_seconds),
            failure_rate: self.failure_rate,
            min_calls: self.min_calls,
            slow_call: Duration::from_millis(self.slow_call_ms),
            reset_timeout: Duration::from_secs(self.reset_timeout_seconds),
            half_open_permits: self.half_open_permits,
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Administration")]
pub struct AdminSettings {
    /// Comma-separated `name:token` pairs allowed to use /admin (tokens of 16+ characters); empty turns admin off.
    #[arg(global = true, long = "admin-tokens", env = "ADMIN_TOKENS", default_value = "", hide_env_values = true, value_parser = parse_tokens)]
    pub tokens: AdminTokens,
}

/// Named admin tokens. `Debug` never shows a token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminTokens(pub Vec<(String, String)>);

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

fn parse_tokens(raw: &str) -> Result<AdminTokens, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, token) = pair
                .split_once(':')
                .ok_or_else(|| "each entry must be name:token".to_string())?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                return Err("token names must be letters, digits, '_', '.' or '-'".into());
            }
            if token.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(format!(
                    "the token of '{name}' is shorter than {MIN_ADMIN_TOKEN_LEN} characters"
                ));
            }
            Ok((name.to_owned(), token.to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(AdminTokens)
}

fn parse_ratio(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be a number between 0 and 1".into()),
    }
}

fn parse_http_url(raw: &str) -> Result<String, String> {
    if !raw.starts_with("http://") || raw.len() <= "http://".len() {
        return Err("must be an http:// URL (TLS is not compiled in)".into());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// The proxies allowed to tell us who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

fn parse_cidrs(raw: &str) -> Result<TrustedProxies, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("'{s}' is not an IP address or CIDR"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TrustedProxies)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging and telemetry")]
pub struct LogSettings {
    /// Record Prometheus metrics and serve them at /metrics.
    #[arg(global = true, long = "metrics-enabled", env = "METRICS_ENABLED", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_enabled: bool,
    /// Log line format.
    #[arg(global = true, long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub format: LogFormat,
    /// Log filter in tracing's EnvFilter syntax (e.g. `info,tally=debug`).
    #[arg(global = true, long = "log", env = "RUST_LOG", default_value = DEFAULT_LOG_FILTER)]
    pub filter: String,
}

fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        d if d.is_zero() => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

fn default_duration(raw: &str) -> Duration {
    humantime::parse_duration(raw).unwrap_or_default()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                addr: DEFAULT_ADDR
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8000))),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                shutdown_timeout: default_duration(DEFAULT_SHUTDOWN_TIMEOUT),
            },
            redis: RedisSettings {
                url: DEFAULT_REDIS_URL.into(),
                timeout: default_duration(DEFAULT_REDIS_TIMEOUT),
            },
            store: StoreSettings {
                retention: default_duration(DEFAULT_RETENTION),
                max_points: DEFAULT_MAX_POINTS,
                max_future_skew: default_duration(DEFAULT_MAX_FUTURE_SKEW),
            },
            limiter: LimiterSettings {
                enabled: true,
                write_requests: DEFAULT_RATE_LIMIT_REQUESTS,
                write_window_seconds: DEFAULT_RATE_LIMIT_WINDOW_SECONDS,
                read_requests: DEFAULT_RATE_LIMIT_READ_REQUESTS,
                read_window_seconds: DEFAULT_RATE_LIMIT_READ_WINDOW_SECONDS,
                redis_timeout_ms: DEFAULT_RATE_LIMIT_REDIS_TIMEOUT_MS,
                fail_mode: FailMode::Local,
                trusted_proxies: TrustedProxies::default(),
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
            breaker: BreakerSettings {
                failure_threshold: DEFAULT_BREAKER_FAILURE_THRESHOLD,
                window_seconds: DEFAULT_BREAKER_WINDOW_SECONDS,
                failure_rate: DEFAULT_BREAKER_FAILURE_RATE,
                min_calls: DEFAULT_BREAKER_MIN_CALLS,
                slow_call_ms: DEFAULT_BREAKER_SLOW_CALL_MS,
                reset_timeout_seconds: DEFAULT_BREAKER_RESET_TIMEOUT_SECONDS,
                half_open_permits: DEFAULT_BREAKER_HALF_OPEN_PERMITS,
            },
            admin: AdminSettings {
                tokens: AdminTokens::default(),
            },
            log: LogSettings {
                metrics_enabled: true,
                format: LogFormat::Text,
                filter: DEFAULT_LOG_FILTER.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tally").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_default_impl() {
        // Only meaningful when the test process has none of the variables set.
        let vars = [
            "TALLY_ADDR",
            "REDIS_URL",
            "TALLY_RETENTION",
            "TALLY_MAX_POINTS",
        ];
        if vars.iter().any(|v| std::env::var_os(v).is_some()) {
            return;
        }
        let cli = parse(&[]).expect("defaults parse");
        let d = Settings::default();
        assert_eq!(cli.settings.server.addr, d.server.addr);
        assert_eq!(
            cli.settings.store.retention,
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(cli.settings.store.max_points, d.store.max_points);
        assert_eq!(cli.settings.server.max_body_bytes, 1 << 20);
        assert_eq!(cli.settings.store.max_future_skew, Duration::from_secs(300));
        assert_eq!(cli.settings.redis.timeout, d.redis.timeout);
    }

    #[test]
    fn invalid_values_are_rejected() {
        for args in [
            &["--addr", "nope"][..],
            &["--retention", "0s"],
            &["--retention", "seven days"],
            &["--max-points", "0"],
            &["--max-points", "-3"],
            &["--max-body-bytes", "abc"],
            &["--log-format", "xml"],
            &["--rate-limit-requests", "0"],
            &["--rate-limit-enabled", "maybe"],
            &["--rate-limit-fail-mode", "sideways"],
            &["--trusted-proxies", "10.0.0.0/8,not-an-ip"],
            &["--admin-tokens", "alice:short"],
            &["--admin-tokens", "no-colon-here-at-all"],
            &["--breaker-failure-rate", "1.5"],
            &["--upstream-url", "ftp://x"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn flags_override_defaults() {
        let cli = parse(&[
            "--addr",
            "0.0.0.0:9000",
            "--retention",
            "12h",
            "--log-format",
            "json",
        ])
        .expect("valid flags");
        assert_eq!(cli.settings.server.addr.port(), 9000);
        assert_eq!(cli.settings.store.retention, Duration::from_secs(12 * 3600));
        assert_eq!(cli.settings.log.format, LogFormat::Json);
    }

    #[test]
    fn limiter_flags() {
        let cli = parse(&[
            "--rate-limit-enabled",
            "false",
            "--trusted-proxies",
            "10.0.0.0/8, 192.168.1.7 ,::1",
            "--rate-limit-fail-mode",
            "closed",
        ])
        .expect("valid flags");
        let l = cli.settings.limiter;
        assert!(!l.enabled);
        assert_eq!(l.fail_mode, FailMode::Closed);
        assert_eq!(l.trusted_proxies.0.len(), 3);
        assert_eq!(l.trusted_proxies.0[1].to_string(), "192.168.1.7/32");
    }
}
