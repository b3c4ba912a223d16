//! Admission: who may call now (closed: everyone; open: no one; half-open:
//! the holders of probe permits), and giving an unused permit back.

use tokio::time::Instant;

use super::machine::Core;
use super::outcome::BreakerState;

/// Proof of admission, carried by a permit back to `record` or `release`.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    pub id: u64,
    /// The state generation that admitted the call: an outcome from an older
    /// generation describes a state that no longer exists and is not used.
    pub generation: u64,
    pub probe: bool,
    pub issued: Instant,
}

/// Why a call was turned away, and when asking again makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub state: BreakerState,
    /// Until half-open when open; until a probe permit must come back when
    /// half-open; `reset_timeout` as a hint when forced open (no schedule).
    pub retry_after: std::time::Duration,
}

impl Core {
    /// Whether `acquire` would admit a call now, without taking a permit.
    pub fn would_admit(&mut self, now: Instant) -> bool {
        self.tick(now);
        match self.state {
            BreakerState::Closed | BreakerState::ForcedClosed => true,
            BreakerState::HalfOpen => self.probation.has_capacity(),
            BreakerState::Open | BreakerState::ForcedOpen => false,
        }
    }

    pub fn acquire(&mut self, now: Instant) -> Result<Ticket, Rejection> {
        self.tick(now);
        self.next_id += 1;
        let (id, generation) = (self.next_id, self.generation);
        let ticket = |probe| Ticket {
            id,
            generation,
            probe,
            issued: now,
        };
        let retry_after = match self.state {
            BreakerState::Closed | BreakerState::ForcedClosed => return Ok(ticket(false)),
            BreakerState::HalfOpen => {
                if self.probation.admit(id, now) {
                    return Ok(ticket(true));
                }
                self.probation.next_reclaim(self.config.reset_timeout)
            }
            BreakerState::Open => self.probe_due(),
            BreakerState::ForcedOpen => Some(now + self.config.reset_timeout),
        };
        self.counts.rejected = self.counts.rejected.saturating_add(1);
        Err(Rejection {
            state: self.state,
            retry_after: retry_after.map_or(self.config.reset_timeout, |at| {
                at.saturating_duration_since(now)
            }),
        })
    }

    /// A permit given back without an outcome (its caller went away).
    pub fn release(&mut self, ticket: Ticket, now: Instant) {
        self.tick(now);
        if ticket.probe && ticket.generation == self.generation {
            self.probation.release(ticket.id);
        }
    }
}
