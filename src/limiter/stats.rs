//! What the limiter has decided since start, for the dashboard: allowed and
//! limited per policy, and the clients limited most recently (masked, so the
//! page never shows a whole address).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::{Backend, Policy, PolicyName};
use crate::config::FailMode;

/// Clients kept in the recently-limited list.
pub const RECENT_LIMITED: usize = 20;

#[derive(Debug, Default)]
pub struct LimiterCounters {
    allowed: [AtomicU64; 2],
    limited: [AtomicU64; 2],
    /// Decisions by who made them: Redis, the local window, the fail mode.
    by_backend: [AtomicU64; 3],
    recent: Mutex<Vec<LimitedClient>>,
}

/// A client that was refused, by its masked address and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitedClient {
    /// `203.0.113.x`, or the /48 of an IPv6 address.
    pub client: String,
    pub policy: PolicyName,
    pub last_at: DateTime<Utc>,
    /// Requests refused since it entered the list.
    pub refused: u64,
}

/// One policy's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyStats {
    pub policy: Policy,
    pub allowed: u64,
    pub limited: u64,
}

/// Decisions since start by who made them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounts {
    pub redis: u64,
    pub local: u64,
    /// Made by the fail mode (`open` or `closed`) while Redis could not decide.
    pub fallback: u64,
}

/// Everything the dashboard shows about the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterStats {
    pub write: PolicyStats,
    pub read: PolicyStats,
    /// Who decided the latest request (`None` before the first).
    pub backend: Option<Backend>,
    pub by_backend: BackendCounts,
    pub fail_mode: FailMode,
    /// Newest first.
    pub recent: Vec<LimitedClient>,
}

fn slot(policy: PolicyName) -> usize {
    match policy {
        PolicyName::Write => 0,
        PolicyName::Read => 1,
    }
}

impl LimiterCounters {
    pub fn decided(&self, policy: PolicyName, allowed: bool, backend: Backend) {
        let counters = if allowed {
            &self.allowed
        } else {
            &self.limited
        };
        counters[slot(policy)].fetch_add(1, Ordering::Relaxed);
        self.by_backend[backend as usize - 1].fetch_add(1, Ordering::Relaxed);
    }

    /// Decisions since start by who made them.
    pub fn by_backend(&self) -> BackendCounts {
        let n = |b: Backend| self.by_backend[b as usize - 1].load(Ordering::Relaxed);
        BackendCounts {
            redis: n(Backend::Redis),
            local: n(Backend::Local),
            fallback: n(Backend::Fallback),
        }
    }

    /// Puts `ip` at the top of the recently-limited list.
    pub fn limited_client(&self, ip: IpAddr, policy: PolicyName, at: DateTime<Utc>) {
        let client = mask(ip);
        let mut recent = self.recent.lock();
        let refused = match recent
            .iter()
            .position(|c| c.client == client && c.policy == policy)
        {
            Some(i) => recent.remove(i).refused + 1,
            None => 1,
        };
        recent.insert(
            0,
            LimitedClient {
                client,
                policy,
                last_at: at,
                refused,
            },
        );
        recent.truncate(RECENT_LIMITED);
    }

    pub fn policy(&self, policy: Policy) -> PolicyStats {
        let i = slot(policy.name);
        PolicyStats {
            policy,
            allowed: self.allowed[i].load(Ordering::Relaxed),
            limited: self.limited[i].load(Ordering::Relaxed),
        }
    }

    pub fn recent(&self) -> Vec<LimitedClient> {
        self.recent.lock().clone()
    }
}

/// An address with its host part hidden: the last octet of IPv4, all but the
/// first 48 bits of IPv6.
pub fn mask(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.x")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_host_part() {
        assert_eq!(mask("203.0.113.77".parse().unwrap()), "203.0.113.x");
        assert_eq!(
            mask("2001:db8:abcd:12::1".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
    }

    #[test]
    fn recent_list_is_newest_first_deduplicated_and_bounded() {
        let c = LimiterCounters::default();
        let now = Utc::now();
        for i in 0..30u8 {
            c.limited_client(IpAddr::from([10, 0, i, 1]), PolicyName::Write, now);
        }
        c.limited_client(IpAddr::from([10, 0, 29, 9]), PolicyName::Write, now);
        let recent = c.recent();
        assert_eq!(recent.len(), RECENT_LIMITED);
        assert_eq!(recent[0].client, "10.0.29.x");
        assert_eq!(recent[0].refused, 2);
        assert_eq!(recent[1].client, "10.0.28.x");
        assert_eq!(recent.last().unwrap().client, "10.0.10.x");
    }
}
