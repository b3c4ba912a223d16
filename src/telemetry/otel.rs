//! Spans and W3C trace-context propagation in and out (the pipeline that exports them
//! is `traces`).
//!
//! The server span of each request is made here, with the OpenTelemetry API
//! itself, and attached as the current OTel context while the request is
//! polled: spans made with `tracing` inside it (cache lookup, store query,
//! upstream call) take it as their parent through `tracing-opentelemetry`,
//! and log lines read its trace id. A `tracing` span per request would cost
//! the registry, every layer and its filters on each request and each poll,
//! also when the request is not sampled.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use poem::http::{HeaderMap, HeaderName};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether spans go to OpenTelemetry (an OTLP endpoint is configured and the
/// layer installed), so the hot path can skip work only traces use.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The tracer of the server spans, once traces are configured.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Flushes and stops the exporter when dropped (at the end of `main`).
pub struct TracesGuard(Option<SdkTracerProvider>);

impl Drop for TracesGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("tally: flushing traces failed: {e}");
            }
        }
    }
}

/// Called once the subscriber with the traces layer is installed.
pub fn guard(provider: Option<SdkTracerProvider>) -> TracesGuard {
    if let Some(p) = &provider {
        let _ = TRACER.set(tracer(p));
    }
    ACTIVE.store(provider.is_some(), Ordering::Relaxed);
    TracesGuard(provider)
}

pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::SdkTracer {
    provider.tracer("tally")
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Starts the server span of a request (named by its method until the route
/// is known), continuing an incoming `traceparent`; the context to attach
/// while the request runs. `None` when traces are off.
pub fn server_span(method: &'static str, path: &str, headers: &HeaderMap) -> Option<Context> {
    let tracer = TRACER.get().filter(|_| active())?;
    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    let parent = if headers.contains_key(&TRACEPARENT) {
        TraceContextPropagator::new().extract(&HeaderExtractor(headers))
    } else {
        Context::new()
    };
    // Room for the two attributes `end_server_span` adds, so they don't
    // reallocate the SDK's vector (it keeps this one).
    let mut attributes = Vec::with_capacity(4);
    attributes.push(KeyValue::new("http.request.method", method));
    attributes.push(KeyValue::new("url.path", path.to_owned()));
    let span = tracer
        .span_builder(method)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    Some(parent.with_span(span))
}

pin_project_lite::pin_project! {
    /// `inner`, polled with `cx` attached as the current context when there
    /// is one. One type whether the request is traced or not: wrapping the
    /// request's future only when it is (`FutureExt::with_context`) made
    /// the middleware's state hold the future twice, and copy it once more
    /// per traced request.
    pub struct InContext<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
    }
}

impl<F> InContext<F> {
    pub fn new(inner: F, cx: Option<Context>) -> Self {
        Self { inner, cx }
    }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.cx.as_ref().map(|cx| cx.clone().attach());
        this.inner.poll(task)
    }
}

/// Names and attributes the server span once the answer is known (an error
/// status only on 5xx), and ends it.
pub fn end_server_span(cx: &Context, name: Cow<'static, str>, route: Value, status: u16) {
    let span = cx.span();
    if span.is_recording() {
        span.update_name(name);
        span.set_attributes([
            KeyValue::new("http.route", route),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ]);
        if status >= 500 {
            span.set_status(Status::error(""));
        }
    }
    span.end();
}

/// The trace id of the request being served on this thread, if it is traced.
pub fn current_trace_id() -> Option<String> {
    Context::map_current(|cx| {
        let id = cx.span().span_context().trace_id();
        (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
    })
}

struct TraceparentInjector(Option<String>);

impl Injector for TraceparentInjector {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

/// The `traceparent` that makes a downstream call a child of `span`
/// (`None` when the span is not recorded).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let mut injector = TraceparentInjector(None);
    TraceContextPropagator::new().inject_context(&span.context(), &mut injector);
    injector.0
}
