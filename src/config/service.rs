//! Settings of the service itself: listener, Redis connection, store, logs.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::parse::{parse_database_url, parse_positive_duration, parse_redis_url, parse_size};
use super::*;
use crate::domain::parse_duration;

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
    /// A request's head must arrive within this of its first byte (or of the connection
    /// opening); slower clients are disconnected.
    #[arg(global = true, long = "header-timeout", env = "TALLY_HEADER_TIMEOUT", default_value = DEFAULT_HEADER_TIMEOUT, value_parser = parse_positive_duration)]
    pub header_timeout: Duration,
    /// Request-body bytes read and decoded at once (a parsed JSON body takes about ten
    /// times its size); more wait for room, up to the body timeout, then 503.
    #[arg(global = true, long = "max-inflight-bytes", env = "TALLY_MAX_INFLIGHT_BYTES", default_value = DEFAULT_MAX_INFLIGHT_BYTES,
          value_parser = |raw: &str| parse_size(raw).map(|n| n.min(usize::MAX as u64) as usize))]
    pub max_inflight_bytes: usize,
    /// A request's body must arrive within this of its head (else 408).
    #[arg(global = true, long = "body-timeout", env = "TALLY_BODY_TIMEOUT", default_value = DEFAULT_BODY_TIMEOUT, value_parser = parse_positive_duration)]
    pub body_timeout: Duration,
    /// An idle keep-alive connection is closed after this (keep it above your load
    /// balancer's own idle timeout).
    #[arg(global = true, long = "keepalive-timeout", env = "TALLY_KEEPALIVE_TIMEOUT", default_value = DEFAULT_KEEPALIVE_TIMEOUT, value_parser = parse_positive_duration)]
    pub keepalive_timeout: Duration,
    /// A response that makes no progress for this long (the client stopped reading) is
    /// dropped with its connection.
    #[arg(global = true, long = "send-timeout", env = "TALLY_SEND_TIMEOUT", default_value = DEFAULT_SEND_TIMEOUT, value_parser = parse_positive_duration)]
    pub send_timeout: Duration,
    /// Most client connections open at once; more wait in the listen backlog.
    #[arg(global = true, long = "max-connections", env = "TALLY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,
    /// On SIGTERM, how long the instance keeps serving (new connections too) with `/ready`
    /// answering 503, so a load balancer's health checks take it out before it drains.
    #[arg(global = true, long = "shutdown-delay", env = "TALLY_SHUTDOWN_DELAY", default_value = DEFAULT_SHUTDOWN_DELAY, value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// How long shutdown then waits for in-flight requests.
    #[arg(global = true, long = "shutdown-timeout", env = "TALLY_SHUTDOWN_TIMEOUT", default_value = DEFAULT_SHUTDOWN_TIMEOUT, value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisSettings {
    /// Redis to use, in fred's URL syntax: `redis://host:port` (one server), `rediss://` (the
    /// same over TLS), `redis-cluster://host:port?node=host:port` (a Redis Cluster),
    /// `redis-sentinel://host:port/0?sentinelServiceName=NAME&node=host:port` (the primary
    /// Sentinel names).
    #[arg(global = true, long = "redis-url", env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, value_parser = parse_redis_url)]
    pub url: String,
    /// PEM file of the CA that signs the Redis servers' certificates (`rediss` URLs); unset
    /// trusts the system's roots.
    #[arg(global = true, long = "redis-ca-file", env = "REDIS_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
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
    /// Most memory the embedded store holds (points, buckets, rollups, sketches, type
    /// names), e.g. `256MiB`, `1GiB`; the oldest points go first when it is reached.
    #[arg(global = true, long = "max-memory", env = "TALLY_MAX_MEMORY", default_value = DEFAULT_MAX_MEMORY, value_parser = parse_size)]
    pub max_memory: u64,
    /// Most metric types the embedded store holds; a write that would add one more is refused (409).
    #[arg(global = true, long = "max-types", env = "TALLY_MAX_TYPES", default_value_t = DEFAULT_MAX_TYPES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_types: u64,
    /// How long an `Idempotency-Key` is remembered (a retry within it is answered again,
    /// not stored again).
    #[arg(global = true, long = "idempotency-ttl", env = "IDEMPOTENCY_TTL", default_value = DEFAULT_IDEMPOTENCY_TTL, value_parser = parse_positive_duration)]
    pub idempotency_ttl: Duration,
    /// Idempotency keys the embedded store remembers at most (the oldest go first past
    /// it); counted in TALLY_MAX_MEMORY.
    #[arg(global = true, long = "idempotency-max-keys", env = "IDEMPOTENCY_MAX_KEYS", default_value_t = DEFAULT_IDEMPOTENCY_MAX_KEYS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000_000))]
    pub max_idempotency_keys: usize,
    /// Most steps one time series answers (`GET /api/metrics/series`); a `step` giving more
    /// is refused (422) with the smallest step allowed.
    #[arg(global = true, long = "series-max-points", env = "SERIES_MAX_POINTS", default_value_t = DEFAULT_SERIES_MAX_POINTS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub series_max_points: usize,
    /// How far ahead of the server clock a timestamp may be.
    #[arg(global = true, long = "max-future-skew", env = "TALLY_MAX_FUTURE_SKEW", default_value = DEFAULT_MAX_FUTURE_SKEW, value_parser = parse_duration)]
    pub max_future_skew: Duration,
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

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Dashboard")]
pub struct DashboardSettings {
    /// Serve the ops dashboard at /dashboard (and redirect / to it).
    #[arg(id = "dashboard_enabled", global = true, long = "dashboard-enabled", env = "DASHBOARD_ENABLED", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub enabled: bool,
    /// Live-update streams open at once; more are refused with 503.
    #[arg(id = "dashboard_max_streams", global = true, long = "dashboard-max-streams", env = "DASHBOARD_MAX_STREAMS", default_value_t = DEFAULT_DASHBOARD_MAX_STREAMS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_streams: usize,
    /// Live-update streams one client may hold open at once; more are refused with 429.
    #[arg(id = "dashboard_max_streams_per_client", global = true, long = "dashboard-max-streams-per-client", env = "DASHBOARD_MAX_STREAMS_PER_CLIENT", default_value_t = DEFAULT_DASHBOARD_MAX_STREAMS_PER_CLIENT,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_streams_per_client: usize,
    /// How long an operator stays signed in to the dashboard.
    #[arg(id = "dashboard_session_ttl", global = true, long = "dashboard-session-ttl", env = "DASHBOARD_SESSION_TTL", default_value = DEFAULT_DASHBOARD_SESSION_TTL, value_parser = parse_positive_duration)]
    pub session_ttl: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database (PostgreSQL)")]
pub struct DatabaseSettings {
    /// `postgres://user@host:port/db`: store metrics in PostgreSQL; unset keeps the embedded store.
    #[arg(
        id = "database_url",
        global = true,
        long = "database-url",
        env = "DATABASE_URL",
        hide_env_values = true,
        value_parser = parse_database_url
    )]
    pub url: Option<String>,
    /// Connections in the pool.
    #[arg(id = "database_pool_size", global = true, long = "database-pool-size", env = "DATABASE_POOL_SIZE", default_value_t = DEFAULT_DATABASE_POOL_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// Bound on getting a connection and on every statement.
    #[arg(id = "database_timeout", global = true, long = "database-timeout", env = "DATABASE_TIMEOUT", default_value = DEFAULT_DATABASE_TIMEOUT, value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// Group commit: extra wait for more rows before a commit; 0 batches what queued while the last commit ran.
    #[arg(id = "database_commit_delay", global = true, long = "database-commit-delay", env = "DATABASE_COMMIT_DELAY", default_value = DEFAULT_DATABASE_COMMIT_DELAY, value_parser = parse_duration)]
    pub commit_delay: Duration,
    /// Group commit: rows that flush a batch at once.
    #[arg(id = "database_commit_rows", global = true, long = "database-commit-rows", env = "DATABASE_COMMIT_ROWS", default_value_t = DEFAULT_DATABASE_COMMIT_ROWS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub commit_rows: usize,
    /// Group commit: commits in flight at once (fewer make larger batches).
    #[arg(id = "database_max_commits", global = true, long = "database-max-commits", env = "DATABASE_MAX_COMMITS", default_value_t = DEFAULT_DATABASE_MAX_COMMITS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub max_commits: usize,
}
