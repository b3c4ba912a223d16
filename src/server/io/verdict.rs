//! What closed a connection: the deadline that expired, recorded for whoever awaits it.

use std::sync::atomic::{AtomicU8, Ordering};

/// Why a connection was closed by its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Expired {
    Header,
    Idle,
    Send,
}

impl Expired {
    pub fn as_str(self) -> &'static str {
        match self {
            Expired::Header => "header_timeout",
            Expired::Idle => "idle_timeout",
            Expired::Send => "send_timeout",
        }
    }
}

/// Where a connection records the deadline that closed it, for whoever awaits it.
#[derive(Debug, Default)]
pub struct Verdict(AtomicU8);

impl Verdict {
    pub(super) fn set(&self, expired: Expired) {
        self.0.store(expired as u8 + 1, Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<Expired> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(Expired::Header),
            2 => Some(Expired::Idle),
            3 => Some(Expired::Send),
            _ => None,
        }
    }
}
