//! The embedded store's idempotency keys: each key's request digest and answer, kept until
//! `IDEMPOTENCY_TTL` passes, at most `max` of them (past it the oldest goes early: a
//! retry that late may be stored again), and counted in the memory budget.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::footprint::allocation;
use crate::domain::IdempotencyKey;

struct Record {
    fingerprint: [u8; 32],
    response: Bytes,
    /// µs since the epoch.
    expires: i64,
}

pub(super) struct Keys {
    by_key: HashMap<IdempotencyKey, Record>,
    /// Keys in the order they were recorded, which is the order they expire.
    order: VecDeque<(i64, IdempotencyKey)>,
    /// Heap bytes of the keys' text and answers.
    heap: usize,
    max: usize,
    ttl_us: i64,
}

/// What one recorded key holds apart from its text and answer.
const ENTRY: usize = size_of::<(IdempotencyKey, Record)>() + 1;
const ORDER_ENTRY: usize = size_of::<(i64, IdempotencyKey)>();

impl Keys {
    pub fn new(max: usize, ttl_us: i64) -> Self {
        Self {
            by_key: HashMap::new(),
            order: VecDeque::new(),
            heap: 0,
            max,
            ttl_us,
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Bytes held, as the memory budget counts them.
    pub fn bytes(&self) -> usize {
        self.heap + self.by_key.capacity() * ENTRY + self.order.capacity() * ORDER_ENTRY
    }

    /// At most what recording `key` with `response` adds.
    pub fn growth_bound(&self, key: &IdempotencyKey, response: &Bytes) -> usize {
        let grow = |len: usize, cap: usize, entry: usize| {
            if len < cap { 0 } else { cap.max(4) * entry }
        };
        record_heap(key, response)
            + grow(self.by_key.len(), self.by_key.capacity(), ENTRY)
            + grow(self.order.len(), self.order.capacity(), ORDER_ENTRY)
    }

    /// The live record of `key`: its digest and answer.
    pub fn get(&self, key: &IdempotencyKey, now: i64) -> Option<(&[u8; 32], &Bytes)> {
        self.by_key
            .get(key)
            .filter(|r| r.expires > now)
            .map(|r| (&r.fingerprint, &r.response))
    }

    /// Records `key` (replacing an expired record of it); the oldest goes past `max`.
    pub fn record(
        &mut self,
        key: IdempotencyKey,
        fingerprint: [u8; 32],
        response: Bytes,
        now: i64,
    ) {
        if self.by_key.len() >= self.max {
            self.pop_oldest();
        }
        let expires = now.saturating_add(self.ttl_us);
        self.heap += record_heap(&key, &response);
        self.order.push_back((expires, key.clone()));
        let record = Record {
            fingerprint,
            response,
            expires,
        };
        if let Some(old) = self.by_key.insert(key.clone(), record) {
            // An expired record of the same key: its queue entry goes when it expires.
            self.heap -= allocation(old.response.len());
        }
    }

    /// Forgets the keys whose lifetime has passed.
    pub fn expire(&mut self, now: i64) {
        while self
            .order
            .front()
            .is_some_and(|(expires, _)| *expires <= now)
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        let Some((expires, key)) = self.order.pop_front() else {
            return;
        };
        self.heap -= 2 * allocation(key.as_str().len());
        // Only if the record is this entry's (a key recorded again after expiring has a
        // newer entry further back).
        if self.by_key.get(&key).is_some_and(|r| r.expires == expires)
            && let Some(record) = self.by_key.remove(&key)
        {
            self.heap -= allocation(record.response.len());
        }
    }
}

/// The heap a record takes: its key twice (map and queue) and its answer.
fn record_heap(key: &IdempotencyKey, response: &Bytes) -> usize {
    2 * allocation(key.as_str().len()) + allocation(response.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> IdempotencyKey {
        IdempotencyKey::parse(s).unwrap()
    }

    #[test]
    fn keys_expire_in_order_and_the_oldest_goes_past_the_cap() {
        let mut keys = Keys::new(2, 100);
        let answer = Bytes::from_static(b"{\"accepted\":1}");
        keys.record(key("a"), [1; 32], answer.clone(), 0);
        keys.record(key("b"), [2; 32], answer.clone(), 10);
        assert_eq!(keys.get(&key("a"), 50).map(|r| r.0), Some(&[1; 32]));
        keys.record(key("c"), [3; 32], answer.clone(), 20);
        assert!(
            keys.get(&key("a"), 50).is_none(),
            "past the cap: the oldest went"
        );
        assert!(keys.get(&key("b"), 109).is_some());
        assert!(
            keys.get(&key("b"), 110).is_none(),
            "expired at its lifetime"
        );
        keys.expire(115);
        assert_eq!(keys.len(), 1);
        keys.expire(1_000);
        assert_eq!((keys.len(), keys.heap), (0, 0));
    }

    #[test]
    fn an_expired_key_recorded_again_keeps_its_new_record() {
        let mut keys = Keys::new(10, 100);
        let answer = Bytes::from_static(b"x");
        keys.record(key("k"), [1; 32], answer.clone(), 0);
        keys.record(key("k"), [2; 32], answer.clone(), 150);
        keys.expire(120);
        assert_eq!(keys.get(&key("k"), 200).map(|r| r.0), Some(&[2; 32]));
        keys.expire(300);
        assert_eq!((keys.len(), keys.heap), (0, 0));
    }
}
