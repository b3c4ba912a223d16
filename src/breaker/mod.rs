//! Circuit breakers: one per dependency, a small pure state machine fed by
//! call outcomes, and the guard that wraps calls in it.
//!
//! Closed admits everything and opens on `failure_threshold` consecutive
//! failures, or when the failure rate or slow-call rate over the sliding
//! window reaches `failure_rate` with at least `min_calls` calls. Open
//! rejects everything for `reset_timeout`, then half-open admits exactly
//! `half_open_permits` probes: all succeed and it closes, one fails and it
//! opens again. Operators can force it open or closed, or reset it.
//!
//! All state sits behind one mutex that is never held across an await.
//! Transitions are computed under it, so each happens once however many
//! calls race, and logged and counted after it is released. Time is read
//! from `tokio::time::Instant`, so tests run on a paused clock.

mod admission;
mod events;
mod guard;
mod history;
mod machine;
mod operator;
mod outcome;
mod permit;
mod probation;
mod registry;
mod status;
mod window;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use crate::config::BreakerConfig;
pub use admission::Rejection;
pub use guard::BreakerError;
pub use history::{AuditEntry, HISTORY_CAPACITY, OperatorAction, Transition};
pub use outcome::{BreakerState, Outcome, OutcomeCounts};
pub use permit::Permit;
pub use registry::Breakers;
pub use status::{BreakerStatus, STATUS_TRANSITIONS};

use admission::Ticket;
use history::Anchor;
use machine::Core;

/// One dependency's breaker. Share it behind an `Arc` (see `Breakers`).
#[derive(Debug)]
pub struct Breaker {
    name: Arc<str>,
    config: BreakerConfig,
    core: Mutex<Core>,
    /// Sequence number of the transition the state gauges show.
    last_gauged: Mutex<u64>,
    calls: events::CallCounters,
}

impl Breaker {
    pub fn new(name: &str, config: BreakerConfig) -> Self {
        let name: Arc<str> = Arc::from(name);
        events::state_gauges(&name, BreakerState::Closed);
        Self {
            core: Mutex::new(Core::new(config.clone(), Anchor::now())),
            name,
            config,
            last_gauged: Mutex::new(0),
            calls: events::CallCounters::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its metric series at zero (call once the recorder is installed).
    pub fn register_metrics(&self) {
        self.calls.register(&self.name);
        events::state_gauges(&self.name, self.state());
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to make one call. Closed: always granted. Open: rejected with
    /// the time until half-open. Half-open: granted while a probe permit is
    /// left, rejected at once otherwise.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejection> {
        match self.locked(|core, now| core.acquire(now)) {
            Ok(ticket) => Ok(Permit::new(self, ticket)),
            Err(rejection) => {
                self.calls.call(&self.name, None);
                Err(rejection)
            }
        }
    }

    /// Whether a call would be admitted now. Advisory: another caller may
    /// take the last probe permit before this one asks for it.
    pub fn is_call_permitted(&self) -> bool {
        self.locked(|core, now| core.would_admit(now))
    }

    pub fn state(&self) -> BreakerState {
        self.locked(|core, now| {
            core.tick(now);
            core.state
        })
    }

    /// Holds the breaker open until another operator action.
    pub fn force_open(&self, who: &str) -> AuditEntry {
        self.operate(OperatorAction::ForceOpen, who)
    }

    /// Holds the breaker closed (failures are counted, never acted on) until
    /// another operator action.
    pub fn force_closed(&self, who: &str) -> AuditEntry {
        self.operate(OperatorAction::ForceClosed, who)
    }

    /// Back to closed with the window and consecutive failures cleared; also
    /// how a forced state is left for normal operation.
    pub fn reset(&self, who: &str) -> AuditEntry {
        self.operate(OperatorAction::Reset, who)
    }

    pub fn status(&self) -> BreakerStatus {
        self.locked(|core, now| core.status(&self.name, now))
    }

    /// The transition history, newest first (at most `HISTORY_CAPACITY`).
    pub fn transitions(&self) -> Vec<Transition> {
        self.locked(|core, now| {
            // A due move to half-open belongs in the history being read.
            core.tick(now);
            core.history.newest(HISTORY_CAPACITY)
        })
    }

    /// Operator actions on this breaker, newest first (at most
    /// `HISTORY_CAPACITY`).
    pub fn audit_log(&self) -> Vec<AuditEntry> {
        self.locked(|core, _| core.audit.newest(HISTORY_CAPACITY))
    }

    fn operate(&self, action: OperatorAction, who: &str) -> AuditEntry {
        let entry = self.locked(|core, now| core.operate(action, who, &self.name, now));
        events::operator_action(&entry);
        entry
    }

    fn settle(&self, ticket: Ticket, outcome: Outcome) -> Outcome {
        let counted = self.locked(|core, now| core.record(ticket, outcome, now));
        self.calls.call(&self.name, Some(counted));
        counted
    }

    fn release(&self, ticket: Ticket) {
        // Only probes hold anything worth giving back.
        if ticket.probe {
            self.locked(|core, now| core.release(ticket, now));
        }
    }

    /// Runs `f` under the lock with the current instant (read under the lock,
    /// so instants reach the machine in order), then reports the transitions
    /// it made once the lock is released.
    fn locked<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let (result, transitions) = {
            let mut core = self.core.lock();
            let result = f(&mut core, Instant::now());
            (result, core.take_pending())
        };
        for transition in &transitions {
            events::transition(&self.name, &self.last_gauged, transition);
        }
        result
    }
}
