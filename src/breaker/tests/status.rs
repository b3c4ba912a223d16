//! The status snapshot, its wall-clock times, and the registry.

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::time::advance;

use super::*;

#[tokio::test(start_paused = true)]
async fn wall_clock_times_follow_the_paused_clock() {
    let breaker = breaker(config());
    let created = breaker.status();
    advance(secs(7)).await;
    trip(&breaker);
    let status = breaker.status();
    let opened_at = status.opened_at.unwrap();
    assert_eq!(status.transitions[0].at, opened_at);
    assert_eq!(
        status.next_probe_at,
        Some(opened_at + TimeDelta::seconds(30))
    );
    advance(secs(4)).await;
    let status = breaker.status();
    assert_eq!(status.time_in_state_seconds, 4.0);
    // The anchor is fixed at creation, so times are exact offsets from it.
    let later = breaker.force_open("alice").at;
    assert_eq!(later - opened_at, TimeDelta::seconds(4));
    assert_eq!(created.opened_at, None);
}

#[tokio::test(start_paused = true)]
async fn the_status_serialises_flat() {
    let breaker = breaker(config());
    record_n(&breaker, Outcome::Success, 3);
    record(&breaker, Outcome::Failure);
    let json = serde_json::to_value(breaker.status()).unwrap();
    assert_eq!(json["name"], "upstream");
    assert_eq!(json["state"], "closed");
    assert_eq!(json["forced"], false);
    assert_eq!(json["failure_rate"], 0.25);
    assert_eq!(json["calls_in_window"], 4);
    assert_eq!(json["counts"]["success"], 3);
    assert_eq!(json["opened_at"], serde_json::Value::Null);
    assert_eq!(json["config"]["window_ms"], 10_000);
    assert_eq!(json["config"]["half_open_permits"], 1);

    trip(&breaker);
    advance(secs(30)).await;
    let json = serde_json::to_value(breaker.status()).unwrap();
    assert_eq!(json["state"], "half_open");
    assert_eq!(json["transitions"][0]["to"], "half_open");
    assert!(json["opened_at"].is_string());
}

#[test]
fn defaults_match_the_issue() {
    let config = BreakerConfig::default();
    assert_eq!(config.failure_threshold, 5);
    assert_eq!(config.window, secs(30));
    assert_eq!(config.failure_rate, 0.5);
    assert_eq!(config.min_calls, 10);
    assert_eq!(config.slow_call, Duration::from_millis(1_000));
    assert_eq!(config.reset_timeout, secs(30));
    assert_eq!(config.half_open_permits, 1);
}

#[tokio::test(start_paused = true)]
async fn the_registry_shares_one_breaker_per_name() {
    let breakers = Breakers::new();
    let upstream = breakers.get_or_create("upstream", config());
    let again = breakers.get_or_create(
        "upstream",
        BreakerConfig {
            failure_threshold: 1,
            ..config()
        },
    );
    assert!(Arc::ptr_eq(&upstream, &again));
    assert_eq!(again.config().failure_threshold, 5, "first config wins");
    breakers.get_or_create("redis", config());
    breakers.get_or_create("database", config());
    let names: Vec<_> = breakers
        .all()
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    assert_eq!(names, ["database", "redis", "upstream"]);
    assert!(breakers.get("nope").is_none());

    upstream.force_open("alice");
    advance(secs(1)).await;
    breakers.get("redis").unwrap().force_closed("bob");
    let log = breakers.audit_log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].breaker.as_str(), log[0].who.as_str()),
        ("redis", "bob")
    );
}
