//! `/dashboard/limits`: the policies, decisions over time, which backend is
//! deciding, and the clients limited most recently (masked addresses).

use askama::Template;

use crate::dashboard::charts::{Chart, Unit};
use crate::dashboard::format;
use crate::dashboard::history::History;
use crate::dashboard::snapshot::Snapshot;
use crate::limiter::{Backend, PolicyStats};

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub name: &'static str,
    pub quota: String,
    pub allowed: String,
    pub limited: String,
}

impl PolicyRow {
    fn of(p: &PolicyStats) -> Self {
        Self {
            name: p.policy.name.as_str(),
            quota: format!(
                "{} requests per {}",
                format::count(p.policy.limit),
                format::seconds(p.policy.window.as_secs_f64())
            ),
            allowed: format::count(p.allowed),
            limited: format::count(p.limited),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    /// Masked: `203.0.113.x`, or an IPv6 /48.
    pub client: String,
    pub policy: &'static str,
    pub last_at: String,
    pub refused: String,
}

#[derive(Template)]
#[template(path = "dashboard/live/limits.html")]
pub struct LimitsLive {
    pub enabled: bool,
    pub backend: &'static str,
    pub backend_class: &'static str,
    pub fail_mode: String,
    pub policies: Vec<PolicyRow>,
    pub charts: Vec<Chart>,
    pub clients: Vec<ClientRow>,
}

impl LimitsLive {
    /// Rate limiting is turned off.
    pub fn off() -> Self {
        Self {
            enabled: false,
            backend: "off",
            backend_class: "warn",
            fail_mode: String::new(),
            policies: Vec::new(),
            charts: Vec::new(),
            clients: Vec::new(),
        }
    }

    pub fn build(s: &Snapshot, h: &History) -> Self {
        let Some(l) = &s.limiter else {
            return Self::off();
        };
        let (backend, backend_class) = match l.backend {
            Some(Backend::Redis) => ("Redis (shared, exact)", "up"),
            Some(Backend::Local) => ("local window (Redis unavailable)", "warn"),
            Some(Backend::Fallback) => ("none (Redis unavailable)", "down"),
            None => ("no decision yet", "idle"),
        };
        let charts = [("write", 0), ("read", 1)]
            .into_iter()
            .map(|(name, i)| {
                Chart::over_history(
                    &format!("Policy {name}"),
                    Unit::PerSecond,
                    &[
                        ("allowed", h.series(|t| t.allowed[i])),
                        ("limited", h.series(|t| t.limited[i])),
                    ],
                )
            })
            .collect();
        Self {
            enabled: true,
            backend,
            backend_class,
            fail_mode: format!("{:?}", l.fail_mode).to_lowercase(),
            policies: vec![PolicyRow::of(&l.write), PolicyRow::of(&l.read)],
            charts,
            clients: l
                .recent
                .iter()
                .map(|c| ClientRow {
                    client: c.client.clone(),
                    policy: c.policy.as_str(),
                    last_at: format::time(c.last_at),
                    refused: format::count(c.refused),
                })
                .collect(),
        }
    }
}
