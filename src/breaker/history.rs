//! What happened, for people: the transition history and the operator audit
//! log (both bounded), and the anchor that turns monotonic instants into
//! wall-clock times.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use super::outcome::BreakerState;

/// Entries kept in each breaker's transition history and audit log.
pub const HISTORY_CAPACITY: usize = 100;

/// One change of state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// Increases by one per transition of this breaker; lets late emitters
    /// tell which transition is the newest.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

/// What an operator can do to a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    ForceOpen,
    ForceClosed,
    /// Back to closed, window and consecutive failures cleared.
    Reset,
}

impl OperatorAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::ForceOpen => "force_open",
            OperatorAction::ForceClosed => "force_closed",
            OperatorAction::Reset => "reset",
        }
    }

    /// The words used in a transition's reason, e.g. "forced open by alice".
    pub(crate) fn verb(self) -> &'static str {
        match self {
            OperatorAction::ForceOpen => "forced open",
            OperatorAction::ForceClosed => "forced closed",
            OperatorAction::Reset => "reset",
        }
    }
}

/// One operator action, recorded whether or not it changed the state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub breaker: String,
    pub action: OperatorAction,
    /// The admin token's name.
    pub who: String,
    pub from: BreakerState,
    pub to: BreakerState,
}

/// Keeps the newest `capacity` entries.
#[derive(Debug)]
pub struct Bounded<T> {
    entries: VecDeque<T>,
    capacity: usize,
}

impl<T: Clone> Bounded<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.min(16)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, entry: T) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Up to `limit` entries, newest first.
    pub fn newest(&self, limit: usize) -> Vec<T> {
        self.entries.iter().rev().take(limit).cloned().collect()
    }
}

/// A paired reading of both clocks, taken once, so wall-clock times follow
/// the tokio clock (and stay deterministic when a test pauses it).
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    instant: Instant,
    utc: DateTime<Utc>,
}

impl Anchor {
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            utc: Utc::now(),
        }
    }

    pub fn instant(&self) -> Instant {
        self.instant
    }

    pub fn wall_clock(&self, at: Instant) -> DateTime<Utc> {
        let shifted = match at.checked_duration_since(self.instant) {
            Some(after) => self.utc.checked_add_signed(chrono_duration(after)),
            None => self
                .utc
                .checked_sub_signed(chrono_duration(self.instant.duration_since(at))),
        };
        // Only a clock centuries off could overflow; keep the anchor then.
        shifted.unwrap_or(self.utc)
    }
}

fn chrono_duration(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}
