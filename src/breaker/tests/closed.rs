//! Closed: what opens the breaker and what must not.

use tokio::time::{advance, sleep};

use super::*;

#[tokio::test(start_paused = true)]
async fn consecutive_failures_open_it() {
    let breaker = breaker(BreakerConfig {
        min_calls: 1_000,
        ..config()
    });
    record_n(&breaker, Outcome::Failure, 4);
    assert_eq!(breaker.state(), BreakerState::Closed);
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        transitions(&breaker),
        vec![(
            BreakerState::Closed,
            BreakerState::Open,
            "5 consecutive failures".to_string()
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_breaks_the_run_of_failures() {
    let breaker = breaker(BreakerConfig {
        min_calls: 1_000,
        ..config()
    });
    for _ in 0..10 {
        record_n(&breaker, Outcome::Failure, 4);
        record(&breaker, Outcome::Success);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.status().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn the_failure_rate_opens_it_only_with_min_calls() {
    // The consecutive rule is off, so only the rate can open it.
    let breaker = breaker(BreakerConfig {
        failure_threshold: 0,
        ..config()
    });
    record_n(&breaker, Outcome::Failure, 9);
    assert_eq!(breaker.state(), BreakerState::Closed, "9 calls < min_calls");
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        transitions(&breaker)[0].2,
        "failure rate 1.00 over 10 calls"
    );
}

#[tokio::test(start_paused = true)]
async fn alternating_failures_open_it_by_rate_not_by_run() {
    let breaker = breaker(config());
    for _ in 0..4 {
        record(&breaker, Outcome::Success);
        record(&breaker, Outcome::Failure);
    }
    record(&breaker, Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed, "4/9 below min_calls");
    record(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        transitions(&breaker)[0].2,
        "failure rate 0.50 over 10 calls"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_it_by_slow_call_rate() {
    let breaker = breaker(config());
    let fast = || async { Ok::<_, ()>(()) };
    let slow = || async {
        sleep(Duration::from_millis(150)).await;
        Ok::<_, ()>(())
    };
    for _ in 0..3 {
        let result = breaker.call(secs(5), fast(), errors_fail).await;
        assert!(result.is_ok());
    }
    for _ in 0..6 {
        let result = breaker.call(secs(5), slow(), errors_fail).await;
        assert!(result.is_ok(), "slow calls still return their answer");
    }
    assert_eq!(breaker.state(), BreakerState::Closed, "9 calls < min_calls");
    let _ = breaker.call(secs(5), slow(), errors_fail).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        transitions(&breaker)[0].2,
        "slow-call rate 0.70 over 10 calls"
    );
    let counts = breaker.status().counts;
    assert_eq!((counts.success, counts.slow, counts.failure), (3, 7, 0));
}

#[tokio::test(start_paused = true)]
async fn a_late_success_through_the_permit_counts_as_slow() {
    let breaker = breaker(config());
    let permit = breaker.try_acquire().map_err(|_| ()).unwrap();
    advance(Duration::from_millis(101)).await;
    assert_eq!(permit.record(Outcome::Success), Outcome::Slow);
    let permit = breaker.try_acquire().map_err(|_| ()).unwrap();
    advance(Duration::from_millis(100)).await;
    assert_eq!(permit.record(Outcome::Success), Outcome::Success);
}

#[tokio::test(start_paused = true)]
async fn client_errors_classified_as_success_do_not_count() {
    let breaker = breaker(config());
    // A 4xx means the dependency answered: the caller's classifier says so.
    let classify = |result: &Result<(), u16>| match result {
        Err(status) if *status >= 500 => Outcome::Failure,
        _ => Outcome::Success,
    };
    for _ in 0..20 {
        let result = breaker.call(secs(1), async { Err(404) }, classify).await;
        assert!(matches!(result, Err(BreakerError::Inner(404))));
    }
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.failure_rate, 0.0);
    assert_eq!(status.counts.success, 20);
    let result = breaker.call(secs(1), async { Err(503) }, classify).await;
    assert!(matches!(result, Err(BreakerError::Inner(503))));
    assert_eq!(breaker.status().counts.failure, 1);
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_failures() {
    let breaker = breaker(config());
    for _ in 0..5 {
        let hang = async {
            sleep(secs(60)).await;
            Ok::<_, ()>(())
        };
        let result = breaker
            .call(Duration::from_millis(50), hang, errors_fail)
            .await;
        assert!(matches!(result, Err(BreakerError::Timeout)));
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.status().counts.timeout, 5);
}

#[tokio::test(start_paused = true)]
async fn old_failures_slide_out_of_the_window() {
    let config = BreakerConfig {
        failure_threshold: 0,
        ..config()
    };
    // Same calls, with and without the window moving on in between.
    let aged = breaker(config.clone());
    let fresh = breaker(config);
    record_n(&aged, Outcome::Failure, 9);
    record_n(&fresh, Outcome::Failure, 9);
    advance(secs(5)).await;
    record(&fresh, Outcome::Failure);
    assert_eq!(fresh.state(), BreakerState::Open, "all 10 inside 10 s");

    advance(secs(6)).await;
    assert_eq!(aged.status().calls_in_window, 0);
    record(&aged, Outcome::Failure);
    let status = aged.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!((status.calls_in_window, status.failures_in_window), (1, 1));
}
