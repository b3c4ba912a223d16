//! What the memory budget (`TALLY_MAX_MEMORY`) counts: the bytes each structure of the store
//! holds, added and taken away as it is allocated and freed.
//!
//! The model: a `BTreeMap` entry costs about twice its key and value (nodes hold up to 11
//! entries and are a little over half full when keys arrive in order, as minutes, hours and
//! days do), and a heap allocation costs its size rounded up to the allocator's size class
//! (8-byte steps up to 64 bytes, then at most an eighth more). `tests/store_footprint.rs`
//! checks the estimate against the process' real resident memory.

use std::mem::size_of;

use super::bucket::{Minute, Rollup};
use super::series::Series;
use crate::domain::MetricType;

/// An allocation of `n` bytes as the allocator hands it out.
pub(super) fn allocation(n: usize) -> usize {
    match n {
        0 => 0,
        1..=64 => n.next_multiple_of(8),
        _ => n + n / 8,
    }
}

const fn btree_entry(key_and_value: usize) -> usize {
    2 * key_and_value + 8
}

/// A minute bucket without its columns: its entry in the series and in the age index.
pub(super) const MINUTE_ENTRY: usize =
    btree_entry(size_of::<i64>() + size_of::<Minute>()) + btree_entry(size_of::<(i64, u32)>());

/// An hour or day rollup without its sketch's bins.
pub(super) const ROLLUP_ENTRY: usize = btree_entry(size_of::<i64>() + size_of::<Rollup>());

/// A type without its buckets: its slot, its entry in the name index, its series' own
/// fields and its name (held twice: by the slot and by the index).
pub(super) fn type_bytes(name: &MetricType) -> usize {
    // The slot vector grows by doubling: count its slots as half full at worst.
    2 * (size_of::<MetricType>() + size_of::<Series>() + 8)
        + btree_entry(size_of::<MetricType>() + size_of::<u32>())
        + 2 * allocation(name.as_str().len())
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
        assert!(MINUTE_ENTRY > size_of::<Minute>() && ROLLUP_ENTRY > size_of::<Rollup>());
    }
}
