//! The idempotency keys a write of this instance is storing right now: a second request
//! with one of them is refused (409) instead of racing the first.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::domain::IdempotencyKey;

/// The keys being stored by this instance right now.
#[derive(Debug, Default)]
pub struct KeysInFlight(Mutex<HashSet<IdempotencyKey>>);

/// Holds a key in flight; gives it back when dropped.
pub struct Holding<'a> {
    in_flight: &'a KeysInFlight,
    key: IdempotencyKey,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.in_flight.0.lock().remove(&self.key);
    }
}

impl KeysInFlight {
    /// Holds `key` until the returned guard drops; `None` while it is held already.
    pub fn hold(&self, key: &IdempotencyKey) -> Option<Holding<'_>> {
        self.0.lock().insert(key.clone()).then(|| Holding {
            in_flight: self,
            key: key.clone(),
        })
    }
}
