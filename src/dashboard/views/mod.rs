//! What each page shows, as plain view models built from a `Snapshot` and the
//! `History`, rendered by the askama templates under `templates/dashboard/`.
//! Every string a client could have influenced is escaped by the templates.

pub mod breakers;
pub mod cache;
pub mod limits;
pub mod metrics;
pub mod overview;
pub mod series;

use super::format;
use crate::breaker::{BreakerState, BreakerStatus};

/// One breaker as a table row (the same markup on every page).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRow {
    pub name: String,
    /// `closed`, `open`, `half_open`, `forced_open`, `forced_closed`.
    pub state: &'static str,
    /// `CLOSED`, `FORCED OPEN`, …
    pub state_label: String,
    pub failure_rate: String,
    pub slow_rate: String,
    pub calls_in_window: String,
    pub time_in_state: String,
    /// When an open breaker admits probes; `–` otherwise.
    pub next_probe: String,
}

impl BreakerRow {
    pub fn of(b: &BreakerStatus) -> Self {
        Self {
            name: b.name.clone(),
            state: b.state.as_str(),
            state_label: format::state_label(b.state),
            failure_rate: format::percent(b.failure_rate),
            slow_rate: format::percent(b.slow_rate),
            calls_in_window: format::count(b.calls_in_window),
            time_in_state: format::seconds(b.time_in_state_seconds),
            next_probe: b
                .next_probe_at
                .map_or_else(|| "–".to_owned(), format::clock),
        }
    }
}

/// Whether a dependency behind this breaker state is answering.
pub fn dependency_label(state: BreakerState) -> (&'static str, &'static str) {
    match state {
        BreakerState::Closed | BreakerState::ForcedClosed => ("up", "up"),
        BreakerState::HalfOpen => ("probing", "warn"),
        BreakerState::Open | BreakerState::ForcedOpen => ("down", "down"),
    }
}

/// A label and a value for the stat tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub label: &'static str,
    pub value: String,
    pub hint: String,
}

impl Stat {
    pub fn new(label: &'static str, value: String, hint: impl Into<String>) -> Self {
        Self {
            label,
            value,
            hint: hint.into(),
        }
    }
}
