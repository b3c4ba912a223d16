//! Every counter and gauge with a known label set is in `/metrics` from the first scrape,
//! at zero, before any event: `rate()` and absent-series alerts work from the start.
//!
//! Its own test binary (one process, one application): in the API tests' binary other
//! applications would have registered the series already.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

#[tokio::test]
async fn known_series_are_exported_at_zero_from_the_first_scrape() {
    let app = helpers::spawn_app().await;
    let scrape = app.get("/metrics").await.text().await.expect("metrics");
    let value = |series: &str| -> Option<f64> {
        scrape
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    for series in [
        "tally_cache_coalesced_waiters_total",
        "tally_cache_refreshes_total",
        "tally_cache_redis_errors_total",
        "tally_cache_stale_if_error_total",
        r#"tally_cache_requests_total{tier="redis",result="stale"}"#,
        r#"tally_rate_limit_decisions_total{policy="write",decision="limited",backend="redis"}"#,
        r#"tally_rate_limit_decisions_total{policy="read",decision="unavailable",backend="none"}"#,
        r#"tally_rate_limit_backend_switches_total{backend="local"}"#,
        r#"tally_rate_limit_lease_slots_granted_total{policy="read"}"#,
        r#"tally_breaker_transitions_total{breaker="upstream",from="closed",to="open"}"#,
        r#"tally_breaker_transitions_total{breaker="redis",from="half_open",to="closed"}"#,
        r#"tally_breaker_calls_total{breaker="upstream",outcome="timeout"}"#,
        r#"tally_redis_errors_total{command="evalsha"}"#,
        "tally_metrics_ingested_total",
        r#"tally_sign_in_refused_total{surface="admin"}"#,
        r#"tally_http_connections_timed_out_total{reason="send_timeout"}"#,
    ] {
        assert_eq!(value(series), Some(0.0), "{series} missing or not zero");
    }
    assert_eq!(
        value(r#"tally_breaker_state{breaker="upstream",state="closed"}"#),
        Some(1.0)
    );
}
