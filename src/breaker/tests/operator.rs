//! Operator actions: forced states hold, reset clears, all are audited.

use tokio::time::advance;

use super::*;

#[tokio::test(start_paused = true)]
async fn forced_open_holds_past_the_reset_timeout() {
    let breaker = breaker(config());
    let entry = breaker.force_open("alice");
    assert_eq!(entry.action, OperatorAction::ForceOpen);
    assert_eq!(
        (entry.from, entry.to),
        (BreakerState::Closed, BreakerState::ForcedOpen)
    );
    advance(secs(3_600)).await;
    let rejection = breaker.try_acquire().map(|_| ()).unwrap_err();
    assert_eq!(rejection.state, BreakerState::ForcedOpen);
    assert_eq!(rejection.retry_after, secs(30), "a hint, nothing scheduled");
    let status = breaker.status();
    assert!(status.forced);
    assert_eq!(status.next_probe_at, None);
    assert_eq!(
        transitions(&breaker),
        vec![(
            BreakerState::Closed,
            BreakerState::ForcedOpen,
            "forced open by alice".to_string()
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn forced_closed_admits_everything_and_never_opens() {
    let breaker = breaker(config());
    trip(&breaker);
    breaker.force_closed("bob");
    record_n(&breaker, Outcome::Failure, 50);
    advance(secs(60)).await;
    record_n(&breaker, Outcome::Timeout, 50);
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::ForcedClosed);
    assert!(status.forced);
    // Still measured, so the operator can see whether to let go.
    assert_eq!(status.failure_rate, 1.0);
    assert_eq!(
        status.consecutive_failures, 105,
        "the run that opened it goes on"
    );
    assert_eq!(status.opened_at, None);
    assert_eq!(
        transitions(&breaker)[1],
        (
            BreakerState::Open,
            BreakerState::ForcedClosed,
            "forced closed by bob".to_string()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn reset_closes_with_counters_cleared() {
    let breaker = breaker(config());
    record_n(&breaker, Outcome::Failure, 4);
    let in_flight = breaker.try_acquire().unwrap();
    breaker.reset("carol");
    // Already closed: audited, no transition, but the counters start over.
    let status = breaker.status();
    assert_eq!(
        (status.calls_in_window, status.consecutive_failures),
        (0, 0)
    );
    assert!(breaker.transitions().is_empty());
    // A call from before the reset does not count after it.
    in_flight.record(Outcome::Failure);
    assert_eq!(breaker.status().consecutive_failures, 0);

    breaker.force_open("alice");
    breaker.reset("carol");
    let status = breaker.status();
    assert_eq!(status.state, BreakerState::Closed);
    assert!(!status.forced);
    assert_eq!(status.transitions[0].reason, "reset by carol");
    // Lifetime counts are not cleared: they mirror the Prometheus counters.
    assert_eq!(status.counts.failure, 5);
    assert_eq!(status.counts.rejected, 0);
}

#[tokio::test(start_paused = true)]
async fn every_action_is_audited_newest_first() {
    let breaker = breaker(config());
    breaker.force_open("alice");
    advance(secs(1)).await;
    breaker.force_open("bob");
    advance(secs(1)).await;
    breaker.force_closed("carol");
    advance(secs(1)).await;
    breaker.reset("dave");
    let log = breaker.audit_log();
    let summary: Vec<_> = log
        .iter()
        .map(|e| (e.action, e.who.as_str(), e.from, e.to))
        .collect();
    use BreakerState::*;
    assert_eq!(
        summary,
        vec![
            (OperatorAction::Reset, "dave", ForcedClosed, Closed),
            (
                OperatorAction::ForceClosed,
                "carol",
                ForcedOpen,
                ForcedClosed
            ),
            (OperatorAction::ForceOpen, "bob", ForcedOpen, ForcedOpen),
            (OperatorAction::ForceOpen, "alice", Closed, ForcedOpen),
        ]
    );
    assert!(log.iter().all(|e| e.breaker == "upstream"));
    assert_eq!(log[0].at - log[3].at, chrono::TimeDelta::seconds(3));
    // bob's action changed nothing, so it is audited but is no transition.
    assert_eq!(breaker.transitions().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn history_and_audit_log_are_bounded() {
    let breaker = breaker(config());
    for i in 0..60 {
        breaker.force_open(&format!("op{i}"));
        breaker.force_closed(&format!("op{i}"));
    }
    let transitions = breaker.transitions();
    assert_eq!(transitions.len(), HISTORY_CAPACITY);
    assert_eq!(transitions[0].seq, 120, "newest kept");
    assert_eq!(transitions[0].reason, "forced closed by op59");
    assert_eq!(breaker.audit_log().len(), HISTORY_CAPACITY);
    assert_eq!(breaker.status().transitions.len(), STATUS_TRANSITIONS);
}
