//! The in-process sliding-window log: the same algorithm as the Redis script,
//! per instance, used while Redis cannot decide.
//!
//! Memory: at most `limit` timestamps (8 bytes each) per active client and
//! policy; idle clients are swept, and the number of tracked clients is capped.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::Verdict;
use super::identity::ClientKey;
use super::policy::{Policy, PolicyName};

const SHARDS: usize = 16;
/// Most clients tracked per shard before idle ones are swept or the stalest dropped.
const MAX_CLIENTS_PER_SHARD: usize = 8_192;

type Log = VecDeque<u64>;

/// Keyed by policy and client (`K` is a plain string in the unit tests).
pub struct LocalWindow<K = ClientKey> {
    epoch: Instant,
    shards: Vec<Mutex<HashMap<(PolicyName, K), Log>>>,
}

impl<K: Hash + Eq + Clone> Default for LocalWindow<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone> LocalWindow<K> {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Accepts when fewer than `limit` requests were accepted in the last
    /// `window`; a rejected request is not recorded.
    pub fn decide(&self, policy: &Policy, client: K) -> Verdict {
        let now = self.micros(Instant::now());
        let window = policy.window.as_micros() as u64;
        let key = (policy.name, client);
        let mut shard = self.shards[shard_of(&key)].lock();
        if shard.len() >= MAX_CLIENTS_PER_SHARD && !shard.contains_key(&key) {
            make_room(&mut shard, now, window);
        }
        let log = match shard.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(VecDeque::new()),
        };
        while log.front().is_some_and(|&t| t + window <= now) {
            log.pop_front();
        }
        let allowed = (log.len() as u64) < policy.limit;
        if allowed {
            log.push_back(now);
        }
        let reset = log.front().map_or(window, |&oldest| oldest + window - now);
        Verdict {
            allowed,
            remaining: policy.limit - log.len() as u64,
            reset: Duration::from_micros(reset),
        }
    }

    fn micros(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_micros() as u64
    }
}

fn shard_of<K: Hash>(key: &(PolicyName, K)) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

/// Drops idle clients; if none is idle, the one whose newest request is oldest.
fn make_room<K: Hash + Eq + Clone>(
    shard: &mut HashMap<(PolicyName, K), Log>,
    now: u64,
    window: u64,
) {
    shard.retain(|_, log| log.back().is_some_and(|&t| t + window > now));
    if shard.len() >= MAX_CLIENTS_PER_SHARD {
        let stalest = shard
            .iter()
            .min_by_key(|(_, log)| log.back().copied().unwrap_or(0))
            .map(|(k, _)| k.clone());
        if let Some(k) = stalest {
            shard.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: u64, secs: u64) -> Policy {
        Policy {
            name: PolicyName::Write,
            limit,
            window: Duration::from_secs(secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_n_in_any_window_and_quota_returns_one_by_one() {
        let w = LocalWindow::<&str>::new();
        let p = policy(3, 10);
        // t=0: two requests; t=4: one more; the fourth is refused.
        assert!(w.decide(&p, "c").allowed);
        assert!(w.decide(&p, "c").allowed);
        tokio::time::advance(Duration::from_secs(4)).await;
        let third = w.decide(&p, "c");
        assert!(third.allowed);
        assert_eq!(third.remaining, 0);
        let refused = w.decide(&p, "c");
        assert!(!refused.allowed);
        assert_eq!(
            refused.reset,
            Duration::from_secs(6),
            "until the t=0 requests leave"
        );
        // Just before t=10 nothing has left; at t=10 the two t=0 requests leave together.
        tokio::time::advance(Duration::from_millis(5_999)).await;
        assert!(!w.decide(&p, "c").allowed);
        tokio::time::advance(Duration::from_millis(1)).await;
        let back = w.decide(&p, "c");
        assert!(back.allowed);
        assert_eq!(back.remaining, 1);
        // The t=4 request leaves at t=14, not at a window boundary.
        assert!(w.decide(&p, "c").allowed);
        assert!(!w.decide(&p, "c").allowed);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(w.decide(&p, "c").allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_do_not_consume_quota_and_clients_are_separate() {
        let w = LocalWindow::<&str>::new();
        let p = policy(2, 60);
        assert!(w.decide(&p, "a").allowed);
        assert!(w.decide(&p, "a").allowed);
        for _ in 0..100 {
            assert!(!w.decide(&p, "a").allowed);
        }
        assert!(
            w.decide(&p, "b").allowed,
            "another client has its own quota"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        // Had the 100 rejections counted, "a" would still be blocked.
        assert!(w.decide(&p, "a").allowed);
        assert!(w.decide(&p, "a").allowed);
        assert!(!w.decide(&p, "a").allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn policies_do_not_share_quota() {
        let w = LocalWindow::<&str>::new();
        let write = policy(1, 60);
        let read = Policy {
            name: PolicyName::Read,
            ..write
        };
        assert!(w.decide(&write, "c").allowed);
        assert!(!w.decide(&write, "c").allowed);
        assert!(w.decide(&read, "c").allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn tracked_clients_are_bounded() {
        let w = LocalWindow::<usize>::new();
        let p = policy(1, 60);
        for i in 0..(SHARDS * MAX_CLIENTS_PER_SHARD + 1000) {
            w.decide(&p, i);
        }
        let tracked: usize = w.shards.iter().map(|s| s.lock().len()).sum();
        assert!(tracked <= SHARDS * MAX_CLIENTS_PER_SHARD);
    }
}
