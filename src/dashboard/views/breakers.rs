//! `/dashboard/breakers`: each breaker in detail, its state timeline and
//! transitions, and the operator audit log (breakers and simulator).

use askama::Template;
use chrono::{DateTime, Utc};

use super::BreakerRow;
use crate::breaker::BreakerStatus;
use crate::dashboard::charts::{self, Segment};
use crate::dashboard::format;
use crate::dashboard::history::History;
use crate::dashboard::snapshot::Snapshot;

/// Audit entries shown.
pub const AUDIT_SHOWN: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct TransitionRow {
    pub at: String,
    pub from: String,
    pub to: String,
    /// Set by the service (e.g. "5 consecutive failures", "forced open by ops").
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerCard {
    pub row: BreakerRow,
    /// (outcome, calls since start)
    pub outcomes: Vec<(&'static str, String)>,
    pub consecutive_failures: u32,
    pub probes_in_flight: u32,
    pub opened_at: String,
    /// The rules, in words.
    pub rules: String,
    pub timeline: Vec<Segment>,
    pub transitions: Vec<TransitionRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub at: String,
    pub who: String,
    pub target: String,
    pub action: String,
}

#[derive(Template)]
#[template(path = "dashboard/live/breakers.html")]
pub struct BreakersLive {
    pub cards: Vec<BreakerCard>,
    pub audit: Vec<AuditRow>,
}

impl BreakersLive {
    pub fn build(s: &Snapshot, h: &History) -> Self {
        Self {
            cards: s.breakers.iter().map(|b| card(b, h)).collect(),
            audit: audit(s),
        }
    }
}

fn card(b: &BreakerStatus, h: &History) -> BreakerCard {
    let c = &b.counts;
    let cfg = &b.config;
    BreakerCard {
        row: BreakerRow::of(b),
        outcomes: vec![
            ("success", format::count(c.success)),
            ("failure", format::count(c.failure)),
            ("timeout", format::count(c.timeout)),
            ("slow", format::count(c.slow)),
            ("rejected", format::count(c.rejected)),
        ],
        consecutive_failures: b.consecutive_failures,
        probes_in_flight: b.probes_in_flight,
        opened_at: b.opened_at.map_or_else(|| "–".to_owned(), format::time),
        rules: format!(
            "opens after {} consecutive failures, or at {} failures or slow calls (slower than {} ms) over {} with at least {} calls; probes after {} with {} permit(s)",
            cfg.failure_threshold,
            format::percent(cfg.failure_rate),
            cfg.slow_call.as_millis(),
            format::seconds(cfg.window.as_secs_f64()),
            cfg.min_calls,
            format::seconds(cfg.reset_timeout.as_secs_f64()),
            cfg.half_open_permits,
        ),
        timeline: charts::timeline(&h.breaker_runs(&b.name), h.len()),
        transitions: b
            .transitions
            .iter()
            .map(|t| TransitionRow {
                at: format::time(t.at),
                from: format::state_label(t.from),
                to: format::state_label(t.to),
                reason: t.reason.clone(),
            })
            .collect(),
    }
}

/// Breaker actions and simulator changes together, newest first.
fn audit(s: &Snapshot) -> Vec<AuditRow> {
    let mut rows: Vec<(DateTime<Utc>, AuditRow)> = s
        .breaker_audit
        .iter()
        .map(|e| {
            (
                e.at,
                AuditRow {
                    at: format::time(e.at),
                    who: e.who.clone(),
                    target: format!("breaker {}", e.breaker),
                    action: format!(
                        "{} ({} → {})",
                        e.action.as_str(),
                        format::state_label(e.from),
                        format::state_label(e.to)
                    ),
                },
            )
        })
        .chain(s.simulator_audit.iter().map(|c| {
            (
                c.at,
                AuditRow {
                    at: format::time(c.at),
                    who: c.who.clone(),
                    target: "simulator".to_owned(),
                    action: format!(
                        "mode {}, failure rate {}, latency {} ms",
                        c.config.mode.as_str(),
                        format::percent(c.config.failure_rate),
                        c.config.latency_ms
                    ),
                },
            )
        }))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().take(AUDIT_SHOWN).map(|(_, r)| r).collect()
}
