//! One log line per request at debug level, inside a span that every log line
//! of the request carries.

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tokio::time::Instant;
use tracing::Instrument;

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
        async move {
            let resp = self.inner.call(req).await.map(IntoResponse::into_response);
            let status = match &resp {
                Ok(r) => r.status().as_u16(),
                Err(e) => e.status().as_u16(),
            };
            tracing::debug!(
                status,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "request"
            );
            resp
        }
        .instrument(span)
        .await
    }
}
