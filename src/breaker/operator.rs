//! Operator actions on the state machine: force open, force closed, reset,
//! each written to the audit log whether or not it changed anything.

use tokio::time::Instant;

use super::history::{AuditEntry, OperatorAction};
use super::machine::Core;
use super::outcome::BreakerState;

impl Core {
    pub fn operate(
        &mut self,
        action: OperatorAction,
        who: &str,
        breaker: &str,
        now: Instant,
    ) -> AuditEntry {
        self.tick(now);
        let from = self.state;
        let to = match action {
            OperatorAction::ForceOpen => BreakerState::ForcedOpen,
            OperatorAction::ForceClosed => BreakerState::ForcedClosed,
            OperatorAction::Reset => BreakerState::Closed,
        };
        if from != to {
            self.transition(to, format!("{} by {who}", action.verb()), now);
        } else if action == OperatorAction::Reset {
            // Already closed: no transition, but the counters still start
            // over and calls already in flight no longer count.
            self.clear_counters();
            self.retire_permits();
        }
        let entry = AuditEntry {
            at: self.anchor.wall_clock(now),
            breaker: breaker.to_string(),
            action,
            who: who.to_string(),
            from,
            to,
        };
        self.audit.push(entry.clone());
        entry
    }
}
