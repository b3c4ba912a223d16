//! OpenTelemetry traces over OTLP/HTTP, configured by the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), and
//! W3C trace-context propagation in and out. With no endpoint set nothing is
//! exported and nothing is said about it.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use poem::http::HeaderMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Whether spans go to OpenTelemetry (an OTLP endpoint is configured and the
/// layer installed), so the hot path can skip work only traces use.
static ACTIVE: AtomicBool = AtomicBool::new(false);

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

/// The tracer provider, if an OTLP endpoint is configured.
pub fn provider() -> Result<Option<SdkTracerProvider>, String> {
    let configured = ENDPOINT_VARS
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    if !configured {
        return Ok(None);
    }
    match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Err(_) | Ok("http/protobuf") => {}
        Ok(other) => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported; use http/protobuf"
            ));
        }
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("tally");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    Ok(Some(provider))
}

/// Called once the subscriber with the traces layer is installed.
pub fn guard(provider: Option<SdkTracerProvider>) -> TracesGuard {
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

/// Continues the caller's trace: makes `span` a child of an incoming `traceparent`.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
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

/// Renames `span` once its name is known (e.g. `GET /api/metrics` after routing).
pub fn rename(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt;
    span.context().span().update_name(name);
}
