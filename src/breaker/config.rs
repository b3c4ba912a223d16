//! The breaker's settings: thresholds, window, timeouts, with named defaults.

use std::time::Duration;

use serde::{Serialize, Serializer};

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
pub const DEFAULT_MIN_CALLS: u32 = 10;
pub const DEFAULT_SLOW_CALL: Duration = Duration::from_millis(1_000);
pub const DEFAULT_RESET_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HALF_OPEN_PERMITS: u32 = 1;

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
        Self {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            window: DEFAULT_WINDOW,
            failure_rate: DEFAULT_FAILURE_RATE,
            min_calls: DEFAULT_MIN_CALLS,
            slow_call: DEFAULT_SLOW_CALL,
            reset_timeout: DEFAULT_RESET_TIMEOUT,
            half_open_permits: DEFAULT_HALF_OPEN_PERMITS,
        }
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
