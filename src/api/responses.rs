//! Error responses shared by the operations, so the spec lists each status an
//! operation can really return (problem+json bodies throughout).

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

use poem::http::StatusCode;

use crate::domain::MetricType;
use crate::http::problem::{FieldError, Problem};
use crate::store::StoreError;

// The 429 variants are built by the rate-limit middleware, not by handlers;
// they are declared here so the spec lists what the operations really return.

/// Errors of operations that take a JSON body.
#[allow(dead_code)]
#[derive(Debug, ApiResponse)]
pub enum WriteError {
    /// Malformed JSON, an empty body, or a malformed `Idempotency-Key`.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The body is larger than the configured limit.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The `Content-Type` is missing or is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Nothing was stored, for one of two reasons the problem `type` tells apart.
    /// `urn:tally:problem:type-limit`: the write would create a metric type past the
    /// store's cap (`TALLY_MAX_TYPES`); `errors` names the first item of each new type. Do
    /// not retry the same write: it is refused until types leave the store (their points
    /// evicted by retention or the budget); writes to types the store holds go on.
    /// `urn:tally:problem:idempotency-key-in-use`: a request with the same
    /// `Idempotency-Key` is still being stored; retry once it has been answered.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Well-formed input that breaks a rule; `errors` names each bad field. Also the
    /// `Idempotency-Key` of an earlier, different request
    /// (`urn:tally:problem:idempotency-key-reused`); nothing was stored.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// The client's write quota is spent (`RateLimit-Policy` / `RateLimit` say
    /// how much and until when); nothing was stored.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Whole seconds until the oldest counted request leaves the window.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The store (or, in `closed` fail mode, the rate limiter) cannot take
    /// writes right now; nothing was stored.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(
        Json<Problem>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

/// Errors of operations that only read.
#[allow(dead_code)]
#[derive(Debug, ApiResponse)]
pub enum ReadError {
    /// A query parameter could not be parsed, or a required one is missing.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// A query parameter breaks a rule; `errors` names it.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// The client's read quota is spent (`RateLimit-Policy` / `RateLimit` say
    /// how much and until when).
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Whole seconds until the oldest counted request leaves the window.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The store (or, in `closed` fail mode, the rate limiter) cannot answer right now.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(
        Json<Problem>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

/// `Retry-After` when the store cannot answer: its breaker probes this often.
pub const STORE_RETRY_AFTER: u64 = 2;

impl WriteError {
    pub fn invalid(errors: Vec<crate::http::problem::FieldError>) -> Self {
        Self::Unprocessable(Json(Problem::validation(errors)))
    }
}

impl ReadError {
    pub fn invalid(errors: Vec<crate::http::problem::FieldError>) -> Self {
        Self::Unprocessable(Json(Problem::validation(errors)))
    }

    /// A query parameter that cannot be parsed at all (400), each one named.
    pub fn unparseable(errors: Vec<crate::http::problem::FieldError>) -> Self {
        Self::BadRequest(Json(Problem {
            problem_type: "urn:tally:problem:unparseable-parameter".into(),
            title: "Unparseable parameter".into(),
            status: StatusCode::BAD_REQUEST.as_u16(),
            ..Problem::validation(errors)
        }))
    }
}

impl WriteError {
    /// The store's refusal of a write: a type-limit refusal names the first item of each
    /// new type, by the `index` that `find` gives (`None` for a single metric).
    pub fn from_store(err: StoreError, find: impl Fn(&MetricType) -> Option<usize>) -> Self {
        let StoreError::TypeLimit {
            limit,
            held,
            new_types,
        } = &err
        else {
            return err.into();
        };
        tracing::warn!(error = %err, "a write would pass the type cap");
        let errors = new_types
            .iter()
            .take(MAX_NAMED_TYPES)
            .map(|name| {
                let error = FieldError::new(
                    "type",
                    format!("'{name}' would be a new type past the cap of {limit}"),
                );
                match find(name) {
                    Some(index) => error.at(index),
                    None => error,
                }
            })
            .collect();
        Self::Conflict(Json(Problem {
            problem_type: TYPE_LIMIT_PROBLEM.into(),
            title: "Too many metric types".into(),
            status: StatusCode::CONFLICT.as_u16(),
            detail: format!(
                "the store holds {held} of at most {limit} metric types (TALLY_MAX_TYPES) and \
                 this write would add {} more; nothing was stored. Writes to existing types \
                 go on; new types fit again once others leave retention",
                new_types.len()
            ),
            errors: Some(errors),
        }))
    }
}

/// The problem `type` of a write refused by the type cap.
pub const TYPE_LIMIT_PROBLEM: &str = "urn:tally:problem:type-limit";
/// New types named in a type-limit refusal (the detail counts them all).
const MAX_NAMED_TYPES: usize = 100;

impl From<StoreError> for WriteError {
    fn from(err: StoreError) -> Self {
        tracing::warn!(error = %err, "store refused a write");
        Self::Unavailable(
            Json(Problem::unavailable(err.to_string())),
            STORE_RETRY_AFTER,
        )
    }
}

impl From<StoreError> for ReadError {
    fn from(err: StoreError) -> Self {
        tracing::warn!(error = %err, "store refused a read");
        Self::Unavailable(
            Json(Problem::unavailable(err.to_string())),
            STORE_RETRY_AFTER,
        )
    }
}
