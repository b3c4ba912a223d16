//! Half-open bookkeeping: which probe permits are out, since when, and how
//! many probes have succeeded.
//!
//! A permit is either outstanding, succeeded, or gone (returned by a dropped
//! caller or reclaimed when it overstays). Capacity is what the permitted
//! number leaves after the first two, so exactly `permits` probes are ever
//! admitted at once and a lost caller never strands a permit.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Probation {
    permits: u32,
    /// Permit id and when it was issued; a handful at most.
    outstanding: Vec<(u64, Instant)>,
    succeeded: u32,
}

impl Probation {
    pub fn new(permits: u32) -> Self {
        Self {
            permits,
            outstanding: Vec::new(),
            succeeded: 0,
        }
    }

    pub fn has_capacity(&self) -> bool {
        self.in_flight() + self.succeeded < self.permits
    }

    pub fn in_flight(&self) -> u32 {
        u32::try_from(self.outstanding.len()).unwrap_or(u32::MAX)
    }

    pub fn succeeded(&self) -> u32 {
        self.succeeded
    }

    /// Issues permit `id` if one is left.
    pub fn admit(&mut self, id: u64, now: Instant) -> bool {
        if !self.has_capacity() {
            return false;
        }
        self.outstanding.push((id, now));
        true
    }

    pub fn holds(&self, id: u64) -> bool {
        self.outstanding.iter().any(|(held, _)| *held == id)
    }

    /// Returns permit `id` unused; false if it was not outstanding.
    pub fn release(&mut self, id: u64) -> bool {
        let before = self.outstanding.len();
        self.outstanding.retain(|(held, _)| *held != id);
        self.outstanding.len() != before
    }

    /// Counts permit `id` as a success; true when every permitted probe has
    /// now succeeded.
    pub fn succeed(&mut self, id: u64) -> bool {
        if self.release(id) {
            self.succeeded += 1;
        }
        self.succeeded >= self.permits
    }

    /// Takes back permits held for `max_age` or longer, so a probe that never
    /// reports cannot keep the breaker half-open.
    pub fn reclaim(&mut self, now: Instant, max_age: Duration) {
        self.outstanding
            .retain(|(_, issued)| now.saturating_duration_since(*issued) < max_age);
    }

    /// When the oldest outstanding permit will be reclaimed, if any is out.
    pub fn next_reclaim(&self, max_age: Duration) -> Option<Instant> {
        self.outstanding
            .iter()
            .map(|(_, issued)| *issued + max_age)
            .min()
    }
}
