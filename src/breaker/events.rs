//! The breaker's log lines and metrics, written after the lock is released:
//! one log line and one counter per transition, the state gauges, and calls
//! by outcome.

use std::sync::{Arc, OnceLock};

use metrics::Counter;

use parking_lot::Mutex;

use super::history::{AuditEntry, Transition};
use super::outcome::{BreakerState, Outcome};
use crate::telemetry::names;

pub fn transition(breaker: &Arc<str>, last_gauged: &Mutex<u64>, transition: &Transition) {
    let (from, to, reason) = (
        transition.from.as_str(),
        transition.to.as_str(),
        transition.reason.as_str(),
    );
    // Open, and forced either way, mean calls are failing or failures are
    // being ignored: worth a warning. Recovery is news, not a warning.
    if matches!(
        transition.to,
        BreakerState::Open | BreakerState::ForcedOpen | BreakerState::ForcedClosed
    ) {
        tracing::warn!(event = "breaker_transition", breaker = %breaker, from, to, reason, "breaker {breaker}: {from} -> {to} ({reason})");
    } else {
        tracing::info!(event = "breaker_transition", breaker = %breaker, from, to, reason, "breaker {breaker}: {from} -> {to} ({reason})");
    }
    metrics::counter!(
        names::BREAKER_TRANSITIONS_TOTAL,
        names::LABEL_BREAKER => Arc::clone(breaker),
        names::LABEL_FROM => from,
        names::LABEL_TO => to
    )
    .increment(1);
    // Racing emitters may arrive out of order; only a newer transition may
    // move the gauges, so they end on the state the breaker is really in.
    let mut last = last_gauged.lock();
    if transition.seq > *last {
        *last = transition.seq;
        state_gauges(breaker, transition.to);
    }
}

/// 1 for the current state, 0 for the others.
pub fn state_gauges(breaker: &Arc<str>, current: BreakerState) {
    for state in BreakerState::ALL {
        let value = if state == current { 1.0 } else { 0.0 };
        metrics::gauge!(
            names::BREAKER_STATE,
            names::LABEL_BREAKER => Arc::clone(breaker),
            names::LABEL_STATE => state.as_str()
        )
        .set(value);
    }
}

/// The breaker's call counters by outcome, registered on first use (after the
/// recorder is installed) and kept: a call costs one atomic add, not a lookup
/// of the series by name and labels.
#[derive(Debug, Default)]
pub struct CallCounters(OnceLock<[Counter; 5]>);

impl CallCounters {
    /// One call, by outcome: success, slow, failure, timeout or rejected.
    pub fn call(&self, breaker: &Arc<str>, outcome: Option<Outcome>) {
        let i = match outcome {
            Some(Outcome::Success) => 0,
            Some(Outcome::Slow) => 1,
            Some(Outcome::Failure) => 2,
            Some(Outcome::Timeout) => 3,
            None => 4,
        };
        self.counters(breaker)[i].increment(1);
    }

    fn counters(&self, breaker: &Arc<str>) -> &[Counter; 5] {
        self.0.get_or_init(|| {
            ["success", "slow", "failure", "timeout", "rejected"].map(|outcome| {
                metrics::counter!(
                    names::BREAKER_CALLS_TOTAL,
                    names::LABEL_BREAKER => Arc::clone(breaker),
                    names::LABEL_OUTCOME => outcome
                )
            })
        })
    }

    /// The breaker's call and transition series at zero, so rates and alerts see them
    /// from the first scrape.
    pub fn register(&self, breaker: &Arc<str>) {
        self.counters(breaker);
        for from in BreakerState::ALL {
            for to in BreakerState::ALL.into_iter().filter(|&to| to != from) {
                metrics::counter!(
                    names::BREAKER_TRANSITIONS_TOTAL,
                    names::LABEL_BREAKER => Arc::clone(breaker),
                    names::LABEL_FROM => from.as_str(),
                    names::LABEL_TO => to.as_str()
                )
                .increment(0);
            }
        }
    }
}

/// Deliberate, so informational; the transition it causes (if any) has its
/// own line.
pub fn operator_action(entry: &AuditEntry) {
    tracing::info!(
        event = "breaker_operator_action",
        breaker = %entry.breaker,
        action = entry.action.as_str(),
        who = %entry.who,
        from = entry.from.as_str(),
        to = entry.to.as_str(),
        "breaker {}: {} by {}",
        entry.breaker,
        entry.action.as_str(),
        entry.who
    );
}
