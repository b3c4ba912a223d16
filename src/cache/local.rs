//! The in-process tier: bounded (capacity), each entry usable as a hit for the
//! local TTL after it arrived here, and kept a little longer as a last resort
//! for stale-if-error.

use std::time::Duration;

use foldhash::fast::RandomState;
use moka::sync::Cache;

use super::entry::SharedEntry;
use super::keys::CacheKey;

#[derive(Clone)]
pub struct LocalEntry {
    pub entry: SharedEntry,
    /// Wall-clock milliseconds when this instance stored it.
    pub stored_at_ms: i64,
}

/// Cheap to clone: clones share the same entries.
#[derive(Clone)]
pub struct LocalTier {
    /// foldhash, seeded per process, in place of SipHash: every summary
    /// request looks its key up here.
    entries: Cache<String, LocalEntry, RandomState>,
    ttl_ms: i64,
}

impl LocalTier {
    /// `keep` bounds how long an entry stays at all (freshness + stale window).
    pub fn new(capacity: u64, ttl: Duration, keep: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(keep.max(ttl))
                .build_with_hasher(RandomState::default()),
            ttl_ms: ttl.as_millis() as i64,
        }
    }

    /// Any entry held for `key`, however old.
    pub fn get(&self, key: &CacheKey) -> Option<LocalEntry> {
        self.entries.get(key.as_str())
    }

    /// Whether `local` arrived recently enough to answer without Redis.
    pub fn is_recent(&self, local: &LocalEntry, now_ms: i64) -> bool {
        now_ms - local.stored_at_ms < self.ttl_ms
    }

    pub fn put(&self, key: &CacheKey, entry: SharedEntry, now_ms: i64) {
        self.entries.insert(
            key.as_str().to_owned(),
            LocalEntry {
                entry,
                stored_at_ms: now_ms,
            },
        );
    }

    /// Entries held (settles pending evictions first: call it rarely).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}
