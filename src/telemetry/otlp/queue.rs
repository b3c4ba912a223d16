//! Finished spans, already encoded, waiting to be sent.
//!
//! A span is encoded on the thread that ends it, into one of several shards
//! (each thread keeps to one), so request threads neither wait on each other
//! nor hand span structs to another thread to free. The export thread takes
//! whole shards at once. One counter bounds what is held: past the limit a
//! span is dropped and counted, never waited for.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::SpanData;
use parking_lot::Mutex;

use super::encode;

/// The spans of one instrumentation scope in one shard: their `Span`
/// messages back to back, and where each ends.
#[derive(Debug)]
pub struct Group {
    pub scope: InstrumentationScope,
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
}

#[derive(Debug, Default)]
struct Shard {
    groups: Vec<Group>,
    /// Bytes the last drain took, to size the next buffer in one allocation.
    hint: usize,
}

#[derive(Debug)]
pub struct Queue {
    shards: Box<[Mutex<Shard>]>,
    queued: AtomicUsize,
    limit: usize,
    dropped: AtomicU64,
}

/// What `push` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; this many spans are held now.
    Queued(usize),
    /// The queue was full: the span was dropped.
    Dropped,
}

impl Queue {
    pub fn new(limit: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shards = (threads * 2).clamp(4, 64);
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            queued: AtomicUsize::new(0),
            limit,
            dropped: AtomicU64::new(0),
        }
    }

    /// The calling thread's shard: threads are dealt shards in turn.
    fn shard(&self) -> &Mutex<Shard> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static MINE: Cell<usize> = Cell::new(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        &self.shards[MINE.with(Cell::get) % self.shards.len()]
    }

    /// Encodes `span` into the calling thread's shard.
    pub fn push(&self, span: &SpanData) -> Pushed {
        let held = self.queued.fetch_add(1, Ordering::AcqRel);
        if held >= self.limit {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Pushed::Dropped;
        }
        let mut shard = self.shard().lock();
        // Sized by the last drain: the first group holds nearly everything.
        let hint = if shard.groups.is_empty() {
            shard.hint
        } else {
            0
        };
        let scope = &span.instrumentation_scope;
        let group = match shard.groups.iter().position(|g| g.scope == *scope) {
            Some(i) => &mut shard.groups[i],
            None => {
                shard.groups.push(Group {
                    scope: scope.clone(),
                    bytes: Vec::with_capacity(hint),
                    ends: Vec::new(),
                });
                shard.groups.last_mut().expect("just pushed")
            }
        };
        encode::put_span(&mut group.bytes, span);
        group.ends.push(group.bytes.len());
        Pushed::Queued(held + 1)
    }

    /// Spans held now.
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Spans dropped because the queue was full, since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Takes everything held, shard by shard.
    pub fn drain(&self) -> Vec<Group> {
        let mut out: Vec<Group> = Vec::new();
        let mut spans = 0;
        for shard in self.shards.iter() {
            let taken = {
                let mut shard = shard.lock();
                let taken = std::mem::take(&mut shard.groups);
                if !taken.is_empty() {
                    shard.hint = taken.iter().map(|g| g.bytes.len()).sum();
                }
                taken
            };
            spans += taken.iter().map(|g| g.ends.len()).sum::<usize>();
            out.extend(taken);
        }
        self.queued.fetch_sub(spans, Ordering::AcqRel);
        out
    }
}

/// One export request's worth: slices of span bytes per scope (scopes
/// merged), and how many spans they hold.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pub scopes: Vec<(&'a InstrumentationScope, Vec<&'a [u8]>)>,
    pub spans: usize,
}

/// Cuts drained groups into batches of at most `max` spans each.
pub fn batches(groups: &[Group], max: usize) -> Vec<Batch<'_>> {
    let mut out = Vec::new();
    let mut current = Batch::default();
    for group in groups {
        let mut first = 0;
        while first < group.ends.len() {
            let take = (max - current.spans).min(group.ends.len() - first);
            let from = if first == 0 { 0 } else { group.ends[first - 1] };
            let slice = &group.bytes[from..group.ends[first + take - 1]];
            match current.scopes.iter_mut().find(|(s, _)| **s == group.scope) {
                Some((_, slices)) => slices.push(slice),
                None => current.scopes.push((&group.scope, vec![slice])),
            }
            first += take;
            current.spans += take;
            if current.spans == max {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if current.spans > 0 {
        out.push(current);
    }
    out
}
