//! Wire shapes of breaker status, transitions and audit entries (the breaker
//! module itself knows nothing of HTTP).

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::breaker::{AuditEntry, BreakerConfig, BreakerState, BreakerStatus, Transition};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "BreakerState", rename_all = "snake_case")]
pub enum StateView {
    Closed,
    Open,
    HalfOpen,
    ForcedOpen,
    ForcedClosed,
}

impl From<BreakerState> for StateView {
    fn from(s: BreakerState) -> Self {
        match s {
            BreakerState::Closed => StateView::Closed,
            BreakerState::Open => StateView::Open,
            BreakerState::HalfOpen => StateView::HalfOpen,
            BreakerState::ForcedOpen => StateView::ForcedOpen,
            BreakerState::ForcedClosed => StateView::ForcedClosed,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename = "BreakerTransition")]
pub struct TransitionView {
    pub at: DateTime<Utc>,
    pub from: StateView,
    pub to: StateView,
    /// Why, e.g. `failure rate 0.62 over 21 calls` or `forced open by alice`.
    pub reason: String,
}

impl From<&Transition> for TransitionView {
    fn from(t: &Transition) -> Self {
        Self {
            at: t.at,
            from: t.from.into(),
            to: t.to.into(),
            reason: t.reason.clone(),
        }
    }
}

/// Calls by outcome since start.
#[derive(Debug, Object)]
pub struct OutcomeCountsView {
    pub success: u64,
    pub slow: u64,
    pub failure: u64,
    pub timeout: u64,
    pub rejected: u64,
}

/// The rules this breaker decides by (its `*_BREAKER_*` settings).
#[derive(Debug, Object)]
#[oai(rename = "BreakerPolicy")]
pub struct PolicyView {
    /// Consecutive failures (timeouts included) that open it.
    pub failure_threshold: u32,
    /// Window of the failure and slow-call rates, in seconds.
    pub window_seconds: u64,
    /// Failure (or slow-call) rate over the window that opens it.
    pub failure_rate: f64,
    /// Calls the window must hold before the rates count.
    pub min_calls: u32,
    /// A successful call slower than this counts as slow, in milliseconds.
    pub slow_call_ms: u64,
    /// Seconds open before probing.
    pub reset_timeout_seconds: u64,
    /// Probes admitted while half-open.
    pub half_open_permits: u32,
}

impl From<&BreakerConfig> for PolicyView {
    fn from(c: &BreakerConfig) -> Self {
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            failure_threshold: c.failure_threshold,
            window_seconds: c.window.as_secs(),
            failure_rate: c.failure_rate,
            min_calls: c.min_calls,
            slow_call_ms: millis(c.slow_call),
            reset_timeout_seconds: c.reset_timeout.as_secs(),
            half_open_permits: c.half_open_permits,
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename = "BreakerStatus")]
pub struct BreakerStatusView {
    pub name: String,
    pub state: StateView,
    pub policy: PolicyView,
    /// Set by an operator; only an operator action leaves a forced state.
    pub forced: bool,
    /// Failures (timeouts included) over calls in the window, 0..1.
    pub failure_rate: f64,
    /// Slow calls over calls in the window, 0..1.
    pub slow_rate: f64,
    pub calls_in_window: u64,
    pub consecutive_failures: u32,
    pub counts: OutcomeCountsView,
    #[oai(nullable)]
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker admits its next probe.
    #[oai(nullable)]
    pub next_probe_at: Option<DateTime<Utc>>,
    pub time_in_state_seconds: f64,
    /// Newest first.
    pub transitions: Vec<TransitionView>,
}

impl From<BreakerStatus> for BreakerStatusView {
    fn from(s: BreakerStatus) -> Self {
        Self {
            policy: PolicyView::from(&s.config),
            name: s.name,
            state: s.state.into(),
            forced: s.forced,
            failure_rate: s.failure_rate,
            slow_rate: s.slow_rate,
            calls_in_window: s.calls_in_window,
            consecutive_failures: s.consecutive_failures,
            counts: OutcomeCountsView {
                success: s.counts.success,
                slow: s.counts.slow,
                failure: s.counts.failure,
                timeout: s.counts.timeout,
                rejected: s.counts.rejected,
            },
            opened_at: s.opened_at,
            next_probe_at: s.next_probe_at,
            time_in_state_seconds: s.time_in_state_seconds,
            transitions: s.transitions.iter().map(TransitionView::from).collect(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(rename = "AuditEntry")]
pub struct AuditView {
    pub at: DateTime<Utc>,
    pub breaker: String,
    /// `force_open`, `force_closed` or `reset`.
    pub action: String,
    /// The admin token's name.
    pub who: String,
    pub from: StateView,
    pub to: StateView,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            at: a.at,
            breaker: a.breaker.clone(),
            action: a.action.as_str().to_owned(),
            who: a.who.clone(),
            from: a.from.into(),
            to: a.to.into(),
        }
    }
}
