//! The vocabulary: what a call's outcome was, which state a breaker is in,
//! and the running counts of outcomes.

use serde::Serialize;

/// How one call went, as the caller classifies it. Timeouts, connection
/// errors and 5xx are failures; a 4xx is the caller's fault, not the
/// dependency's, so it should be classified `Success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Succeeded, but took longer than `slow_call`.
    Slow,
    Failure,
    Timeout,
}

impl Outcome {
    /// Failures and timeouts both count against the dependency.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::Timeout)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Slow => "slow",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
        }
    }
}

/// Where a breaker is. The forced states are set by an operator and hold
/// until the next operator action; nothing automatic leaves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
    ForcedOpen,
    ForcedClosed,
}

impl BreakerState {
    pub const ALL: [BreakerState; 5] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::ForcedClosed => "forced_closed",
        }
    }

    pub fn is_forced(self) -> bool {
        matches!(self, BreakerState::ForcedOpen | BreakerState::ForcedClosed)
    }

    /// Whether calls are being turned away (all of them, or all but probes).
    pub fn is_open(self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::ForcedOpen)
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Calls by outcome since the breaker was created. Operator resets leave
/// these alone: they mirror the monotonic Prometheus counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub success: u64,
    pub slow: u64,
    pub failure: u64,
    pub timeout: u64,
    pub rejected: u64,
}

impl OutcomeCounts {
    pub(crate) fn add(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Success => &mut self.success,
            Outcome::Slow => &mut self.slow,
            Outcome::Failure => &mut self.failure,
            Outcome::Timeout => &mut self.timeout,
        };
        *slot = slot.saturating_add(1);
    }
}
