//! Error responses shared by the operations, so the spec lists each status an
//! operation can really return (problem+json bodies throughout).

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

use super::problem::Problem;

// The 429 variants are built by the rate-limit middleware, not by handlers;
// they are declared here so the spec lists what the operations really return.

/// Errors of operations that take a JSON body.
#[allow(dead_code)]
#[derive(Debug, ApiResponse)]
pub enum WriteError {
    /// Malformed JSON or an empty body.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// The body is larger than the configured limit.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The `Content-Type` is missing or is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Well-formed input that breaks a rule; `errors` names each bad field.
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
    pub fn invalid(errors: Vec<super::problem::FieldError>) -> Self {
        Self::Unprocessable(Json(Problem::validation(errors)))
    }
}

impl ReadError {
    pub fn invalid(errors: Vec<super::problem::FieldError>) -> Self {
        Self::Unprocessable(Json(Problem::validation(errors)))
    }
}

impl From<crate::store::StoreError> for WriteError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::warn!(error = %err, "store refused a write");
        Self::Unavailable(
            Json(Problem::unavailable(err.to_string())),
            STORE_RETRY_AFTER,
        )
    }
}

impl From<crate::store::StoreError> for ReadError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::warn!(error = %err, "store refused a read");
        Self::Unavailable(
            Json(Problem::unavailable(err.to_string())),
            STORE_RETRY_AFTER,
        )
    }
}
