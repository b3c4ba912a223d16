//! `GET /api/external` (the upstream, through its breaker) and
//! `GET /api/circuit-breaker/status`.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::ApiTags;
use super::breakers::BreakerStatusView;
use crate::breaker::{BreakerError, BreakerState, Outcome};
use crate::domain::ceil_secs;
use crate::http::problem::Problem;
use crate::state::AppState;
use crate::telemetry::{names, otel};
use crate::upstream::BREAKER;
use crate::upstream::UpstreamError;
use tracing::Instrument;

pub struct ExternalApi;

/// The upstream's answer.
#[derive(Debug, Object)]
pub struct ExternalData {
    /// Always `upstream`.
    pub source: String,
    /// What the upstream returned.
    pub data: Value,
}

#[derive(Debug, Object)]
pub struct BreakerList {
    /// Sorted by name.
    pub breakers: Vec<BreakerStatusView>,
}

#[derive(Debug, ApiResponse)]
pub enum ExternalResponse {
    #[oai(status = 200)]
    Ok(Json<ExternalData>),
    /// The upstream failed (connection error, 5xx or 4xx, or an unreadable answer).
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// The breaker is open: the upstream was not called.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(
        Json<Problem>,
        /// Whole seconds until the breaker admits a probe.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The upstream did not answer within `UPSTREAM_TIMEOUT_MS`.
    #[oai(status = 504, content_type = "application/problem+json")]
    GatewayTimeout(Json<Problem>),
    /// The read quota is spent.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
}

#[derive(Debug, ApiResponse)]
pub enum StatusResponse {
    #[oai(status = 200)]
    Ok(Json<BreakerList>),
    /// The read quota is spent.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
}

fn breaker_problem(status: StatusCode, state: BreakerState, detail: String) -> Json<Problem> {
    let slug = match status {
        StatusCode::SERVICE_UNAVAILABLE => "circuit-open",
        StatusCode::GATEWAY_TIMEOUT => "upstream-timeout",
        _ => "upstream-error",
    };
    Json(Problem {
        problem_type: format!("urn:tally:problem:{slug}"),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: format!("{detail} (breaker '{BREAKER}' is {})", state.as_str()),
        errors: None,
    })
}

#[OpenApi(tag = "ApiTags::External")]
impl ExternalApi {
    /// Call the external upstream service
    ///
    /// Through the `upstream` circuit breaker: while it is open the upstream
    /// is not called and the answer is 503 with `Retry-After`.
    #[oai(path = "/api/external", method = "get", operation_id = "get_external")]
    async fn external(
        &self,
        state: Data<&Arc<AppState>>,
        /// W3C trace context, passed on to the upstream.
        traceparent: Header<Option<String>>,
    ) -> ExternalResponse {
        let upstream = &state.upstream;
        let breaker = &upstream.breaker;
        let span = tracing::info_span!(
            "upstream.call",
            otel.kind = "client",
            breaker.name = BREAKER,
            breaker.state = breaker.state().as_str(),
            breaker.permit = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        // The upstream continues this span's trace (or the caller's, when this
        // span is not recorded).
        let propagated = otel::traceparent(&span).or(traceparent.0);
        let call = upstream.client.fetch(propagated.as_deref());
        let started = tokio::time::Instant::now();
        let result = breaker
            .call(upstream.timeout, call, |r| match r {
                Ok(_) => Outcome::Success,
                Err(e) if e.is_client_error() => Outcome::Success,
                Err(UpstreamError::Timeout) => Outcome::Timeout,
                Err(_) => Outcome::Failure,
            })
            .instrument(span.clone())
            .await;
        let now = breaker.state();
        let outcome = match &result {
            Ok(_) => "success",
            Err(BreakerError::Open { .. }) => "rejected",
            Err(BreakerError::Timeout | BreakerError::Inner(UpstreamError::Timeout)) => "timeout",
            Err(BreakerError::Inner(_)) => "failure",
        };
        span.record("outcome", outcome);
        span.record(
            "breaker.permit",
            if outcome == "rejected" {
                "rejected"
            } else {
                "granted"
            },
        );
        match &result {
            Ok(_) => span.record("http.response.status_code", 200),
            Err(BreakerError::Inner(UpstreamError::Status(s))) => {
                span.record("http.response.status_code", *s)
            }
            _ => &span,
        };
        if outcome != "rejected" {
            metrics::histogram!(names::UPSTREAM_REQUEST_DURATION_SECONDS, names::LABEL_OUTCOME => outcome)
                .record(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(data) => ExternalResponse::Ok(Json(ExternalData {
                source: "upstream".into(),
                data,
            })),
            Err(BreakerError::Open { retry_after, state }) => ExternalResponse::Unavailable(
                breaker_problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    state,
                    "the upstream is not being called".into(),
                ),
                ceil_secs(retry_after),
            ),
            Err(BreakerError::Timeout | BreakerError::Inner(UpstreamError::Timeout)) => {
                ExternalResponse::GatewayTimeout(breaker_problem(
                    StatusCode::GATEWAY_TIMEOUT,
                    now,
                    format!("no answer within {} ms", upstream.timeout.as_millis()),
                ))
            }
            Err(BreakerError::Inner(e)) => ExternalResponse::BadGateway(breaker_problem(
                StatusCode::BAD_GATEWAY,
                now,
                describe(&e),
            )),
        }
    }

    /// State of every circuit breaker
    #[oai(
        path = "/api/circuit-breaker/status",
        method = "get",
        operation_id = "get_breaker_status"
    )]
    async fn status(&self, state: Data<&Arc<AppState>>) -> StatusResponse {
        StatusResponse::Ok(Json(BreakerList {
            breakers: state
                .breakers
                .all()
                .iter()
                .map(|b| b.status().into())
                .collect(),
        }))
    }
}

fn describe(e: &UpstreamError) -> String {
    match e {
        UpstreamError::Status(s) => format!("the upstream answered {s}"),
        UpstreamError::Connect(_) => "the upstream cannot be reached".into(),
        UpstreamError::Body(_) => "the upstream's answer is not JSON".into(),
        UpstreamError::Timeout => "the upstream did not answer in time".into(),
    }
}
