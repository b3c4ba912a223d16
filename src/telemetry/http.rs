//! Per request: a span every log line of the request carries, one log line at
//! debug level, the request-duration histogram (labelled by route template,
//! never the raw path) and the in-flight gauge.

use poem::http::Method;
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result};
use tokio::time::Instant;
use tracing::Instrument;

use super::names::{
    HTTP_ACTIVE_REQUESTS, HTTP_REQUEST_DURATION_SECONDS, LABEL_METHOD, LABEL_ROUTE, LABEL_STATUS,
};

/// Method label: the standard methods, anything else `_OTHER` (a client must
/// not be able to mint label values).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// The matched route template; `unmatched` when no route matched (never the
/// raw path, which a client controls).
fn route_label(route: Option<&str>) -> String {
    match route {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => "unmatched".to_owned(),
    }
}

pub struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestLogEndpoint { inner }
    }
}

pub struct RequestLogEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let span =
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path());
        let started = Instant::now();
        let method = method_label(req.method());
        let active = metrics::gauge!(HTTP_ACTIVE_REQUESTS);
        active.increment(1.0);
        let resp = async move {
            let resp = self.inner.call(req).await.map(IntoResponse::into_response);
            let (status, route) = match &resp {
                Ok(r) => (
                    r.status().as_u16(),
                    r.data::<PathPattern>().map(|p| p.0.clone()),
                ),
                Err(e) => (
                    e.status().as_u16(),
                    e.data::<PathPattern>().map(|p| p.0.clone()),
                ),
            };
            let elapsed = started.elapsed();
            tracing::debug!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "request");
            metrics::histogram!(
                HTTP_REQUEST_DURATION_SECONDS,
                LABEL_METHOD => method,
                LABEL_ROUTE => route_label(route.as_deref()),
                LABEL_STATUS => status.to_string()
            )
            .record(elapsed.as_secs_f64());
            resp
        }
        .instrument(span)
        .await;
        active.decrement(1.0);
        resp
    }
}
