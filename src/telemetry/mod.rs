//! Logs, Prometheus metrics and the per-request telemetry middleware.

pub mod connections;
mod http;
mod logs;
pub mod metrics;
pub mod names;
pub mod otel;
mod traces;
mod traffic;

pub use http::RequestLog;
pub use traffic::{Traffic, TrafficCounts};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSettings};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: logs (filtered by `RUST_LOG`) and, when an
/// OTLP endpoint is configured, traces (tally's spans at info, whatever the log
/// filter says). Call once, from `main`; keep the guard until the end
/// (dropping it flushes the spans).
pub fn init(settings: &LogSettings) -> Result<otel::TracesGuard, String> {
    let filter = EnvFilter::try_new(&settings.filter)
        .map_err(|e| format!("invalid log filter '{}': {e}", settings.filter))?;
    // Colours only for a person at a terminal, never in files or collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs: BoxedLayer = match settings.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .event_format(logs::WithTraceId::text(tracing_subscriber::fmt::format()))
            .with_filter(filter)
            .boxed(),
        // `.json()` for the JSON field formatter; the line layout is the
        // event format's.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .event_format(logs::WithTraceId::json(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            ))
            .with_filter(filter)
            .boxed(),
    };
    let provider = traces::provider()?;
    let traces: Option<BoxedLayer> = provider.as_ref().map(|p| {
        // For the spans made with `tracing` inside a request (its server span
        // is made by `otel::server_span` and attached as the current OTel
        // context, which they take as their parent). No per-span thread,
        // source-location, target or busy/idle attributes: they cost clock
        // reads and allocations for little use. No context activation either:
        // it would attach each child's context on every poll of its future,
        // and propagation goes through `otel::traceparent`.
        tracing_opentelemetry::layer()
            .with_tracer(otel::tracer(p))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_context_activation(false)
            .with_filter(Targets::new().with_target("tally", LevelFilter::INFO))
            .boxed()
    });
    let layers: Vec<BoxedLayer> = std::iter::once(logs).chain(traces).collect();
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    tracing::dispatcher::get_default(logs::remember);
    if std::env::var_os("TRACES_EXPORTER").is_some() {
        tracing::warn!(
            "TRACES_EXPORTER is no longer read: traces go through the OpenTelemetry SDK's \
             OTLP exporter, configured by the OTEL_* variables (docs/telemetry.md)"
        );
    }
    Ok(otel::guard(provider))
}
