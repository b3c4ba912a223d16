//! The middleware in front of `/api/*`: picks the policy by method, the client
//! by trusted identity, asks the limiter, and writes the RateLimit headers on
//! every response of a limited route (429 included).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt;
use poem::http::{HeaderName, HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::{ClientKey, Decision, Policy, PolicyName, RateLimiter, client_ip};
use crate::domain::ceil_secs;
use crate::http::problem::Problem;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Passes everything through when built without a limiter (limiting disabled).
/// How an error from the endpoint becomes the response the limit headers go on.
pub type ErrorResponse = fn(poem::Error) -> Response;

pub struct RateLimit {
    limiter: Option<Arc<RateLimiter>>,
    error_response: ErrorResponse,
}

impl RateLimit {
    /// `error_response` renders errors of the endpoint it wraps (the API's problem+json).
    pub fn new(limiter: Option<Arc<RateLimiter>>, error_response: ErrorResponse) -> Self {
        Self {
            limiter,
            error_response,
        }
    }
}

impl<E: Endpoint> Middleware<E> for RateLimit {
    type Output = RateLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RateLimitEndpoint {
            inner,
            limiter: self.limiter.clone(),
            error_response: self.error_response,
        }
    }
}

pub struct RateLimitEndpoint<E> {
    inner: E,
    limiter: Option<Arc<RateLimiter>>,
    error_response: ErrorResponse,
}

/// The API is limited, and the dashboard's summary explorer, which runs the
/// same summaries (store queries, cache writes) for anyone who asks; health,
/// metrics, docs and the rest of the dashboard are not.
fn is_limited(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/dashboard/metrics"
}

fn policy_for(method: &Method) -> PolicyName {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => PolicyName::Read,
        _ => PolicyName::Write,
    }
}

impl<E: Endpoint> Endpoint for RateLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let limiter = match &self.limiter {
            Some(limiter) if is_limited(req.uri().path()) => limiter,
            _ => return self.inner.call(req).await.map(IntoResponse::into_response),
        };
        let name = policy_for(req.method());
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let ip = client_ip(
            peer,
            req.headers(),
            limiter.trusted_proxies(),
            limiter.forwarded_header(),
        );
        let client = ClientKey::of(ip);
        let policy = *limiter.policy(name);
        let decision = limiter.check(name, client).await;
        trace_decision(&policy, &decision);

        let mut resp = match decision {
            Decision::Closed => {
                let mut resp = Problem::unavailable("the rate limiter cannot decide right now")
                    .into_response();
                set(&mut resp, "retry-after", "1".into());
                resp
            }
            Decision::Decided { verdict, .. } if !verdict.allowed => {
                limiter.note_limited(ip, name);
                let retry = ceil_secs(verdict.reset);
                let mut resp = Problem {
                    problem_type: "urn:tally:problem:rate-limited".into(),
                    title: "Too Many Requests".into(),
                    status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
                    detail: format!(
                        "the {} limit of {} requests per {} s is reached; retry in {retry} s",
                        policy.name.as_str(),
                        policy.limit,
                        policy.window.as_secs()
                    ),
                    errors: None,
                }
                .into_response();
                set(&mut resp, "retry-after", retry.to_string());
                resp
            }
            Decision::Decided { .. } | Decision::Open => match self.inner.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => (self.error_response)(err),
            },
        };
        resp.headers_mut()
            .insert(RATELIMIT_POLICY, limiter.policy_header(name));
        if let Decision::Decided { verdict, .. } = decision {
            resp.headers_mut().insert(
                RATELIMIT,
                policy.state_header(verdict.remaining, verdict.reset),
            );
        }
        Ok(resp)
    }
}

/// Records the decision as a `rate_limit` event on the request's server span.
/// An event, not a child span: it is on every `/api` request, and a span costs
/// the hot path and the exporter several times what an event does. The limiter
/// decides first, so the event's time since the span's start is how long the
/// decision took.
fn trace_decision(policy: &Policy, decision: &Decision) {
    if !crate::telemetry::otel::active() {
        return;
    }
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        if !span.is_recording() {
            return;
        }
        let (outcome, backend, remaining) = match decision {
            Decision::Decided { verdict, backend } => (
                if verdict.allowed {
                    "allowed"
                } else {
                    "limited"
                },
                backend.as_str(),
                Some(verdict.remaining),
            ),
            Decision::Open => ("allowed", "none", None),
            Decision::Closed => ("unavailable", "none", None),
        };
        let mut attributes = Vec::with_capacity(4);
        attributes.extend([
            KeyValue::new("rate_limit.policy", policy.name.as_str()),
            KeyValue::new("rate_limit.decision", outcome),
            KeyValue::new("rate_limit.backend", backend),
        ]);
        if let Some(remaining) = remaining {
            attributes.push(KeyValue::new(
                "rate_limit.remaining",
                i64::try_from(remaining).unwrap_or(i64::MAX),
            ));
        }
        span.add_event("rate_limit", attributes);
    });
}

fn set(resp: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, v);
    }
}
