//! Log lines with the trace id. Inside a traced request every line carries
//! `trace_id`, read from the request's OpenTelemetry context when the line is
//! written: a request that logs nothing pays nothing for it (no field to
//! format and record on every span, no extra attribute in every export).

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use opentelemetry::trace::{TraceContextExt, TraceId};
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The installed subscriber, to ask the OpenTelemetry layer for a span's
/// context while a line is being formatted (inside an event, the thread's
/// default dispatcher is not reachable).
static DISPATCH: OnceLock<WeakDispatch> = OnceLock::new();

/// Call once the global subscriber is installed.
pub(super) fn remember(dispatch: &Dispatch) {
    let _ = DISPATCH.set(dispatch.downgrade());
}

/// Wraps a line format (text or JSON) and adds `trace_id` to lines written
/// inside a span that OpenTelemetry traces.
pub(super) struct WithTraceId<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceId<F> {
    pub(super) fn text(inner: F) -> Self {
        Self { inner, json: false }
    }

    pub(super) fn json(inner: F) -> Self {
        Self { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(trace_id) = trace_id(event) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&add_trace_id(&line, &trace_id, self.json))
    }
}

/// The trace id of the request the event belongs to: the server span attached
/// as the current OTel context while the request is polled, else (in a task a
/// request spawned, e.g. a cache computation) the innermost `tracing` span
/// around the event that OpenTelemetry traces. `None` outside requests, or
/// with tracing off. Spans are looked up in the registry, not through this
/// layer's filter: they count even when the log filter shows only warnings.
fn trace_id(event: &Event<'_>) -> Option<String> {
    if let Some(id) = super::otel::current_trace_id() {
        return Some(id);
    }
    let dispatch = DISPATCH.get()?.upgrade()?;
    let registry = dispatch.downcast_ref::<Registry>()?;
    let id = match event.parent() {
        Some(id) => id.clone(),
        None if event.is_contextual() => dispatch.current_span().id()?.clone(),
        None => return None,
    };
    registry.span(&id)?.scope().find_map(|span| {
        let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
        let id = cx.span().span_context().trace_id();
        (id != TraceId::INVALID).then(|| id.to_string())
    })
}

/// JSON: the first member of the object. Text: the last field of the line.
fn add_trace_id(line: &str, trace_id: &str, json: bool) -> String {
    let mut out = String::with_capacity(line.len() + trace_id.len() + 16);
    match line.strip_prefix('{') {
        Some(rest) if json => {
            let _ = write!(out, "{{\"trace_id\":\"{trace_id}\"");
            if !rest.trim_start().starts_with('}') {
                out.push(',');
            }
            out.push_str(rest);
        }
        _ => {
            let body = line.strip_suffix('\n').unwrap_or(line);
            let _ = writeln!(out, "{body} trace_id={trace_id}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::add_trace_id;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn json_lines_get_the_trace_id_as_their_first_member() {
        let line = "{\"timestamp\":\"t\",\"level\":\"INFO\",\"message\":\"hi\"}\n";
        let out = add_trace_id(line, ID, true);
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).expect("still JSON");
        assert_eq!(v["trace_id"], ID);
        assert_eq!(v["message"], "hi");
        assert!(out.ends_with("}\n"));
        let empty: serde_json::Value =
            serde_json::from_str(&add_trace_id("{}", ID, true)).expect("still JSON");
        assert_eq!(empty["trace_id"], ID);
    }

    #[test]
    fn text_lines_end_with_the_trace_id() {
        let out = add_trace_id("2026-11-30T00:00:00Z  INFO tally: hi\n", ID, false);
        assert_eq!(
            out,
            format!("2026-11-30T00:00:00Z  INFO tally: hi trace_id={ID}\n")
        );
    }
}
