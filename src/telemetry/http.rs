//! Per request: the server span (`otel::server_span`, continuing an incoming
//! `traceparent`; every log line of the request carries its trace id), one
//! log line at debug level, the request-duration histogram (labelled by
//! route template, never the raw path) and the in-flight gauge.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use metrics::{Gauge, Histogram};
use parking_lot::RwLock;

use opentelemetry::Value;
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
fn route_label(route: Option<Arc<str>>, template: RouteTemplate) -> Arc<str> {
    match route {
        Some(r) if r.contains(":param") => template(&r).unwrap_or(r),
        Some(r) if !r.is_empty() => r,
        _ => Arc::from("unmatched"),
    }
}

/// Kinds of answer kept in `RequestMetrics`; past it (not expected: routes
/// are templates and methods and statuses are few) each one is looked up
/// and named per request.
const MAX_CACHED_SERIES: usize = 1024;

/// What one kind of answer (method, route template, status) is recorded
/// under: its duration series, and the name and `http.route` of its span as
/// `'static` strings, so a request costs no allocation and takes no
/// reference count on a route string every request shares.
struct Answered {
    duration: Histogram,
    span_name: &'static str,
    route: &'static str,
}

/// Route template -> (method, status, what to record) for each seen.
type Seen = HashMap<Arc<str>, Vec<(&'static str, u16, &'static Answered)>>;

/// The request metrics' handles, registered on first use (after the recorder
/// is installed) and kept, so a request costs atomic adds instead of building
/// a key and looking the series up by name and labels.
#[derive(Default)]
struct RequestMetrics {
    active: OnceLock<Gauge>,
    answers: RwLock<(Seen, usize)>,
}

impl RequestMetrics {
    fn active(&self) -> &Gauge {
        self.active
            .get_or_init(|| metrics::gauge!(HTTP_ACTIVE_REQUESTS))
    }

    fn histogram(method: &'static str, route: &str, status: u16) -> Histogram {
        metrics::histogram!(
            HTTP_REQUEST_DURATION_SECONDS,
            LABEL_METHOD => method,
            LABEL_ROUTE => route.to_owned(),
            LABEL_STATUS => status.to_string()
        )
    }

    /// `None` past `MAX_CACHED_SERIES`.
    fn answered(
        &self,
        method: &'static str,
        route: &Arc<str>,
        status: u16,
    ) -> Option<&'static Answered> {
        let find = |seen: &Seen| {
            seen.get(&**route)?
                .iter()
                .find(|(m, s, _)| *m == method && *s == status)
                .map(|&(_, _, a)| a)
        };
        if let Some(a) = find(&self.answers.read().0) {
            return Some(a);
        }
        let mut answers = self.answers.write();
        if let Some(a) = find(&answers.0) {
            return Some(a);
        }
        if answers.1 >= MAX_CACHED_SERIES {
            return None;
        }
        // Leaked: at most MAX_CACHED_SERIES of them per server (one
        // `RequestLog`), for the process's life.
        let answered: &'static Answered = Box::leak(Box::new(Answered {
            duration: Self::histogram(method, route, status),
            span_name: String::leak(format!("{method} {route}")),
            route: String::leak(route.to_string()),
        }));
        answers.1 += 1;
        answers
            .0
            .entry(Arc::clone(route))
            .or_default()
            .push((method, status, answered));
        Some(answered)
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

/// The documented template of a route pattern with numbered parameters
/// (`/admin/breakers/:param0` -> `/admin/breakers/{name}`), if known.
pub type RouteTemplate = fn(&str) -> Option<Arc<str>>;

/// Also counts every answer in `Traffic` (for the dashboard).
pub struct RequestLog {
    traffic: Arc<Traffic>,
    metrics: Arc<RequestMetrics>,
    template: RouteTemplate,
}

impl RequestLog {
    /// `template` names routes as the API documents them.
    pub fn new(traffic: Arc<Traffic>, template: RouteTemplate) -> Self {
        Self {
            traffic,
            metrics: Arc::default(),
            template,
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
            template: self.template,
        }
    }
}

pub struct RequestLogEndpoint<E> {
    inner: E,
    traffic: Arc<Traffic>,
    metrics: Arc<RequestMetrics>,
    template: RouteTemplate,
}

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let method = method_label(req.method());
        let trace = super::otel::server_span(method, req.uri().path(), req.headers());
        let started = Instant::now();
        let _in_flight = InFlight::enter(self.metrics.active());
        let resp = super::otel::InContext::new(self.inner.call(req), trace.clone())
            .await
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
        let route = route_label(route, self.template);
        let answered = self.metrics.answered(method, &route, status);
        if let Some(cx) = &trace {
            let (name, route_value) = match answered {
                Some(a) => (Cow::Borrowed(a.span_name), Value::from(a.route)),
                None => (
                    Cow::Owned(format!("{method} {route}")),
                    Value::from(Arc::clone(&route)),
                ),
            };
            super::otel::end_server_span(cx, name, route_value, status);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
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
        match answered {
            Some(a) => a.duration.record(elapsed.as_secs_f64()),
            None => RequestMetrics::histogram(method, &route, status).record(elapsed.as_secs_f64()),
        }
        resp
    }
}
