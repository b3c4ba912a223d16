//! The Prometheus recorder behind the `metrics` facade: installed once per
//! process, rendered by `GET /metrics`, with every series described here.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::IntoResponse;

use super::names::*;

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const SECONDS_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The recorder, if one has been installed (metrics are on).
pub fn installed() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

/// The process' recorder (installed on first call). `None` if another
/// recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            super::connections::register();
            metrics::gauge!(BUILD_INFO, LABEL_VERSION => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of HTTP requests, by method, route template and status."
    );
    describe_gauge!(HTTP_ACTIVE_REQUESTS, "HTTP requests being served.");
    describe_gauge!(HTTP_CONNECTIONS_OPEN, "Client connections open.");
    describe_gauge!(
        HTTP_CONNECTIONS_MAX,
        "Most client connections open at once (TALLY_MAX_CONNECTIONS); more wait to be accepted."
    );
    describe_counter!(HTTP_CONNECTIONS_TOTAL, "Client connections accepted.");
    describe_counter!(
        HTTP_CONNECTIONS_TIMED_OUT_TOTAL,
        "Connections closed by a deadline, by reason: header_timeout (a request head not \
         complete in time), idle_timeout (no next request), send_timeout (the client stopped \
         reading)."
    );
    describe_counter!(
        RATE_LIMIT_DECISIONS_TOTAL,
        "Rate-limit decisions by policy, decision and backend."
    );
    describe_counter!(
        RATE_LIMIT_LEASE_SLOTS_GRANTED_TOTAL,
        "Quota slots Redis leased to this instance (decided here without a Redis call), by policy."
    );
    describe_counter!(
        RATE_LIMIT_LEASE_SLOTS_RETURNED_TOTAL,
        "Unused leased slots this instance handed back to Redis once their lease ended, by policy (slots that had aged out of the window already included)."
    );
    describe_counter!(
        RATE_LIMIT_BACKEND_SWITCHES_TOTAL,
        "Times the deciding rate-limit backend changed, by the new backend."
    );
    describe_counter!(
        CACHE_REQUESTS_TOTAL,
        "Summary cache lookups by tier and result."
    );
    describe_counter!(
        CACHE_COALESCED_TOTAL,
        "Requests that waited for another request's summary computation."
    );
    describe_counter!(
        CACHE_REFRESHES_TOTAL,
        "Background refreshes of stale summaries."
    );
    describe_counter!(CACHE_REDIS_ERRORS_TOTAL, "Failed cache calls to Redis.");
    describe_counter!(
        CACHE_STALE_IF_ERROR_TOTAL,
        "Stale summaries served because computing failed."
    );
    describe_gauge!(CACHE_ENTRIES, "Summaries held by the cache, by tier.");
    describe_gauge!(
        CACHE_HIT_RATIO,
        "Share of summary requests answered from the cache, 0 to 1, since start."
    );
    describe_counter!(
        BREAKER_TRANSITIONS_TOTAL,
        "Circuit breaker transitions by breaker, from and to."
    );
    describe_gauge!(
        BREAKER_STATE,
        "1 for each breaker's current state, 0 for the others."
    );
    describe_counter!(
        BREAKER_CALLS_TOTAL,
        "Calls through circuit breakers by breaker and outcome."
    );
    describe_histogram!(
        UPSTREAM_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of calls to the upstream, by outcome."
    );
    describe_histogram!(
        REDIS_COMMAND_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of Redis calls, by command."
    );
    describe_counter!(
        REDIS_ERRORS_TOTAL,
        "Failed or timed-out Redis calls, by command."
    );
    describe_counter!(METRICS_INGESTED_TOTAL, "Data points accepted and stored.");
    describe_gauge!(STORE_POINTS, "Data points held by the store.");
    describe_gauge!(STORE_TYPES, "Metric types held by the store.");
    describe_counter!(
        STORE_POINTS_EVICTED_TOTAL,
        "Data points dropped by the store, by reason: retention, capacity (TALLY_MAX_POINTS) \
         or memory (TALLY_MAX_MEMORY)."
    );
    describe_gauge!(
        STORE_TYPES_MAX,
        "Most metric types the embedded store holds (TALLY_MAX_TYPES)."
    );
    describe_gauge!(
        STORE_MEMORY_BYTES,
        Unit::Bytes,
        "Bytes the embedded store holds, by its own count."
    );
    describe_gauge!(
        STORE_MEMORY_MAX_BYTES,
        Unit::Bytes,
        "The embedded store's memory budget (TALLY_MAX_MEMORY)."
    );
    describe_counter!(
        STORE_WRITES_REFUSED_TOTAL,
        "Writes the store refused whole, by reason (type_limit: past TALLY_MAX_TYPES)."
    );
    describe_counter!(
        TRACE_SPANS_TOTAL,
        "Spans handed to the OTLP exporter by outcome: exported (the collector took them) or \
         export_failed (the export failed or timed out)."
    );
    describe_counter!(
        SIGN_IN_FAILURES_TOTAL,
        "Sign-ins with a wrong token, by surface (admin API or dashboard)."
    );
    describe_counter!(
        SIGN_IN_REFUSED_TOTAL,
        "Sign-ins refused unchecked (429) because the client failed too often, by surface."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which build runs."
    );
}

/// The series of this module with known labels at zero, so rates and alerts see them
/// from the first scrape (the store's are set by the sampler's first, immediate tick).
pub fn register_at_zero() {
    for command in REDIS_COMMANDS {
        metrics::counter!(REDIS_ERRORS_TOTAL, LABEL_COMMAND => command).increment(0);
    }
    metrics::counter!(METRICS_INGESTED_TOTAL).increment(0);
}

/// Every command `redis_call` is given.
const REDIS_COMMANDS: [&str; 3] = ["get", "set", "evalsha"];

/// Records a Redis call's duration, and its failure.
pub fn redis_call(command: &'static str, elapsed: std::time::Duration, ok: bool) {
    metrics::histogram!(REDIS_COMMAND_DURATION_SECONDS, LABEL_COMMAND => command)
        .record(elapsed.as_secs_f64());
    if !ok {
        metrics::counter!(REDIS_ERRORS_TOTAL, LABEL_COMMAND => command).increment(1);
    }
}

/// `GET /metrics`: the Prometheus text exposition.
#[poem::handler]
pub fn endpoint() -> poem::Response {
    match installed() {
        Some(handle) => poem::Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(handle.render()),
        None => crate::http::problem::Problem::status(
            poem::http::StatusCode::NOT_FOUND,
            "metrics are turned off (METRICS_ENABLED=false)",
        )
        .into_response(),
    }
}
