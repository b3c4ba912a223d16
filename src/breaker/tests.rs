//! Breaker tests on a paused tokio clock, except the races, which need real
//! threads. Shared helpers live here; one file per part of the life cycle.

mod closed;
mod concurrency;
mod half_open;
mod operator;
mod status;

use std::time::Duration;

use super::*;

/// Small numbers so each test reads on its own; tests override what they test.
fn config() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 5,
        window: Duration::from_secs(10),
        failure_rate: 0.5,
        min_calls: 10,
        slow_call: Duration::from_millis(100),
        reset_timeout: Duration::from_secs(30),
        half_open_permits: 1,
    }
}

fn breaker(config: BreakerConfig) -> Breaker {
    Breaker::new("upstream", config)
}

/// Makes one call through the low-level API with the given outcome.
fn record(breaker: &Breaker, outcome: Outcome) -> Outcome {
    match breaker.try_acquire() {
        Ok(permit) => permit.record(outcome),
        Err(rejection) => panic!("call rejected: {rejection:?}"),
    }
}

fn record_n(breaker: &Breaker, outcome: Outcome, n: usize) {
    for _ in 0..n {
        record(breaker, outcome);
    }
}

/// Opens the breaker through consecutive failures.
fn trip(breaker: &Breaker) {
    while breaker.state() == BreakerState::Closed {
        record(breaker, Outcome::Failure);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

/// Treats every `Err` as a failure, as for a connection error or a 5xx.
fn errors_fail<T, E>(result: &Result<T, E>) -> Outcome {
    if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// (from, to, reason) of each transition, oldest first.
fn transitions(breaker: &Breaker) -> Vec<(BreakerState, BreakerState, String)> {
    let mut all: Vec<_> = breaker
        .transitions()
        .into_iter()
        .map(|t| (t.from, t.to, t.reason))
        .collect();
    all.reverse();
    all
}
