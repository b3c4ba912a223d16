//! Circuit-breaker policies: how each breaker decides (`BreakerConfig`), and one set of
//! settings per guarded dependency (upstream, Redis, database), each with named defaults.

use std::time::Duration;

use clap::Args;
use serde::{Serialize, Serializer};

use super::parse::parse_ratio;

/// How one breaker decides. Durations serialize as milliseconds (`*_ms`) so
/// the status JSON stays flat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerConfig {
    /// Consecutive failures (failures and timeouts) that open the breaker;
    /// 0 disables this rule.
    pub failure_threshold: u32,
    /// Length of the sliding window the rates are computed over, kept in
    /// one-second buckets (so it is rounded up to whole seconds).
    #[serde(rename = "window_ms", serialize_with = "millis")]
    pub window: Duration,
    /// Failure rate (and slow-call rate) over the window that opens the
    /// breaker, in 0..=1; above 1 disables the rate rules.
    pub failure_rate: f64,
    /// Calls the window must hold before either rate may open the breaker,
    /// so a handful of early failures cannot trip it.
    pub min_calls: u32,
    /// A successful call that took longer than this counts as slow.
    #[serde(rename = "slow_call_ms", serialize_with = "millis")]
    pub slow_call: Duration,
    /// How long the breaker stays open before admitting probes, and how long
    /// a probe may hold its permit before the permit is reclaimed.
    #[serde(rename = "reset_timeout_ms", serialize_with = "millis")]
    pub reset_timeout: Duration,
    /// Probes admitted while half-open; all must succeed to close. 0 is
    /// treated as 1, otherwise the breaker could never close.
    pub half_open_permits: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerSettings::default().config()
    }
}

impl BreakerConfig {
    pub(crate) fn permits(&self) -> u32 {
        self.half_open_permits.max(1)
    }

    /// A rate over no calls means nothing, so at least one call is required.
    pub(crate) fn min_calls(&self) -> u32 {
        self.min_calls.max(1)
    }
}

fn millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

// The upstream's breaker (`CIRCUIT_BREAKER_*`): a remote service that may be slow or flaky,
// judged over a window before it is cut off.
pub const DEFAULT_BREAKER_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_BREAKER_WINDOW_SECONDS: u64 = 30;
pub const DEFAULT_BREAKER_FAILURE_RATE: f64 = 0.5;
pub const DEFAULT_BREAKER_MIN_CALLS: u32 = 10;
pub const DEFAULT_BREAKER_SLOW_CALL_MS: u64 = 1_000;
pub const DEFAULT_BREAKER_RESET_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_BREAKER_HALF_OPEN_PERMITS: u32 = 1;

// The `redis` breaker (`REDIS_BREAKER_*`), shared by the limiter and the cache: one failed
// call (a timeout is already a strong signal) takes Redis out of use, so no request waits on
// a dead Redis; one probe every two seconds brings it back.
pub const DEFAULT_REDIS_BREAKER_FAILURE_THRESHOLD: u32 = 1;
pub const DEFAULT_REDIS_BREAKER_RESET_TIMEOUT_SECONDS: u64 = 2;

// The `database` breaker (`DATABASE_BREAKER_*`): three failed calls in a row take
// PostgreSQL out of use; a probe every two seconds brings it back.
pub const DEFAULT_DATABASE_BREAKER_FAILURE_THRESHOLD: u32 = 3;
pub const DEFAULT_DATABASE_BREAKER_RESET_TIMEOUT_SECONDS: u64 = 2;

/// One breaker's settings: `$name` reads `--$long-*` and `$env_*`, with the given defaults
/// for the consecutive failures and the reset timeout (the rest are the upstream's).
macro_rules! breaker_settings {
    ($(#[$doc:meta])* $name:ident, $heading:literal, $id:literal, $long:literal, $env:literal,
     $threshold:expr, $reset:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Args)]
        #[command(next_help_heading = $heading)]
        pub struct $name {
            /// Consecutive failures that open the breaker.
            #[arg(global = true, id = concat!($id, "_failure_threshold"),
                  long = concat!($long, "-failure-threshold"), env = concat!($env, "_FAILURE_THRESHOLD"),
                  default_value_t = $threshold, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
            pub failure_threshold: u32,
            /// Sliding window for the failure and slow-call rates, in seconds.
            #[arg(global = true, id = concat!($id, "_window_seconds"),
                  long = concat!($long, "-window-seconds"), env = concat!($env, "_WINDOW_SECONDS"),
                  default_value_t = DEFAULT_BREAKER_WINDOW_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3_600))]
            pub window_seconds: u64,
            /// Failure (or slow-call) rate over the window that opens the breaker (0..1).
            #[arg(global = true, id = concat!($id, "_failure_rate"),
                  long = concat!($long, "-failure-rate"), env = concat!($env, "_FAILURE_RATE"),
                  default_value_t = DEFAULT_BREAKER_FAILURE_RATE, value_parser = parse_ratio)]
            pub failure_rate: f64,
            /// Calls in the window before the rates count.
            #[arg(global = true, id = concat!($id, "_min_calls"),
                  long = concat!($long, "-min-calls"), env = concat!($env, "_MIN_CALLS"),
                  default_value_t = DEFAULT_BREAKER_MIN_CALLS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
            pub min_calls: u32,
            /// Calls slower than this count as slow, in milliseconds.
            #[arg(global = true, id = concat!($id, "_slow_call_ms"),
                  long = concat!($long, "-slow-call-ms"), env = concat!($env, "_SLOW_CALL_MS"),
                  default_value_t = DEFAULT_BREAKER_SLOW_CALL_MS, value_parser = clap::value_parser!(u64).range(1..=600_000))]
            pub slow_call_ms: u64,
            /// How long the open breaker waits before probing, in seconds.
            #[arg(global = true, id = concat!($id, "_reset_timeout"),
                  long = concat!($long, "-reset-timeout"), env = concat!($env, "_RESET_TIMEOUT"),
                  default_value_t = $reset, value_parser = clap::value_parser!(u64).range(1..=86_400))]
            pub reset_timeout_seconds: u64,
            /// Probe calls the half-open breaker admits.
            #[arg(global = true, id = concat!($id, "_half_open_permits"),
                  long = concat!($long, "-half-open-permits"), env = concat!($env, "_HALF_OPEN_PERMITS"),
                  default_value_t = DEFAULT_BREAKER_HALF_OPEN_PERMITS, value_parser = clap::value_parser!(u32).range(1..=1_000))]
            pub half_open_permits: u32,
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    failure_threshold: $threshold,
                    window_seconds: DEFAULT_BREAKER_WINDOW_SECONDS,
                    failure_rate: DEFAULT_BREAKER_FAILURE_RATE,
                    min_calls: DEFAULT_BREAKER_MIN_CALLS,
                    slow_call_ms: DEFAULT_BREAKER_SLOW_CALL_MS,
                    reset_timeout_seconds: $reset,
                    half_open_permits: DEFAULT_BREAKER_HALF_OPEN_PERMITS,
                }
            }
        }

        impl $name {
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
    };
}

breaker_settings!(
    /// The `upstream` breaker, around `/api/external`'s calls.
    BreakerSettings, "Circuit breaker: upstream", "breaker", "breaker", "CIRCUIT_BREAKER",
    DEFAULT_BREAKER_FAILURE_THRESHOLD, DEFAULT_BREAKER_RESET_TIMEOUT_SECONDS
);
breaker_settings!(
    /// The `redis` breaker, around the limiter's and the cache's Redis calls.
    RedisBreakerSettings, "Circuit breaker: Redis", "redis_breaker", "redis-breaker", "REDIS_BREAKER",
    DEFAULT_REDIS_BREAKER_FAILURE_THRESHOLD, DEFAULT_REDIS_BREAKER_RESET_TIMEOUT_SECONDS
);
breaker_settings!(
    /// The `database` breaker, around the PostgreSQL store's calls.
    DatabaseBreakerSettings, "Circuit breaker: database", "database_breaker", "database-breaker",
    "DATABASE_BREAKER", DEFAULT_DATABASE_BREAKER_FAILURE_THRESHOLD,
    DEFAULT_DATABASE_BREAKER_RESET_TIMEOUT_SECONDS
);
