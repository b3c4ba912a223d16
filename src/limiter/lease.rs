//! Quota leases: when one client sends many requests to this instance, the
//! Redis window reserves a few of the client's slots for this instance along
//! with a decision (a lease), and the instance hands them out without a round
//! trip each.
//!
//! Safe by construction: the script counts a leased slot from its grant until
//! one window after the lease ends, which covers any moment the slot can be
//! used, so no more than the limit is accepted in any window, across
//! instances. What it costs: a leased slot returns up to one lease duration
//! later than an exact log would return it, and slots this instance holds are
//! not available to the client on another instance until this one gives them
//! back (with its next Redis call for the client once the lease has ended; if
//! that call fails they simply age out). A lease is at most twice what the
//! client asked here since the last grant, at most `LEASE_MAX` and at most
//! 1/`LIMIT_SHARE` of the limit, and the script grants none once half the
//! quota is used: near the limit every decision is the script's own.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::Verdict;
use super::identity::ClientKey;
use super::policy::{Policy, PolicyName};

/// Most slots in one lease.
pub const LEASE_MAX: u32 = 1024;
/// A lease is at most this share of the limit, so policies below it never
/// lease (the defaults, 100 and 600 per minute, are decided by Redis alone).
pub const LIMIT_SHARE: u64 = 1_000;
const SHARDS: usize = 16;
/// Most clients tracked per shard before idle ones are dropped.
const MAX_CLIENTS_PER_SHARD: usize = 4_096;

/// Unused slots of an ended lease, to give back: the lease's entry in the log
/// (its stamp and size) and how many of its slots were not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveBack {
    pub stamp: i64,
    pub size: u32,
    pub unused: u32,
}

/// What the script granted along with a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub slots: u32,
    /// The lease's entry in the log.
    pub stamp: i64,
    /// Quota left after the grant, not counting the lease.
    pub free: u64,
    /// Until the oldest counted request leaves the window.
    pub reset: Duration,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Served from this instance's lease: no Redis call.
    Leased(Verdict),
    /// Ask the script; also for `lease` slots more (0: none), and give back
    /// what an ended lease left.
    Ask {
        lease: u32,
        give_back: Option<GiveBack>,
    },
}

const PLAIN: Take = Take::Ask {
    lease: 0,
    give_back: None,
};

struct Lease {
    left: u32,
    size: u32,
    stamp: i64,
    ends: Instant,
    free: u64,
    reset_at: Instant,
}

#[derive(Default)]
struct Client {
    lease: Option<Lease>,
    /// Requests seen here since the last grant.
    demand: u32,
    /// When the pending ask for a lease was made: one at a time per client.
    asking: Option<Instant>,
    /// What an ended lease left while an ask was pending: sent with the next.
    owed: Option<GiveBack>,
    seen: Option<Instant>,
}

type Key = (PolicyName, ClientKey);
/// foldhash, seeded per process: a lease-served request hashes its key twice
/// (shard, then entry), and SipHash was a visible part of that path.
type Clients = HashMap<Key, Client, RandomState>;

pub struct Leases {
    duration: Duration,
    /// An ask older than this is taken as lost (its call failed or was dropped).
    ask_expiry: Duration,
    hasher: RandomState,
    shards: Vec<Mutex<Clients>>,
}

/// The give-back of a replaced lease (one that ended, or was used up).
fn leftover(lease: Option<Lease>) -> Option<GiveBack> {
    lease.filter(|l| l.left > 0).map(|l| GiveBack {
        stamp: l.stamp,
        size: l.size,
        unused: l.left,
    })
}

impl Leases {
    /// `duration` zero turns leases off. `ask_timeout` bounds a Redis call.
    pub fn new(duration: Duration, ask_timeout: Duration) -> Self {
        Self {
            duration,
            ask_expiry: ask_timeout * 2,
            hasher: RandomState::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(RandomState::default())))
                .collect(),
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn applies(&self, policy: &Policy) -> bool {
        !self.duration.is_zero() && policy.limit >= LIMIT_SHARE
    }

    fn shard(&self, key: &Key) -> &Mutex<Clients> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Serves the request from a live lease, or says what to ask the script.
    pub fn take(&self, policy: &Policy, client: ClientKey) -> Take {
        if !self.applies(policy) {
            return PLAIN;
        }
        let now = Instant::now();
        let key = (policy.name, client);
        let mut shard = self.shard(&key).lock();
        if shard.len() >= MAX_CLIENTS_PER_SHARD && !shard.contains_key(&key) {
            self.make_room(&mut shard, now);
        }
        let entry = shard.entry(key).or_default();
        entry.demand = entry.demand.saturating_add(1);
        entry.seen = Some(now);
        if let Some(lease) = entry.lease.as_mut().filter(|l| now < l.ends && l.left > 0) {
            lease.left -= 1;
            return Take::Leased(Verdict {
                allowed: true,
                remaining: lease.free + u64::from(lease.left),
                reset: lease.reset_at.saturating_duration_since(now),
            });
        }
        if entry
            .asking
            .is_some_and(|at| now.duration_since(at) < self.ask_expiry)
        {
            return PLAIN;
        }
        // Empty or ended (a live lease with slots served above): what an
        // ended one left goes back with this ask.
        let give_back = entry.owed.take().or_else(|| leftover(entry.lease.take()));
        let share = u32::try_from(policy.limit / LIMIT_SHARE).unwrap_or(u32::MAX);
        let lease = entry.demand.saturating_mul(2).min(LEASE_MAX).min(share);
        entry.asking = Some(now);
        Take::Ask { lease, give_back }
    }

    /// The pending ask of `client` was answered (`grant` if slots came with
    /// it) or failed. `sent` is when its call was sent: the lease ends one
    /// duration after that, never later than the script's reservation does.
    pub fn settle(
        &self,
        policy: PolicyName,
        client: ClientKey,
        grant: Option<Grant>,
        sent: Instant,
    ) {
        let key = (policy, client);
        let mut shard = self.shard(&key).lock();
        // Dropped meanwhile (table full): the slots age out in Redis.
        let Some(entry) = shard.get_mut(&key) else {
            return;
        };
        entry.asking = None;
        if let Some(g) = grant.filter(|g| g.slots > 0) {
            // A lease that ended while this ask was pending: owe what it left.
            if let Some(back) = leftover(entry.lease.take()) {
                entry.owed = Some(back);
            }
            entry.lease = Some(Lease {
                left: g.slots,
                size: g.slots,
                stamp: g.stamp,
                ends: sent + self.duration,
                free: g.free,
                reset_at: Instant::now() + g.reset,
            });
            entry.demand = 0;
        }
    }

    /// Drops clients idle for two lease durations (their unused slots age
    /// out in Redis); if none is, the one seen longest ago.
    fn make_room(&self, shard: &mut Clients, now: Instant) {
        let idle = self.duration * 2;
        shard.retain(|_, c| c.seen.is_some_and(|s| now.duration_since(s) < idle));
        if shard.len() >= MAX_CLIENTS_PER_SHARD {
            let stalest = shard.iter().min_by_key(|(_, c)| c.seen).map(|(k, _)| *k);
            if let Some(k) = stalest {
                shard.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests;
