//! OTLP/protobuf encoding of finished spans, written straight from the SDK's
//! `SpanData` into the wire format in one pass.
//!
//! Why not `opentelemetry-proto` + `prost`: that path copies every span into
//! owned message structs (each attribute key and string value formatted into
//! a new `String`), then prost walks each nested message again for every
//! level of length prefix above it, then frees the structs. Here a nested
//! message gets a one-byte length placeholder, its body is written, and the
//! length is filled in after; a body of 128 bytes or more (a span, an event)
//! is moved up by the extra length bytes. The output decodes to what
//! opentelemetry-proto's own conversion builds (`tests.rs` checks it).
//!
//! Field numbers are those of opentelemetry-proto's `trace.proto`,
//! `common.proto`, `resource.proto` and `trace_service.proto`. As prost does,
//! scalar and string fields at their default value are left out, and a oneof
//! member and a present sub-message are always written.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

/// `SpanFlags`: the low byte is the W3C trace flags; these say whether the
/// parent (or a link's target) is remote.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

// ---- wire primitives ----------------------------------------------------

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

#[inline(always)]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline(always)]
fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: u32) {
    put_varint(buf, u64::from(tag << 3 | wire_type));
}

/// Starts a length-delimited field: its key and a one-byte length
/// placeholder. Returns where the body starts, for `end`.
#[inline(always)]
fn begin(buf: &mut Vec<u8>, tag: u32) -> usize {
    put_key(buf, tag, LEN);
    buf.push(0);
    buf.len()
}

/// Ends the field `begin` started: fills in the body's length, moving the
/// body up when the length takes more than one byte.
#[inline(always)]
fn end(buf: &mut Vec<u8>, start: usize) {
    let len = buf.len() - start;
    if len < 0x80 {
        buf[start - 1] = len as u8;
        return;
    }
    let mut prefix = [0u8; 10];
    let mut n = 0;
    let mut v = len;
    while v >= 0x80 {
        prefix[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    prefix[n] = v as u8;
    n += 1;
    buf.resize(buf.len() + n - 1, 0);
    buf.copy_within(start..start + len, start + n - 1);
    buf[start - 1..start - 1 + n].copy_from_slice(&prefix[..n]);
}

#[inline(always)]
fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(buf, tag, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A string or bytes field, left out when empty.
#[inline(always)]
fn put_opt_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(buf, tag, bytes);
    }
}

/// A varint field (uint32, enum), left out when zero.
#[inline(always)]
fn put_opt_varint(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        put_key(buf, tag, VARINT);
        put_varint(buf, v);
    }
}

#[inline(always)]
fn put_opt_fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    if v != 0 {
        put_key(buf, tag, FIXED64);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[inline(always)]
fn put_opt_fixed32(buf: &mut Vec<u8>, tag: u32, v: u32) {
    if v != 0 {
        put_key(buf, tag, FIXED32);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

#[inline(always)]
fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// ---- common.proto: AnyValue, KeyValue -----------------------------------

/// The body of an `AnyValue` (a oneof: always written, even at its default).
#[inline(always)]
fn put_any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(v) => {
            put_key(buf, 2, VARINT);
            buf.push(u8::from(*v));
        }
        Value::I64(v) => {
            put_key(buf, 3, VARINT);
            put_varint(buf, *v as u64);
        }
        Value::F64(v) => {
            put_key(buf, 4, FIXED64);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Value::String(s) => put_bytes(buf, 1, s.as_str().as_bytes()),
        Value::Array(a) => {
            let at = begin(buf, 5);
            put_array(buf, a);
            end(buf, at);
        }
        // A kind this encoder does not know (the enum is non-exhaustive):
        // an empty AnyValue rather than a wrong one.
        _ => {}
    }
}

/// The body of an `ArrayValue`: `values` (1), each an `AnyValue`.
fn put_array(buf: &mut Vec<u8>, array: &Array) {
    fn each<T>(buf: &mut Vec<u8>, values: &[T], value: impl Fn(&T) -> Value) {
        for v in values {
            let at = begin(buf, 1);
            put_any_value(buf, &value(v));
            end(buf, at);
        }
    }
    match array {
        Array::Bool(v) => each(buf, v, |x| Value::Bool(*x)),
        Array::I64(v) => each(buf, v, |x| Value::I64(*x)),
        Array::F64(v) => each(buf, v, |x| Value::F64(*x)),
        Array::String(v) => {
            for s in v {
                let at = begin(buf, 1);
                put_bytes(buf, 1, s.as_str().as_bytes());
                end(buf, at);
            }
        }
        _ => {}
    }
}

/// `KeyValue` as field `tag`: `key` (1), `value` (2, always present).
#[inline(always)]
fn put_key_value(buf: &mut Vec<u8>, tag: u32, kv: &KeyValue) {
    let at = begin(buf, tag);
    put_opt_bytes(buf, 1, kv.key.as_str().as_bytes());
    let value = begin(buf, 2);
    put_any_value(buf, &kv.value);
    end(buf, value);
    end(buf, at);
}

fn put_attributes<'a>(buf: &mut Vec<u8>, tag: u32, kvs: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in kvs {
        put_key_value(buf, tag, kv);
    }
}

// ---- resource and scope -------------------------------------------------

/// A `Resource` message body (attributes (1)), and the `ResourceSpans`
/// schema URL: made once, when the SDK hands the processor its resource.
#[derive(Debug, Default, Clone)]
pub struct EncodedResource {
    body: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub fn new(resource: &Resource) -> Self {
        let mut body = Vec::new();
        for (k, v) in resource.iter() {
            put_key_value(&mut body, 1, &KeyValue::new(k.clone(), v.clone()));
        }
        Self {
            body,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

// ---- trace.proto: Span, Event, Link, Status -----------------------------

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn flags(remote: bool, cx: &SpanContext) -> u32 {
    u32::from(cx.trace_flags().to_u8())
        | FLAG_HAS_IS_REMOTE
        | if remote { FLAG_IS_REMOTE } else { 0 }
}

fn put_event(buf: &mut Vec<u8>, event: &Event) {
    let at = begin(buf, 11);
    put_opt_fixed64(buf, 1, nanos(event.timestamp));
    put_opt_bytes(buf, 2, event.name.as_bytes());
    put_attributes(buf, 3, &event.attributes);
    put_opt_varint(buf, 4, u64::from(event.dropped_attributes_count));
    end(buf, at);
}

fn put_link(buf: &mut Vec<u8>, link: &Link) {
    let cx = &link.span_context;
    let at = begin(buf, 13);
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    put_opt_bytes(buf, 3, cx.trace_state().header().as_bytes());
    put_attributes(buf, 4, &link.attributes);
    put_opt_varint(buf, 5, u64::from(link.dropped_attributes_count));
    put_opt_fixed32(buf, 6, flags(cx.is_remote(), cx));
    end(buf, at);
}

/// `Status` (15): `message` (2, only for errors), `code` (3).
fn put_status(buf: &mut Vec<u8>, status: &Status) {
    let (message, code) = match status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description.as_ref(), 2),
    };
    let at = begin(buf, 15);
    put_opt_bytes(buf, 2, message.as_bytes());
    put_opt_varint(buf, 3, code);
    end(buf, at);
}

/// Writes `span` as a `spans` (2) field of its `ScopeSpans`.
pub fn put_span(buf: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    let at = begin(buf, 2);
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    put_opt_bytes(buf, 3, cx.trace_state().header().as_bytes());
    if span.parent_span_id != SpanId::INVALID {
        put_bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    put_opt_bytes(buf, 5, span.name.as_bytes());
    put_opt_varint(buf, 6, kind(&span.span_kind));
    put_opt_fixed64(buf, 7, nanos(span.start_time));
    put_opt_fixed64(buf, 8, nanos(span.end_time));
    put_attributes(buf, 9, &span.attributes);
    put_opt_varint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        put_event(buf, event);
    }
    put_opt_varint(buf, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        put_link(buf, link);
    }
    put_opt_varint(buf, 14, u64::from(span.links.dropped_count));
    put_status(buf, &span.status);
    put_opt_fixed32(buf, 16, flags(span.parent_span_is_remote, cx));
    end(buf, at);
}

// ---- the request --------------------------------------------------------

/// An `ExportTraceServiceRequest`: one `ResourceSpans` with one `ScopeSpans`
/// per scope, each holding the given runs of `put_span` output in order.
pub fn request(
    resource: &EncodedResource,
    scopes: &[(&InstrumentationScope, Vec<&[u8]>)],
) -> Vec<u8> {
    let spans: usize = scopes
        .iter()
        .flat_map(|(_, runs)| runs.iter().map(|r| r.len()))
        .sum();
    let mut out = Vec::with_capacity(spans + resource.body.len() + 64 * (scopes.len() + 1));
    let resource_spans = begin(&mut out, 1);
    put_bytes(&mut out, 1, &resource.body);
    for (scope, runs) in scopes {
        let scope_spans = begin(&mut out, 2);
        let at = begin(&mut out, 1);
        put_opt_bytes(&mut out, 1, scope.name().as_bytes());
        put_opt_bytes(&mut out, 2, scope.version().unwrap_or_default().as_bytes());
        put_attributes(&mut out, 3, scope.attributes());
        end(&mut out, at);
        for run in runs {
            out.extend_from_slice(run);
        }
        put_opt_bytes(
            &mut out,
            3,
            scope.schema_url().unwrap_or_default().as_bytes(),
        );
        end(&mut out, scope_spans);
    }
    put_opt_bytes(&mut out, 3, resource.schema_url.as_bytes());
    end(&mut out, resource_spans);
    out
}

/// The request for `spans` in one go, grouped by scope in order of first
/// appearance (what the processor does in two steps; for tests and benches).
pub fn spans_request(resource: &EncodedResource, spans: &[SpanData]) -> Vec<u8> {
    let mut groups: Vec<(&InstrumentationScope, Vec<u8>)> = Vec::new();
    for span in spans {
        let scope = &span.instrumentation_scope;
        let i = match groups.iter().position(|(s, _)| *s == scope) {
            Some(i) => i,
            None => {
                groups.push((scope, Vec::with_capacity(spans.len() * 320)));
                groups.len() - 1
            }
        };
        put_span(&mut groups[i].1, span);
    }
    let scopes: Vec<(&InstrumentationScope, Vec<&[u8]>)> = groups
        .iter()
        .map(|(scope, bytes)| (*scope, vec![bytes.as_slice()]))
        .collect();
    request(resource, &scopes)
}
