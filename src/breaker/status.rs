//! A breaker's status as one plain, serialisable snapshot for the admin API
//! and the dashboard (no web types here).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use super::history::Transition;
use super::machine::Core;
use super::outcome::{BreakerState, OutcomeCounts};
use crate::config::BreakerConfig;

/// Transitions carried in a status; the full history is `Breaker::transitions`.
pub const STATUS_TRANSITIONS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerStatus {
    pub name: String,
    /// One of closed, open, half_open, forced_open, forced_closed.
    pub state: BreakerState,
    /// True in the operator-set states, which only an operator leaves.
    pub forced: bool,
    /// Failures (incl. timeouts) over calls in the window; 0 with no calls.
    pub failure_rate: f64,
    pub slow_rate: f64,
    pub calls_in_window: u64,
    pub failures_in_window: u64,
    pub slow_in_window: u64,
    pub consecutive_failures: u32,
    /// Probe permits out right now (half-open only).
    pub probes_in_flight: u32,
    /// Calls by outcome since the breaker was created.
    pub counts: OutcomeCounts,
    /// When it last opened; set while open, half-open or forced open.
    pub opened_at: Option<DateTime<Utc>>,
    /// When an open breaker will admit probes; none in other states.
    pub next_probe_at: Option<DateTime<Utc>>,
    pub time_in_state_seconds: f64,
    /// Newest first, at most `STATUS_TRANSITIONS`.
    pub transitions: Vec<Transition>,
    pub config: BreakerConfig,
}

impl Core {
    pub fn status(&mut self, name: &str, now: Instant) -> BreakerStatus {
        self.tick(now);
        let totals = self.window.totals(now);
        let in_flight = if self.state == BreakerState::HalfOpen {
            self.probation.in_flight()
        } else {
            0
        };
        BreakerStatus {
            name: name.to_string(),
            state: self.state,
            forced: self.state.is_forced(),
            failure_rate: totals.failure_rate(),
            slow_rate: totals.slow_rate(),
            calls_in_window: totals.calls,
            failures_in_window: totals.failures,
            slow_in_window: totals.slow,
            consecutive_failures: self.consecutive_failures,
            probes_in_flight: in_flight,
            counts: self.counts,
            opened_at: self.opened_at.map(|at| self.anchor.wall_clock(at)),
            next_probe_at: self.probe_due().map(|at| self.anchor.wall_clock(at)),
            time_in_state_seconds: now.saturating_duration_since(self.entered_at).as_secs_f64(),
            transitions: self.history.newest(STATUS_TRANSITIONS),
            config: self.config.clone(),
        }
    }
}
