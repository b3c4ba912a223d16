//! Connection counts for `/metrics`: how many are open, and how many the server closed
//! because a client was too slow (its head, between requests, or reading what it asked).

use std::sync::atomic::{AtomicU64, Ordering};

use super::names::{
    HTTP_CONNECTIONS_OPEN, HTTP_CONNECTIONS_TIMED_OUT_TOTAL, HTTP_CONNECTIONS_TOTAL, LABEL_REASON,
};

static OPEN: AtomicU64 = AtomicU64::new(0);

pub fn opened() {
    let open = OPEN.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::counter!(HTTP_CONNECTIONS_TOTAL).increment(1);
    metrics::gauge!(HTTP_CONNECTIONS_OPEN).set(open as f64);
}

/// `timed_out` names the deadline that closed it, if one did (`header_timeout`, ...).
pub fn closed(timed_out: Option<&'static str>) {
    let open = OPEN.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
    metrics::gauge!(HTTP_CONNECTIONS_OPEN).set(open as f64);
    if let Some(reason) = timed_out {
        metrics::counter!(HTTP_CONNECTIONS_TIMED_OUT_TOTAL, LABEL_REASON => reason).increment(1);
    }
}

/// Connections open now (in this process).
pub fn open() -> u64 {
    OPEN.load(Ordering::Relaxed)
}

/// Every series at zero, so rates and alerts see them from the first scrape.
pub fn register() {
    metrics::counter!(HTTP_CONNECTIONS_TOTAL).increment(0);
    for reason in ["header_timeout", "idle_timeout", "send_timeout"] {
        metrics::counter!(HTTP_CONNECTIONS_TIMED_OUT_TOTAL, LABEL_REASON => reason).increment(0);
    }
}
