//! `/dashboard`: service status, dependencies, rates, breakers and charts.

use askama::Template;

use super::{BreakerRow, Stat, dependency_label};
use crate::dashboard::charts::{Chart, Unit};
use crate::dashboard::format;
use crate::dashboard::history::History;
use crate::dashboard::snapshot::Snapshot;

/// Seconds the headline rates average over.
pub const RATE_SECONDS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub name: &'static str,
    /// `up`, `down` or `probing`.
    pub status: &'static str,
    /// Stylesheet class: `up`, `down` or `warn`.
    pub class: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "dashboard/live/overview.html")]
pub struct OverviewLive {
    pub serving: bool,
    pub uptime: String,
    pub updated: String,
    pub dependencies: Vec<Dependency>,
    pub stats: Vec<Stat>,
    pub breakers: Vec<BreakerRow>,
    pub charts: Vec<Chart>,
}

impl OverviewLive {
    pub fn build(s: &Snapshot, h: &History, builtin_upstream: bool) -> Self {
        let mut dependencies = vec![Dependency {
            name: "Redis",
            status: if s.redis_connected { "up" } else { "down" },
            class: if s.redis_connected { "up" } else { "down" },
            detail: match s.breaker(crate::redis::BREAKER) {
                Some(b) => format!("breaker {}", format::state_label(b.state)),
                None => String::new(),
            },
        }];
        if let Some(up) = s.database_up {
            dependencies.push(Dependency {
                name: "Database",
                status: if up { "up" } else { "down" },
                class: if up { "up" } else { "down" },
                detail: match s.breaker(crate::store::postgres::BREAKER) {
                    Some(b) => format!("PostgreSQL, breaker {}", format::state_label(b.state)),
                    None => "PostgreSQL".to_owned(),
                },
            });
        }
        if let Some(b) = s.breaker(crate::upstream::BREAKER) {
            let (status, class) = dependency_label(b.state);
            let detail = if builtin_upstream {
                format!(
                    "built-in simulator: {}, failure rate {}, latency {} ms",
                    s.simulator.mode.as_str(),
                    format::percent(s.simulator.failure_rate),
                    s.simulator.latency_ms
                )
            } else {
                format!("breaker {}", format::state_label(b.state))
            };
            dependencies.push(Dependency {
                name: "Upstream",
                status,
                class,
                detail,
            });
        }
        let requests = h.sum(RATE_SECONDS, |t| t.requests);
        let errors = h.sum(RATE_SECONDS, |t| t.server_errors);
        let error_ratio = if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        };
        let hint = format!("last {RATE_SECONDS} s");
        let stats = vec![
            Stat::new(
                "Requests",
                format!("{}/s", format::number(h.rate(RATE_SECONDS, |t| t.requests))),
                hint.clone(),
            ),
            Stat::new("Errors (5xx)", format::percent(error_ratio), hint.clone()),
            Stat::new(
                "Ingest",
                format!(
                    "{} points/s",
                    format::number(h.rate(RATE_SECONDS, |t| t.ingested))
                ),
                format!("{} stored", format::count(s.store.points)),
            ),
            Stat::new(
                "Cache hit ratio",
                format::percent(s.cache.hit_ratio()),
                "since start",
            ),
            Stat::new(
                "Throttled",
                format!(
                    "{}/s",
                    format::number(h.rate(RATE_SECONDS, |t| t.throttled))
                ),
                format!("{} since start", format::count(s.traffic.throttled)),
            ),
        ];
        let charts = vec![
            Chart::over_history(
                "Requests",
                Unit::PerSecond,
                &[("requests", h.series(|t| t.requests))],
            ),
            Chart::over_history(
                "Errors (5xx) and throttled (429)",
                Unit::PerSecond,
                &[
                    ("5xx", h.series(|t| t.server_errors)),
                    ("429", h.series(|t| t.throttled)),
                ],
            ),
            Chart::over_history(
                "Points ingested",
                Unit::PerSecond,
                &[("points", h.series(|t| t.ingested))],
            ),
        ];
        Self {
            serving: s.accepting,
            uptime: format::seconds(s.uptime.as_secs_f64()),
            updated: format::time(s.at),
            dependencies,
            stats,
            breakers: s.breakers.iter().map(BreakerRow::of).collect(),
            charts,
        }
    }
}
