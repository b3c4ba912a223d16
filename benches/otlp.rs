//! OTLP span encoding: tally's encoder against opentelemetry-proto's conversion
//! plus prost (what opentelemetry-otlp does), on a batch of spans shaped like
//! the service's own (a server span with four attributes and a `rate_limit`
//! event with four). Each routine consumes its batch, as an export does.
//!
//! Run with `cargo bench --bench otlp`.

use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message;
use tally::telemetry::otlp::encode::{EncodedResource, spans_request};

const BATCH: usize = 2048;

fn span(i: u64, scope: &InstrumentationScope) -> SpanData {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_796_000_000_000_000_000 + i * 1000);
    let mut events = SpanEvents::default();
    events.events.push(Event::new(
        "rate_limit",
        start + Duration::from_micros(3),
        vec![
            KeyValue::new("rate_limit.policy", "write"),
            KeyValue::new("rate_limit.decision", "allowed"),
            KeyValue::new("rate_limit.backend", "redis"),
            KeyValue::new("rate_limit.remaining", 999_999_i64),
        ],
        0,
    ));
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(i) << 64 | 0x4bf9_2f35),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "POST /api/metrics".into(),
        start_time: start,
        end_time: start + Duration::from_micros(40),
        attributes: vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.path", "/api/metrics".to_owned()),
            KeyValue::new("http.route", "/api/metrics"),
            KeyValue::new("http.response.status_code", 201_i64),
        ],
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

fn encoding(c: &mut Criterion) {
    let scope = InstrumentationScope::builder("tally").build();
    let spans: Vec<SpanData> = (0..BATCH as u64).map(|i| span(i, &scope)).collect();
    let resource = Resource::builder().with_service_name("tally").build();
    let ours = EncodedResource::new(&resource);
    let reference = ResourceAttributesWithSchema::from(&resource);

    let mut group = c.benchmark_group("otlp_encode_2048_spans");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("tally", |b| {
        b.iter_batched(
            || spans.clone(),
            |batch| {
                let body = spans_request(&ours, &batch);
                drop(batch);
                body
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("opentelemetry-proto + prost", |b| {
        b.iter_batched(
            || spans.clone(),
            |batch| {
                ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(batch, &reference),
                }
                .encode_to_vec()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, encoding);
criterion_main!(benches);
