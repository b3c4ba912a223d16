//! The state machine itself: pure, fed with outcomes and the current
//! instant, no I/O. It lives behind the breaker's one mutex; transitions it
//! makes are queued in `pending` for the caller to log after unlocking.

use tokio::time::Instant;

use super::admission::Ticket;
use super::history::{Anchor, AuditEntry, Bounded, HISTORY_CAPACITY, Transition};
use super::outcome::{BreakerState, Outcome, OutcomeCounts};
use super::probation::Probation;
use super::window::Window;
use crate::config::BreakerConfig;

#[derive(Debug)]
pub struct Core {
    pub(super) config: BreakerConfig,
    pub(super) anchor: Anchor,
    pub(super) state: BreakerState,
    pub(super) entered_at: Instant,
    /// When the breaker last opened; kept through half-open, cleared on close.
    pub(super) opened_at: Option<Instant>,
    pub(super) generation: u64,
    pub(super) next_id: u64,
    seq: u64,
    pub(super) window: Window,
    pub(super) consecutive_failures: u32,
    pub(super) probation: Probation,
    pub(super) counts: OutcomeCounts,
    pub(super) history: Bounded<Transition>,
    pub(super) audit: Bounded<AuditEntry>,
    pending: Vec<Transition>,
}

impl Core {
    pub fn new(config: BreakerConfig, anchor: Anchor) -> Self {
        let start = anchor.instant();
        Self {
            window: Window::new(config.window, start),
            probation: Probation::new(config.permits()),
            config,
            anchor,
            state: BreakerState::Closed,
            entered_at: start,
            opened_at: None,
            generation: 0,
            next_id: 0,
            seq: 0,
            consecutive_failures: 0,
            counts: OutcomeCounts::default(),
            history: Bounded::new(HISTORY_CAPACITY),
            audit: Bounded::new(HISTORY_CAPACITY),
            pending: Vec::new(),
        }
    }

    /// Transitions made since the last call, oldest first.
    pub fn take_pending(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    /// When an open breaker turns half-open.
    pub(super) fn probe_due(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.opened_at.map(|at| at + self.config.reset_timeout),
            _ => None,
        }
    }

    /// Applies what time alone changes: open turns half-open once
    /// `reset_timeout` has passed, and overstaying probe permits come back.
    pub fn tick(&mut self, now: Instant) {
        if let Some(due) = self.probe_due()
            && now >= due
        {
            // Dated when it became due, not when someone happened to look.
            self.transition(BreakerState::HalfOpen, "reset timeout elapsed".into(), due);
        }
        if self.state == BreakerState::HalfOpen {
            self.probation.reclaim(now, self.config.reset_timeout);
        }
    }

    /// Feeds one outcome in and returns it as counted (a success slower than
    /// `slow_call` counts as slow).
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) -> Outcome {
        self.tick(now);
        let outcome = match outcome {
            Outcome::Success
                if now.saturating_duration_since(ticket.issued) > self.config.slow_call =>
            {
                Outcome::Slow
            }
            other => other,
        };
        self.counts.add(outcome);
        if ticket.generation != self.generation {
            return outcome;
        }
        match self.state {
            BreakerState::Closed | BreakerState::ForcedClosed => {
                self.window.record(now, outcome);
                self.consecutive_failures = if outcome.is_failure() {
                    self.consecutive_failures.saturating_add(1)
                } else {
                    0
                };
                if self.state == BreakerState::Closed
                    && let Some(reason) = self.trip_reason(now)
                {
                    self.transition(BreakerState::Open, reason, now);
                }
            }
            // A reclaimed permit no longer speaks for the dependency.
            BreakerState::HalfOpen if ticket.probe && self.probation.holds(ticket.id) => {
                match outcome {
                    Outcome::Success => {
                        if self.probation.succeed(ticket.id) {
                            let reason = match self.probation.succeeded() {
                                1 => "probe succeeded".to_string(),
                                n => format!("{n} probes succeeded"),
                            };
                            self.transition(BreakerState::Closed, reason, now);
                        }
                    }
                    // Slow is treated like a failure here: closing on slow
                    // probes would flap when slowness is what opened it.
                    Outcome::Slow => {
                        self.transition(BreakerState::Open, "probe was slow".into(), now)
                    }
                    Outcome::Failure | Outcome::Timeout => {
                        self.transition(BreakerState::Open, "probe failed".into(), now)
                    }
                }
            }
            _ => {}
        }
        outcome
    }

    fn trip_reason(&mut self, now: Instant) -> Option<String> {
        let threshold = self.config.failure_threshold;
        if threshold > 0 && self.consecutive_failures >= threshold {
            return Some(format!(
                "{} consecutive failures",
                self.consecutive_failures
            ));
        }
        let totals = self.window.totals(now);
        if totals.calls < u64::from(self.config.min_calls()) {
            return None;
        }
        if totals.failure_rate() >= self.config.failure_rate {
            return Some(format!(
                "failure rate {:.2} over {} calls",
                totals.failure_rate(),
                totals.calls
            ));
        }
        if totals.slow_rate() >= self.config.failure_rate {
            return Some(format!(
                "slow-call rate {:.2} over {} calls",
                totals.slow_rate(),
                totals.calls
            ));
        }
        None
    }

    /// Moves to `to`, dated `at`. Every transition starts a new generation,
    /// which retires all permits issued before it.
    pub(super) fn transition(&mut self, to: BreakerState, reason: String, at: Instant) {
        let from = self.state;
        self.seq += 1;
        self.generation += 1;
        self.state = to;
        self.entered_at = at;
        match to {
            BreakerState::Open | BreakerState::ForcedOpen => self.opened_at = Some(at),
            BreakerState::HalfOpen => {}
            BreakerState::Closed | BreakerState::ForcedClosed => self.opened_at = None,
        }
        // Closing starts afresh: the failures that opened it must not trip
        // it again on the first call.
        if to == BreakerState::Closed {
            self.clear_counters();
        }
        self.probation = Probation::new(self.config.permits());
        let transition = Transition {
            seq: self.seq,
            at: self.anchor.wall_clock(at),
            from,
            to,
            reason,
        };
        self.history.push(transition.clone());
        self.pending.push(transition);
    }

    pub(super) fn clear_counters(&mut self) {
        self.window.clear();
        self.consecutive_failures = 0;
    }

    pub(super) fn retire_permits(&mut self) {
        self.generation += 1;
    }
}
