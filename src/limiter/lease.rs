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
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

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
    seen: Option<Instant>,
}

type Key = (PolicyName, ClientKey);

pub struct Leases {
    duration: Duration,
    /// An ask older than this is taken as lost (its call failed or was dropped).
    ask_expiry: Duration,
    shards: Vec<Mutex<HashMap<Key, Client>>>,
}

impl Leases {
    /// `duration` zero turns leases off. `ask_timeout` bounds a Redis call.
    pub fn new(duration: Duration, ask_timeout: Duration) -> Self {
        Self {
            duration,
            ask_expiry: ask_timeout * 2,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn applies(&self, policy: &Policy) -> bool {
        !self.duration.is_zero() && policy.limit >= LIMIT_SHARE
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, Client>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
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
        let give_back = entry.lease.take().and_then(|l| {
            (l.left > 0).then_some(GiveBack {
                stamp: l.stamp,
                size: l.size,
                unused: l.left,
            })
        });
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
    fn make_room(&self, shard: &mut HashMap<Key, Client>, now: Instant) {
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
mod tests {
    use std::net::IpAddr;

    use super::*;

    const DURATION: Duration = Duration::from_millis(500);

    fn policy(limit: u64) -> Policy {
        Policy {
            name: PolicyName::Read,
            limit,
            window: Duration::from_secs(60),
        }
    }

    fn client(s: &str) -> ClientKey {
        ClientKey::of(s.parse::<IpAddr>().expect("ip"))
    }

    fn leases() -> Leases {
        Leases::new(DURATION, Duration::from_millis(50))
    }

    fn ask(take: Take) -> (u32, Option<GiveBack>) {
        match take {
            Take::Ask { lease, give_back } => (lease, give_back),
            Take::Leased(v) => panic!("served from a lease: {v:?}"),
        }
    }

    fn grant(slots: u32, free: u64) -> Option<Grant> {
        Some(Grant {
            slots,
            stamp: 1_000,
            free,
            reset: Duration::from_secs(60),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_serves_its_slots_then_the_script_is_asked_again() {
        let l = leases();
        let (p, c) = (policy(1_000_000), client("10.0.0.1"));
        assert_eq!(ask(l.take(&p, c)), (2, None), "twice the demand of one");
        l.settle(p.name, c, grant(3, 500), Instant::now());
        let remaining: Vec<u64> = (0..3)
            .map(|_| match l.take(&p, c) {
                Take::Leased(v) => {
                    assert!(v.allowed);
                    v.remaining
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            remaining,
            [502, 501, 500],
            "counts down to what Redis has free"
        );
        // Used up: ask for twice what was asked since the grant, nothing to give back.
        assert_eq!(ask(l.take(&p, c)), (8, None));
    }

    #[tokio::test(start_paused = true)]
    async fn one_ask_at_a_time_per_client_and_a_lost_one_expires() {
        let l = leases();
        let (p, c) = (policy(1_000_000), client("10.0.0.1"));
        assert_eq!(ask(l.take(&p, c)).0, 2);
        assert_eq!(ask(l.take(&p, c)), (0, None), "an ask is pending");
        assert_eq!(
            ask(l.take(&p, client("10.0.0.2"))).0,
            2,
            "another client asks"
        );
        // No answer within twice the call timeout: the ask is taken as lost.
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(ask(l.take(&p, c)).0, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_lease_gives_back_what_it_did_not_use_once() {
        let l = leases();
        let (p, c) = (policy(1_000_000), client("10.0.0.1"));
        ask(l.take(&p, c));
        l.settle(p.name, c, grant(10, 0), Instant::now());
        assert!(matches!(l.take(&p, c), Take::Leased(_)));
        tokio::time::advance(DURATION).await;
        let back = GiveBack {
            stamp: 1_000,
            size: 10,
            unused: 9,
        };
        assert_eq!(ask(l.take(&p, c)), (4, Some(back)), "sized by the one used");
        l.settle(p.name, c, None, Instant::now());
        assert_eq!(ask(l.take(&p, c)), (6, None), "given back once");
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_ends_one_duration_after_its_call_was_sent() {
        let l = leases();
        let (p, c) = (policy(1_000_000), client("10.0.0.1"));
        let sent = Instant::now();
        ask(l.take(&p, c));
        tokio::time::advance(Duration::from_millis(40)).await;
        l.settle(p.name, c, grant(100, 0), sent);
        tokio::time::advance(DURATION - Duration::from_millis(41)).await;
        assert!(matches!(l.take(&p, c), Take::Leased(_)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            matches!(l.take(&p, c), Take::Ask { .. }),
            "ended at sent + duration"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sizes_are_capped_by_the_limit_and_the_maximum() {
        let l = leases();
        let small = policy(10_000);
        let c = client("10.0.0.1");
        for _ in 0..50 {
            tokio::time::advance(Duration::from_millis(200)).await;
            let (lease, _) = ask(l.take(&small, c));
            assert!(lease <= 10, "a thousandth of the limit");
        }
        let big = Policy {
            name: PolicyName::Write,
            ..policy(u64::MAX)
        };
        for _ in 0..2_000 {
            l.take(&big, c);
        }
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(ask(l.take(&big, c)).0, LEASE_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn small_limits_and_a_zero_duration_never_lease() {
        let c = client("10.0.0.1");
        assert_eq!(leases().take(&policy(LIMIT_SHARE - 1), c), PLAIN);
        let off = Leases::new(Duration::ZERO, Duration::from_millis(50));
        assert_eq!(off.take(&policy(1_000_000), c), PLAIN);
        assert!(
            off.shards.iter().all(|s| s.lock().is_empty()),
            "nothing tracked"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tracked_clients_are_bounded() {
        let l = leases();
        let p = policy(1_000_000);
        for i in 0..(SHARDS * MAX_CLIENTS_PER_SHARD + 1_000) as u32 {
            l.take(&p, ClientKey::of(IpAddr::from(i.to_be_bytes())));
        }
        let tracked: usize = l.shards.iter().map(|s| s.lock().len()).sum();
        assert!(tracked <= SHARDS * MAX_CLIENTS_PER_SHARD);
    }
}
