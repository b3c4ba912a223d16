//! Per request: the server span (`otel::server_span`, continuing an incoming
//! `traceparent`; every log line of the request carries its trace id), one
//! log line at debug level, the request-duration histogram (labelled by
//! route template, never the raw path) and the in-flight gauge.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use metrics::{Gauge, Histogram};
use parking_lot::RwLock;

use opentelemetry::trace::FutureExt as _;
use poem::http::Method;
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result};
use tokio::time::Instant;

use super::Traffic;
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
/// raw path, which a client controls). Path parameters read as documented
/// (`/admin/breakers/{name}`), not as poem-openapi numbers them internally.
fn route_label(route: Option<Arc<str>>) -> Arc<str> {
    match route {
        Some(r) if r.contains(":param") => crate::api::route_template(&r).unwrap_or(r),
        Some(r) if !r.is_empty() => r,
        _ => Arc::from("unmatched"),
    }
}

/// Series kept in `RequestMetrics`; past it (not expected: routes are
/// templates and methods and statuses are few) the macro looks each one up.
const MAX_CACHED_SERIES: usize = 1024;

/// Method, route template, status.
type SeriesKey = (&'static str, Arc<str>, u16);

/// The request metrics' handles, registered on first use (after the recorder
/// is installed) and kept, so a request costs atomic adds instead of building
/// a key and looking the series up by name and labels.
#[derive(Default)]
struct RequestMetrics {
    active: OnceLock<Gauge>,
    durations: RwLock<HashMap<SeriesKey, Histogram>>,
}

impl RequestMetrics {
    fn active(&self) -> &Gauge {
        self.active
            .get_or_init(|| metrics::gauge!(HTTP_ACTIVE_REQUESTS))
    }

    fn duration(&self, method: &'static str, route: &Arc<str>, status: u16) -> Histogram {
        let key = (method, Arc::clone(route), status);
        if let Some(h) = self.durations.read().get(&key) {
            return h.clone();
        }
        let h = metrics::histogram!(
            HTTP_REQUEST_DURATION_SECONDS,
            LABEL_METHOD => method,
            LABEL_ROUTE => route.to_string(),
            LABEL_STATUS => status.to_string()
        );
        let mut durations = self.durations.write();
        if durations.len() < MAX_CACHED_SERIES {
            durations.insert(key, h.clone());
        }
        h
    }
}

/// One request in `http_server_active_requests`, until dropped: also when the
/// client goes away and the request's future is dropped before it answers.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Also counts every answer in `Traffic` (for the dashboard).
pub struct RequestLog {
    traffic: Arc<Traffic>,
    metrics: Arc<RequestMetrics>,
}

impl RequestLog {
    pub fn new(traffic: Arc<Traffic>) -> Self {
        Self {
            traffic,
            metrics: Arc::default(),
        }
    }
}

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestLogEndpoint {
            inner,
            traffic: Arc::clone(&self.traffic),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

pub struct RequestLogEndpoint<E> {
    inner: E,
    traffic: Arc<Traffic>,
    metrics: Arc<RequestMetrics>,
}

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let method = method_label(req.method());
        let trace = super::otel::server_span(method, req.uri().path(), req.headers());
        let started = Instant::now();
        let _in_flight = InFlight::enter(self.metrics.active());
        let inner = self.inner.call(req);
        let resp = match &trace {
            Some(cx) => inner.with_context(cx.clone()).await,
            None => inner.await,
        }
        .map(IntoResponse::into_response);
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
        self.traffic.answered(status);
        let route = route_label(route);
        if let Some(cx) = &trace {
            super::otel::end_server_span(cx, method, &route, status);
        }
        {
            // The request's own line carries its trace id like every other.
            let _attached = trace.map(|cx| cx.attach());
            tracing::debug!(
                method,
                route = &*route,
                status,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        }
        self.metrics
            .duration(method, &route, status)
            .record(elapsed.as_secs_f64());
        resp
    }
}
