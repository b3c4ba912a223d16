//! Open and half-open: rejection, the reset timeout, probes and their
//! permits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::advance;

use super::*;

#[tokio::test(start_paused = true)]
async fn open_rejects_with_the_time_until_half_open() {
    let breaker = breaker(config());
    trip(&breaker);
    advance(secs(10)).await;
    let rejection = breaker.try_acquire().map(|_| ()).unwrap_err();
    assert_eq!(
        rejection,
        Rejection {
            state: BreakerState::Open,
            retry_after: secs(20)
        }
    );
    assert!(!breaker.is_call_permitted());

    let polled = AtomicUsize::new(0);
    let result = breaker
        .call(
            secs(1),
            async {
                polled.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            },
            errors_fail,
        )
        .await;
    assert!(matches!(
        result,
        Err(BreakerError::Open { retry_after, state: BreakerState::Open }) if retry_after == secs(20)
    ));
    assert_eq!(
        polled.load(Ordering::SeqCst),
        0,
        "a rejected call never runs"
    );
    assert_eq!(breaker.status().counts.rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn after_the_reset_timeout_it_turns_half_open() {
    let breaker = breaker(config());
    trip(&breaker);
    let opened_at = breaker.status().opened_at;
    advance(Duration::from_millis(29_999)).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    // Looked at late, but dated when it became due.
    advance(secs(15)).await;
    assert!(breaker.is_call_permitted());
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::HalfOpen);
    assert_eq!(status.opened_at, opened_at);
    assert!((status.time_in_state_seconds - 14.999).abs() < 1e-9);
    let newest = &status.transitions[0];
    assert_eq!(newest.reason, "reset timeout elapsed");
    assert_eq!(
        Some(newest.at),
        opened_at.map(|at| at + chrono::TimeDelta::seconds(30))
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_permitted_probes() {
    let breaker = breaker(BreakerConfig {
        half_open_permits: 3,
        ..config()
    });
    trip(&breaker);
    advance(secs(30)).await;
    let probes: Vec<_> = (0..3).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(probes.iter().all(Permit::is_probe));
    for _ in 0..5 {
        let rejection = breaker.try_acquire().map(|_| ()).unwrap_err();
        assert_eq!(rejection.state, BreakerState::HalfOpen);
        // The earliest a permit can come back: when it would be reclaimed.
        assert_eq!(rejection.retry_after, secs(30));
    }
    assert!(!breaker.is_call_permitted());
    assert_eq!(breaker.status().probes_in_flight, 3);
}

#[tokio::test(start_paused = true)]
async fn it_closes_when_every_probe_succeeds() {
    let breaker = breaker(BreakerConfig {
        half_open_permits: 2,
        ..config()
    });
    trip(&breaker);
    advance(secs(30)).await;
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    first.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // A succeeded permit is not handed out again.
    assert!(breaker.try_acquire().is_err());
    second.record(Outcome::Success);
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.transitions[0].reason, "2 probes succeeded");
    // The failures that opened it are gone, so one more cannot re-open it.
    assert_eq!(
        (status.calls_in_window, status.consecutive_failures),
        (0, 0)
    );
    assert_eq!((status.opened_at, status.next_probe_at), (None, None));
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_it_for_a_fresh_reset_timeout() {
    let breaker = breaker(config());
    trip(&breaker);
    advance(secs(30)).await;
    let result = breaker.call(secs(1), async { Err::<(), _>("502") }, errors_fail);
    assert!(matches!(result.await, Err(BreakerError::Inner("502"))));
    assert_eq!(breaker.state(), BreakerState::Open);
    let rejection = breaker.try_acquire().map(|_| ()).unwrap_err();
    assert_eq!(rejection.retry_after, secs(30));
    assert_eq!(
        transitions(&breaker)[1..],
        [
            (
                BreakerState::Open,
                BreakerState::HalfOpen,
                "reset timeout elapsed".to_string()
            ),
            (
                BreakerState::HalfOpen,
                BreakerState::Open,
                "probe failed".to_string()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_probe_reopens_it() {
    let breaker = breaker(config());
    trip(&breaker);
    advance(secs(30)).await;
    let probe = breaker.try_acquire().unwrap();
    advance(secs(1)).await;
    assert_eq!(probe.record(Outcome::Success), Outcome::Slow);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.transitions()[0].reason, "probe was slow");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_permit_is_given_back() {
    let breaker = breaker(config());
    trip(&breaker);
    advance(secs(30)).await;
    drop(breaker.try_acquire().unwrap());
    assert!(breaker.is_call_permitted());

    // The same through the guard: the caller gives up mid-call.
    let polled = Arc::new(AtomicUsize::new(0));
    let hanging = {
        let polled = Arc::clone(&polled);
        async move {
            polled.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), ()>>().await
        }
    };
    let call = breaker.call(secs(60), hanging, errors_fail);
    let gave_up = tokio::time::timeout(secs(1), call).await;
    assert!(gave_up.is_err());
    assert_eq!(polled.load(Ordering::SeqCst), 1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);

    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_stuck_permit_is_reclaimed_after_the_reset_timeout() {
    let breaker = breaker(config());
    trip(&breaker);
    advance(secs(30)).await;
    let stuck = breaker.try_acquire().unwrap();
    advance(Duration::from_millis(29_999)).await;
    assert!(breaker.try_acquire().is_err());
    advance(Duration::from_millis(1)).await;
    let fresh = breaker.try_acquire().unwrap();
    // The reclaimed probe no longer speaks for the dependency.
    stuck.record(Outcome::Failure);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    fresh.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn calls_admitted_before_it_opened_do_not_count_after() {
    let breaker = breaker(config());
    let late = breaker.try_acquire().unwrap();
    trip(&breaker);
    advance(secs(30)).await;
    // Admitted while closed: neither a probe nor a closed-state call now.
    late.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(breaker.is_call_permitted());
}
