//! Races: every transition happens once, and half-open admits exactly its
//! permits, however many callers arrive together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::*;

/// 200 tasks call a failing dependency at once; returns the transitions.
async fn storm(breaker: Arc<Breaker>, yield_first: bool) -> Vec<(BreakerState, BreakerState)> {
    let mut tasks = JoinSet::new();
    for _ in 0..200 {
        let breaker = Arc::clone(&breaker);
        tasks.spawn(async move {
            let failing = async {
                if yield_first {
                    tokio::task::yield_now().await;
                }
                Err::<(), _>("connection refused")
            };
            breaker.call(secs(1), failing, errors_fail).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.is_ok(), "no task panics");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    transitions(&breaker)
        .into_iter()
        .map(|(from, to, _)| (from, to))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_failures_open_it_exactly_once_across_threads() {
    let breaker = Arc::new(breaker(config()));
    let transitions = storm(Arc::clone(&breaker), false).await;
    assert_eq!(transitions, [(BreakerState::Closed, BreakerState::Open)]);
    let counts = breaker.status().counts;
    assert_eq!(counts.failure + counts.rejected, 200);
}

#[tokio::test(start_paused = true)]
async fn failures_admitted_before_it_opened_open_it_once() {
    // Every call is admitted before any fails, so 195 failures arrive
    // after the breaker has opened.
    let breaker = Arc::new(breaker(config()));
    let transitions = storm(Arc::clone(&breaker), true).await;
    assert_eq!(transitions, [(BreakerState::Closed, BreakerState::Open)]);
    assert_eq!(breaker.status().counts.failure, 200);
}

/// 50 callers arrive at a half-open breaker; each probe waits until every
/// caller has been answered or admitted. Returns (polled, rejected).
async fn probe_rush(breaker: Arc<Breaker>) -> (usize, usize) {
    let polled = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let (breaker, polled, rejected, gate) = (
            Arc::clone(&breaker),
            Arc::clone(&polled),
            Arc::clone(&rejected),
            Arc::clone(&gate),
        );
        tasks.spawn(async move {
            let probe = async {
                polled.fetch_add(1, Ordering::SeqCst);
                let _pass = gate.acquire().await;
                Ok::<_, ()>(())
            };
            let result = breaker.call(secs(1), probe, errors_fail).await;
            if matches!(result, Err(BreakerError::Open { .. })) {
                rejected.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while polled.load(Ordering::SeqCst) + rejected.load(Ordering::SeqCst) < 50 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(50);
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.is_ok(), "no task panics");
    }
    (
        polled.load(Ordering::SeqCst),
        rejected.load(Ordering::SeqCst),
    )
}

#[tokio::test(start_paused = true)]
async fn half_open_polls_exactly_the_permitted_probes() {
    let breaker = Arc::new(breaker(BreakerConfig {
        half_open_permits: 3,
        ..config()
    }));
    trip(&breaker);
    tokio::time::advance(secs(30)).await;
    assert_eq!(probe_rush(Arc::clone(&breaker)).await, (3, 47));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_polls_exactly_the_permitted_probes_across_threads() {
    // Real time here: a paused clock needs a single-threaded runtime. The
    // reset timeout is long enough that no probe permit is reclaimed.
    let breaker = Arc::new(breaker(BreakerConfig {
        half_open_permits: 4,
        reset_timeout: secs(1),
        ..config()
    }));
    trip(&breaker);
    tokio::time::sleep(secs(1)).await;
    assert_eq!(probe_rush(Arc::clone(&breaker)).await, (4, 46));
    assert_eq!(breaker.state(), BreakerState::Closed);
}
