//! What the memory budget (`TALLY_MAX_MEMORY`) counts: the bytes each structure of the store
//! holds, kept as it is allocated and freed.
//!
//! The model: a heap allocation costs its size rounded up to the allocator's size class
//! (8-byte steps up to 64 bytes, then at most an eighth more); a `BTreeMap` costs its
//! nodes: one leaf of 11 slots up to 11 entries, then a leaf per 7 entries (leaves split
//! when full and hold 6 to 11, whether keys arrive in order or at random) and an internal
//! node per 7 leaves. `tests/store_memory.rs` checks the count against the process' real
//! resident memory.

use std::mem::size_of;

use super::bucket::{Minute, Rollup};
use crate::domain::MetricType;

pub(super) use crate::store::rollup::allocation;

const SLOTS: usize = 11;
const KEPT: usize = 7;

fn leaf(kv: usize) -> usize {
    allocation(SLOTS * kv + 16)
}

fn internal(kv: usize) -> usize {
    allocation(SLOTS * kv + 16 + (SLOTS + 1) * size_of::<usize>())
}

/// A `BTreeMap` of `len` entries of `kv` bytes (key and value).
pub(super) fn btree(len: usize, kv: usize) -> usize {
    let leaves = match len {
        0 => return 0,
        1..=SLOTS => 1,
        _ => len.div_ceil(KEPT),
    };
    let internals = if leaves > 1 { leaves.div_ceil(KEPT) } else { 0 };
    leaves * leaf(kv) + internals * internal(kv)
}

/// At most what `new` more entries add to a `BTreeMap` of any length: `btree(len + new) -
/// btree(len)` for every `len`.
pub(super) fn btree_growth(new: usize, kv: usize) -> usize {
    match new {
        0 => 0,
        _ => (new.div_ceil(KEPT) + 2) * leaf(kv) + (new.div_ceil(KEPT * KEPT) + 2) * internal(kv),
    }
}

/// Entry sizes of the store's maps.
pub(super) const MINUTE_KV: usize = size_of::<i64>() + size_of::<Minute>();
pub(super) const ROLLUP_KV: usize = size_of::<i64>() + size_of::<Rollup>();
pub(super) const NAME_KV: usize = size_of::<MetricType>() + size_of::<u32>();
pub(super) const AGE_KV: usize = size_of::<(i64, u32)>();

/// A type's name, held twice: by its slot and by the name index.
pub(super) fn name_bytes(name: &MetricType) -> usize {
    2 * allocation(name.as_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_round_up_to_size_classes() {
        assert_eq!(allocation(0), 0);
        assert_eq!(allocation(1), 8);
        assert_eq!(allocation(64), 64);
        assert_eq!(allocation(800), 900);
    }

    #[test]
    fn growth_bounds_every_length() {
        for kv in [AGE_KV, MINUTE_KV, ROLLUP_KV] {
            for len in 0..400 {
                for new in 0..120 {
                    assert!(
                        btree(len + new, kv) - btree(len, kv) <= btree_growth(new, kv),
                        "len {len} + {new}"
                    );
                }
            }
        }
        assert_eq!(btree(11, MINUTE_KV), btree(1, MINUTE_KV));
        assert!(btree(12, MINUTE_KV) > btree(11, MINUTE_KV));
    }
}
