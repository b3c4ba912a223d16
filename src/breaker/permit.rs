//! The permit: admission to make one call, settled by recording its outcome
//! or, if the caller goes away first, by being dropped (which gives a probe
//! permit back).

use std::time::Duration;

use tokio::time::Instant;

use super::Breaker;
use super::admission::Ticket;
use super::outcome::Outcome;

/// Permission for one call. Record exactly one outcome with `record`; a
/// permit dropped unrecorded counts as a call that never happened.
#[must_use = "a permit is settled by record(); dropping it returns it unused"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    ticket: Ticket,
    settled: bool,
}

impl<'a> Permit<'a> {
    pub(super) fn new(breaker: &'a Breaker, ticket: Ticket) -> Self {
        Self {
            breaker,
            ticket,
            settled: false,
        }
    }

    /// Whether this is one of the half-open probes.
    pub fn is_probe(&self) -> bool {
        self.ticket.probe
    }

    /// Time since the permit was issued.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.ticket.issued)
    }

    /// Records how the call went and returns the outcome as counted: a
    /// `Success` that took longer than `slow_call` since the permit was
    /// issued is counted as `Slow`.
    pub fn record(mut self, outcome: Outcome) -> Outcome {
        self.settled = true;
        self.breaker.settle(self.ticket, outcome)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.release(self.ticket);
        }
    }
}
