//! Per-second history for the charts: one `Tick` per second for the last 15
//! minutes, in a ring of fixed size (memory stays bounded however long the
//! service runs). Counters are stored as per-second deltas of the totals.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::snapshot::Snapshot;
use crate::breaker::BreakerState;

/// Seconds of history kept (15 minutes).
pub const HISTORY_SECONDS: usize = 900;

/// Monotonic totals the deltas are taken from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub server_errors: u64,
    pub throttled: u64,
    pub ingested: u64,
    /// Summary lookups, and those answered from a cache tier.
    pub cache_lookups: u64,
    pub cache_served: u64,
    /// Limiter decisions, [write, read].
    pub allowed: [u64; 2],
    pub limited: [u64; 2],
}

impl Totals {
    pub fn of(s: &Snapshot) -> Self {
        let c = &s.cache;
        let (allowed, limited) = match &s.limiter {
            Some(l) => (
                [l.write.allowed, l.read.allowed],
                [l.write.limited, l.read.limited],
            ),
            None => ([0; 2], [0; 2]),
        };
        Self {
            requests: s.traffic.requests,
            server_errors: s.traffic.server_errors,
            throttled: s.traffic.throttled,
            ingested: s.traffic.ingested,
            cache_lookups: c.memory.hits + c.memory.stale + c.memory.misses,
            cache_served: c.memory.hits + c.memory.stale + c.redis.hits + c.redis.stale,
            allowed,
            limited,
        }
    }

    fn since(&self, earlier: &Totals) -> Totals {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        Totals {
            requests: d(self.requests, earlier.requests),
            server_errors: d(self.server_errors, earlier.server_errors),
            throttled: d(self.throttled, earlier.throttled),
            ingested: d(self.ingested, earlier.ingested),
            cache_lookups: d(self.cache_lookups, earlier.cache_lookups),
            cache_served: d(self.cache_served, earlier.cache_served),
            allowed: [
                d(self.allowed[0], earlier.allowed[0]),
                d(self.allowed[1], earlier.allowed[1]),
            ],
            limited: [
                d(self.limited[0], earlier.limited[0]),
                d(self.limited[1], earlier.limited[1]),
            ],
        }
    }
}

/// One second: what happened in it, and each breaker's state at its end.
#[derive(Debug, Clone)]
pub struct Tick {
    pub at: DateTime<Utc>,
    pub delta: Totals,
    pub breakers: Vec<(Arc<str>, BreakerState)>,
}

#[derive(Debug, Default)]
pub struct History {
    ticks: VecDeque<Tick>,
    last: Option<Totals>,
}

impl History {
    /// Appends the second ending at `snapshot`.
    pub fn record(&mut self, snapshot: &Snapshot) {
        let totals = Totals::of(snapshot);
        // The first sample has nothing to subtract: it counts as a quiet second.
        let delta = self.last.map(|l| totals.since(&l)).unwrap_or_default();
        self.last = Some(totals);
        if self.ticks.len() == HISTORY_SECONDS {
            self.ticks.pop_front();
        }
        self.ticks.push_back(Tick {
            at: snapshot.at,
            delta,
            breakers: snapshot
                .breakers
                .iter()
                .map(|b| (Arc::from(b.name.as_str()), b.state))
                .collect(),
        });
    }

    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }

    /// `f` of every second, oldest first.
    pub fn series(&self, f: impl Fn(&Totals) -> u64) -> Vec<f64> {
        self.ticks.iter().map(|t| f(&t.delta) as f64).collect()
    }

    /// Per-second average of `f` over the last `seconds` (fewer at start).
    pub fn rate(&self, seconds: usize, f: impl Fn(&Totals) -> u64) -> f64 {
        let n = seconds.min(self.ticks.len());
        if n == 0 {
            return 0.0;
        }
        let sum: u64 = self.ticks.iter().rev().take(n).map(|t| f(&t.delta)).sum();
        sum as f64 / n as f64
    }

    /// Sum of `f` over the last `seconds`.
    pub fn sum(&self, seconds: usize, f: impl Fn(&Totals) -> u64) -> u64 {
        self.ticks
            .iter()
            .rev()
            .take(seconds)
            .map(|t| f(&t.delta))
            .sum()
    }

    /// The states of breaker `name` as runs `(first second, seconds, state)`,
    /// oldest first; seconds count from the start of the history.
    pub fn breaker_runs(&self, name: &str) -> Vec<(usize, usize, BreakerState)> {
        let mut runs: Vec<(usize, usize, BreakerState)> = Vec::new();
        for (i, tick) in self.ticks.iter().enumerate() {
            let Some((_, state)) = tick.breakers.iter().find(|(n, _)| &**n == name) else {
                continue;
            };
            match runs.last_mut() {
                Some((start, len, s)) if *s == *state && *start + *len == i => *len += 1,
                _ => runs.push((i, 1, *state)),
            }
        }
        runs
    }

    /// When the oldest kept second ended.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.ticks.front().map(|t| t.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TrafficCounts;

    fn snapshot(requests: u64, state: BreakerState) -> Snapshot {
        let mut status = crate::breaker::Breaker::new("upstream", Default::default()).status();
        status.state = state;
        Snapshot {
            at: Utc::now(),
            uptime: std::time::Duration::ZERO,
            accepting: true,
            redis_connected: true,
            database_up: None,
            traffic: TrafficCounts {
                requests,
                ..Default::default()
            },
            breakers: vec![status],
            cache: Default::default(),
            limiter: None,
            store: Default::default(),
            simulator: crate::upstream::SimulatorConfig {
                failure_rate: 0.0,
                latency_ms: 0,
                mode: crate::upstream::SimulatorMode::Healthy,
            },
            breaker_audit: Vec::new(),
            simulator_audit: Vec::new(),
        }
    }

    #[test]
    fn keeps_fifteen_minutes_of_per_second_deltas_and_no_more() {
        let mut h = History::default();
        for i in 0..(HISTORY_SECONDS as u64 + 100) {
            let state = if i % 200 < 100 {
                BreakerState::Closed
            } else {
                BreakerState::Open
            };
            h.record(&snapshot(i * 3, state));
        }
        assert_eq!(h.len(), HISTORY_SECONDS);
        let series = h.series(|t| t.requests);
        assert!(series.iter().all(|v| *v == 3.0), "deltas, not totals");
        assert_eq!(h.rate(10, |t| t.requests), 3.0);
        assert_eq!(h.sum(10, |t| t.requests), 30);
        let runs = h.breaker_runs("upstream");
        assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), HISTORY_SECONDS);
        assert!(runs.windows(2).all(|w| w[0].2 != w[1].2), "runs merge");
        assert!(h.breaker_runs("nope").is_empty());
    }

    #[test]
    fn the_first_sample_and_a_counter_reset_count_as_quiet() {
        let mut h = History::default();
        h.record(&snapshot(1_000, BreakerState::Closed));
        h.record(&snapshot(10, BreakerState::Closed));
        assert_eq!(h.series(|t| t.requests), vec![0.0, 0.0]);
    }
}
