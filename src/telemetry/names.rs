//! Every metric and label name, in one place. Units in the name, `_total` on counters.

pub const RATE_LIMIT_DECISIONS_TOTAL: &str = "tally_rate_limit_decisions_total";
pub const RATE_LIMIT_BACKEND_SWITCHES_TOTAL: &str = "tally_rate_limit_backend_switches_total";
pub const RATE_LIMIT_LEASE_SLOTS_GRANTED_TOTAL: &str = "tally_rate_limit_lease_slots_granted_total";
pub const RATE_LIMIT_LEASE_SLOTS_RETURNED_TOTAL: &str =
    "tally_rate_limit_lease_slots_returned_total";

pub const LABEL_POLICY: &str = "policy";
pub const LABEL_DECISION: &str = "decision";
pub const LABEL_BACKEND: &str = "backend";

pub const CACHE_REQUESTS_TOTAL: &str = "tally_cache_requests_total";
pub const CACHE_COALESCED_TOTAL: &str = "tally_cache_coalesced_waiters_total";
pub const CACHE_REFRESHES_TOTAL: &str = "tally_cache_refreshes_total";
pub const CACHE_REDIS_ERRORS_TOTAL: &str = "tally_cache_redis_errors_total";
pub const CACHE_STALE_IF_ERROR_TOTAL: &str = "tally_cache_stale_if_error_total";

pub const LABEL_TIER: &str = "tier";
pub const LABEL_RESULT: &str = "result";

pub const BREAKER_TRANSITIONS_TOTAL: &str = "tally_breaker_transitions_total";
pub const BREAKER_STATE: &str = "tally_breaker_state";
pub const BREAKER_CALLS_TOTAL: &str = "tally_breaker_calls_total";

pub const LABEL_BREAKER: &str = "breaker";
pub const LABEL_FROM: &str = "from";
pub const LABEL_TO: &str = "to";
pub const LABEL_STATE: &str = "state";
pub const LABEL_OUTCOME: &str = "outcome";

pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_server_request_duration_seconds";
pub const HTTP_ACTIVE_REQUESTS: &str = "http_server_active_requests";
pub const HTTP_CONNECTIONS_OPEN: &str = "tally_http_connections_open";
pub const HTTP_CONNECTIONS_MAX: &str = "tally_http_connections_max";
pub const HTTP_CONNECTIONS_TOTAL: &str = "tally_http_connections_total";
pub const HTTP_CONNECTIONS_TIMED_OUT_TOTAL: &str = "tally_http_connections_timed_out_total";
pub const LABEL_METHOD: &str = "method";
pub const LABEL_ROUTE: &str = "route";
pub const LABEL_STATUS: &str = "status";

pub const METRICS_INGESTED_TOTAL: &str = "tally_metrics_ingested_total";
pub const STORE_POINTS: &str = "tally_store_points";
pub const STORE_TYPES: &str = "tally_store_types";
pub const STORE_POINTS_EVICTED_TOTAL: &str = "tally_store_points_evicted_total";
pub const STORE_TYPES_MAX: &str = "tally_store_types_max";
pub const STORE_MEMORY_BYTES: &str = "tally_store_memory_bytes";
pub const STORE_MEMORY_MAX_BYTES: &str = "tally_store_memory_max_bytes";
pub const STORE_WRITES_REFUSED_TOTAL: &str = "tally_store_writes_refused_total";
pub const LABEL_REASON: &str = "reason";

pub const CACHE_ENTRIES: &str = "tally_cache_entries";
pub const CACHE_HIT_RATIO: &str = "tally_cache_hit_ratio";

pub const UPSTREAM_REQUEST_DURATION_SECONDS: &str = "tally_upstream_request_duration_seconds";

pub const REDIS_COMMAND_DURATION_SECONDS: &str = "tally_redis_command_duration_seconds";
pub const REDIS_ERRORS_TOTAL: &str = "tally_redis_errors_total";
pub const LABEL_COMMAND: &str = "command";

pub const TRACE_SPANS_TOTAL: &str = "tally_trace_spans_total";

pub const BUILD_INFO: &str = "tally_build_info";
pub const LABEL_VERSION: &str = "version";

pub const SIGN_IN_FAILURES_TOTAL: &str = "tally_sign_in_failures_total";
pub const SIGN_IN_REFUSED_TOTAL: &str = "tally_sign_in_refused_total";
pub const LABEL_SURFACE: &str = "surface";
