//! The encoder against opentelemetry-proto's own conversion (what
//! opentelemetry-otlp sends), and the processor against a real HTTP receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanEvents, SpanLinks, SpanProcessor};
use poem::http::{HeaderName, HeaderValue};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::encode::{self, EncodedResource};
use super::queue::{self, Queue};
use super::{ExportConfig, Processor};

// ---- random spans -------------------------------------------------------

fn text(rng: &mut StdRng) -> String {
    const PIECES: [&str; 8] = [
        "",
        "a",
        "http.route",
        "é",
        "日本",
        "<b>&'\"",
        "\u{0}\n",
        " ",
    ];
    let n = rng.random_range(0..6);
    let mut s: String = (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect();
    if rng.random_ratio(1, 20) {
        // Long enough for two- and three-byte length prefixes.
        s.push_str(&"x".repeat(rng.random_range(100..20_000)));
    }
    s
}

fn value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Bool(rng.random()),
        1 => Value::I64(rng.random()),
        2 => Value::I64(rng.random_range(-3..300)),
        3 => Value::F64(rng.random::<f64>() * 1e6 - 5e5),
        4 => Value::String(StringValue::from(text(rng))),
        5 => Value::String(StringValue::from("static")),
        6 => Value::Array(Array::Bool(
            (0..rng.random_range(0..4)).map(|_| rng.random()).collect(),
        )),
        7 => Value::Array(Array::I64(
            (0..rng.random_range(0..4)).map(|_| rng.random()).collect(),
        )),
        _ => match rng.random_range(0..2) {
            0 => Value::Array(Array::F64(
                (0..rng.random_range(0..4)).map(|_| rng.random()).collect(),
            )),
            _ => Value::Array(Array::String(
                (0..rng.random_range(0..4))
                    .map(|_| StringValue::from(text(rng)))
                    .collect(),
            )),
        },
    }
}

fn attributes(rng: &mut StdRng, max: usize) -> Vec<KeyValue> {
    (0..rng.random_range(0..=max))
        .map(|_| KeyValue::new(text(rng), value(rng)))
        .collect()
}

fn time(rng: &mut StdRng) -> SystemTime {
    match rng.random_range(0..10) {
        // Before the epoch: sent as 0, as opentelemetry-proto does.
        0 => SystemTime::UNIX_EPOCH - Duration::from_secs(5),
        1 => SystemTime::UNIX_EPOCH,
        _ => SystemTime::UNIX_EPOCH + Duration::from_nanos(rng.random_range(1..u64::MAX / 2)),
    }
}

fn context(rng: &mut StdRng) -> SpanContext {
    let state = if rng.random_ratio(1, 3) {
        TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).unwrap()
    } else {
        TraceState::NONE
    };
    SpanContext::new(
        TraceId::from(rng.random::<u128>()),
        SpanId::from(rng.random::<u64>()),
        if rng.random() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        rng.random(),
        state,
    )
}

fn span(rng: &mut StdRng, scopes: &[InstrumentationScope]) -> SpanData {
    let mut events = SpanEvents::default();
    for _ in 0..rng.random_range(0..3) {
        let name = text(rng);
        events.events.push(Event::new(
            name,
            time(rng),
            attributes(rng, 4),
            rng.random_range(0..3),
        ));
    }
    events.dropped_count = rng.random_range(0..2);
    let mut links = SpanLinks::default();
    for _ in 0..rng.random_range(0..2) {
        let mut link = Link::with_context(context(rng));
        link.attributes = attributes(rng, 3);
        link.dropped_attributes_count = rng.random_range(0..2);
        links.links.push(link);
    }
    links.dropped_count = rng.random_range(0..2);
    SpanData {
        span_context: context(rng),
        parent_span_id: if rng.random() {
            SpanId::from(rng.random::<u64>())
        } else {
            SpanId::INVALID
        },
        parent_span_is_remote: rng.random(),
        span_kind: [
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ][rng.random_range(0..5)]
        .clone(),
        name: text(rng).into(),
        start_time: time(rng),
        end_time: time(rng),
        attributes: attributes(rng, 8),
        dropped_attributes_count: rng.random_range(0..3),
        events,
        links,
        status: match rng.random_range(0..4) {
            0 => Status::Unset,
            1 => Status::Ok,
            2 => Status::error(""),
            _ => Status::error(text(rng)),
        },
        instrumentation_scope: scopes[rng.random_range(0..scopes.len())].clone(),
    }
}

fn scopes() -> Vec<InstrumentationScope> {
    vec![
        InstrumentationScope::builder("tally").build(),
        InstrumentationScope::builder("other")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
            .with_attributes([KeyValue::new("scope.attr", 7_i64)])
            .build(),
    ]
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_schema_url(
            [KeyValue::new("service.name", "tally")],
            "https://example.com/schema",
        )
        .with_attribute(KeyValue::new("deployment.environment.name", "test"))
        .build()
}

/// What opentelemetry-otlp would send for `spans`.
fn reference(resource: &Resource, spans: Vec<SpanData>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(resource),
        ),
    }
}

// ---- encoding -----------------------------------------------------------

#[test]
fn random_spans_decode_to_what_opentelemetry_proto_builds() {
    let mut rng = StdRng::seed_from_u64(0x7a11);
    let scopes = scopes();
    let resource = resource();
    let encoded = EncodedResource::new(&resource);
    for case in 0..300 {
        let spans: Vec<SpanData> = (0..rng.random_range(1..6))
            .map(|_| span(&mut rng, &scopes))
            .collect();
        let ours = encode::spans_request(&encoded, &spans);
        let decoded = ExportTraceServiceRequest::decode(ours.as_slice())
            .unwrap_or_else(|e| panic!("case {case}: not valid protobuf: {e}"));
        assert_eq!(decoded, reference(&resource, spans), "case {case}");
    }
}

#[test]
fn a_span_of_the_service_decodes_exactly() {
    let scope = InstrumentationScope::builder("tally").build();
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_796_224_301_558_311_455);
    let mut events = SpanEvents::default();
    events.events.push(Event::new(
        "rate_limit",
        start + Duration::from_micros(20),
        vec![
            KeyValue::new("rate_limit.policy", "write"),
            KeyValue::new("rate_limit.remaining", 41_i64),
        ],
        0,
    ));
    let span = SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "POST /api/metrics".into(),
        start_time: start,
        end_time: start + Duration::from_micros(45),
        attributes: vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 201_i64),
        ],
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope,
    };
    let resource = Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", "tally"))
        .build();
    let ours = encode::spans_request(
        &EncodedResource::new(&resource),
        std::slice::from_ref(&span),
    );
    let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).unwrap();
    let got = &decoded.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(got.name, "POST /api/metrics");
    assert_eq!(hex(&got.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&got.span_id), "00f067aa0ba902b7");
    assert!(got.parent_span_id.is_empty());
    assert_eq!(got.end_time_unix_nano - got.start_time_unix_nano, 45_000);
    assert_eq!(got.events[0].attributes.len(), 2);
    // Sampled, parent known to be local.
    assert_eq!(got.flags, 0x101);
    assert_eq!(decoded, reference(&resource, vec![span]));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn batches_cut_at_span_boundaries_and_keep_order() {
    let mut rng = StdRng::seed_from_u64(7);
    let scopes = scopes();
    let spans: Vec<SpanData> = (0..23).map(|_| span(&mut rng, &scopes)).collect();
    let queue = Queue::new(1000);
    for s in &spans {
        queue.push(s);
    }
    assert_eq!(queue.len(), 23);
    let groups = queue.drain();
    assert_eq!(queue.len(), 0);
    let batches = queue::batches(&groups, 5);
    assert_eq!(
        batches.iter().map(|b| b.spans).collect::<Vec<_>>(),
        [5, 5, 5, 5, 3]
    );
    let resource = resource();
    let encoded = EncodedResource::new(&resource);
    let mut names = Vec::new();
    for batch in &batches {
        let request =
            ExportTraceServiceRequest::decode(encode::request(&encoded, &batch.scopes).as_slice())
                .unwrap();
        let spans: Vec<_> = request.resource_spans[0]
            .scope_spans
            .iter()
            .flat_map(|s| {
                s.spans
                    .iter()
                    .map(move |sp| (s.scope.as_ref().unwrap().name.clone(), sp.span_id.clone()))
            })
            .collect();
        assert_eq!(spans.len(), batch.spans);
        names.extend(spans);
    }
    // Every span once, each under its own scope (this thread wrote them all
    // to one shard, so per scope they keep their order).
    for scope in &scopes {
        let want: Vec<Vec<u8>> = spans
            .iter()
            .filter(|s| s.instrumentation_scope == *scope)
            .map(|s| s.span_context.span_id().to_bytes().to_vec())
            .collect();
        let got: Vec<Vec<u8>> = names
            .iter()
            .filter(|(n, _)| n == scope.name())
            .map(|(_, id)| id.clone())
            .collect();
        assert_eq!(got, want, "{}", scope.name());
    }
}

#[test]
fn a_full_queue_drops_and_counts() {
    let mut rng = StdRng::seed_from_u64(9);
    let scopes = scopes();
    let queue = Queue::new(3);
    let pushed: Vec<_> = (0..5)
        .map(|_| queue.push(&span(&mut rng, &scopes)))
        .collect();
    assert_eq!(
        pushed,
        [
            queue::Pushed::Queued(1),
            queue::Pushed::Queued(2),
            queue::Pushed::Queued(3),
            queue::Pushed::Dropped,
            queue::Pushed::Dropped
        ]
    );
    assert_eq!(queue.take_dropped(), 2);
    assert_eq!(queue.take_dropped(), 0);
    let groups = queue.drain();
    assert_eq!(groups.iter().map(|g| g.ends.len()).sum::<usize>(), 3);
    // Room again once drained.
    assert_eq!(
        queue.push(&span(&mut rng, &scopes)),
        queue::Pushed::Queued(1)
    );
}

// ---- the processor against a receiver -----------------------------------

/// What the receiver was sent: the request's headers and decoded body.
#[derive(Debug, Clone)]
struct Received {
    headers: Headers,
    request: ExportTraceServiceRequest,
}

impl Received {
    fn span_names(&self) -> Vec<String> {
        self.request
            .resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter().map(|sp| sp.name.clone()))
            .collect()
    }
}

/// One scripted answer: status, delay before answering, `Retry-After`.
#[derive(Clone, Copy)]
struct Answer(u16, Duration, Option<&'static str>);

const TAKE: Answer = Answer(200, Duration::ZERO, None);

/// A one-thread HTTP/1.1 OTLP receiver on a free port: answers each POST
/// with the next scripted answer, then with `after` once the script runs out.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<Mutex<u32>>,
}

impl Receiver {
    fn start(script: Vec<Answer>) -> Self {
        Self::scripted(script, TAKE)
    }

    fn scripted(script: Vec<Answer>, after: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(Mutex::new(0));
        let (g, a) = (Arc::clone(&got), Arc::clone(&attempts));
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                while let Some((headers, body)) = read_request(&mut reader) {
                    *a.lock().unwrap() += 1;
                    let Answer(status, delay, retry_after) = script.next().unwrap_or(after);
                    std::thread::sleep(delay);
                    if status == 200 {
                        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                        g.lock().unwrap().push(Received { headers, request });
                    }
                    if respond(&stream, status, retry_after).is_err() {
                        break;
                    }
                }
            }
        });
        Self { url, got, attempts }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn attempts(&self) -> u32 {
        *self.attempts.lock().unwrap()
    }

    /// Waits up to `limit` for `n` accepted requests.
    fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.received().len() < n {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.received()
    }
}

/// Lower-cased header names with their values.
type Headers = Vec<(String, String)>;

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Headers, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")?
        .1
        .parse()
        .ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

fn respond(mut stream: &TcpStream, status: u16, retry_after: Option<&str>) -> std::io::Result<()> {
    let extra = retry_after.map_or(String::new(), |v| format!("retry-after: {v}\r\n"));
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/x-protobuf\r\n{extra}content-length: 0\r\n\r\n"
    )
}

fn config(url: &str) -> ExportConfig {
    ExportConfig {
        endpoint: url.to_owned(),
        headers: vec![(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer t0ken"),
        )],
        timeout: Duration::from_secs(5),
        delay: Duration::from_secs(60),
        queue: 100,
        batch: 4,
    }
}

fn tracer_provider(processor: Processor) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder_empty()
                .with_service_name("tally-test")
                .build(),
        )
        .build()
}

/// Runs `f`, and asserts it returned within `bound`.
fn within<T>(bound: Duration, what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < bound, "{what}: took {took:?}, bound {bound:?}");
    out
}

fn end_spans(provider: &SdkTracerProvider, names: &[&str]) {
    let tracer = provider.tracer("tally");
    for name in names {
        drop(tracer.start(name.to_string()));
    }
}

#[test]
fn a_full_batch_is_sent_at_once_with_the_configured_headers() {
    let receiver = Receiver::start(vec![]);
    let provider = tracer_provider(Processor::new(config(&receiver.url)).unwrap());
    end_spans(&provider, &["a", "b", "c", "d"]);
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        got.len(),
        1,
        "a batch of 4 goes without waiting for the 60 s delay"
    );
    assert_eq!(got[0].span_names(), ["a", "b", "c", "d"]);
    let header = |name: &str| {
        got[0]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some("Bearer t0ken"));
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    let resource = got[0].request.resource_spans[0].resource.as_ref().unwrap();
    assert!(
        resource
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name"),
        "the provider's resource is sent"
    );
    provider.shutdown().unwrap();
}

#[test]
fn the_schedule_delay_sends_a_partial_batch() {
    let receiver = Receiver::start(vec![]);
    let mut c = config(&receiver.url);
    c.delay = Duration::from_millis(200);
    let provider = tracer_provider(Processor::new(c).unwrap());
    end_spans(&provider, &["lonely"]);
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        got.iter()
            .flat_map(Received::span_names)
            .collect::<Vec<_>>(),
        ["lonely"]
    );
    provider.shutdown().unwrap();
}

#[test]
fn flush_and_shutdown_send_what_is_held_and_later_spans_are_dropped() {
    let receiver = Receiver::start(vec![]);
    let provider = tracer_provider(Processor::new(config(&receiver.url)).unwrap());
    end_spans(&provider, &["one"]);
    provider.force_flush().unwrap();
    assert_eq!(receiver.received().len(), 1, "flush returns once sent");
    end_spans(&provider, &["two", "three"]);
    provider.shutdown().unwrap();
    let names: Vec<String> = receiver
        .received()
        .iter()
        .flat_map(Received::span_names)
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    end_spans(&provider, &["after"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(receiver.received().len(), 2);
    assert!(provider.shutdown().is_err(), "a second shutdown says so");
}

#[test]
fn unavailable_is_retried_and_a_bad_request_is_not() {
    let unavailable = Answer(503, Duration::ZERO, Some("0"));
    let receiver = Receiver::start(vec![unavailable, unavailable]);
    let provider = tracer_provider(Processor::new(config(&receiver.url)).unwrap());
    end_spans(&provider, &["a", "b", "c", "d"]);
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(receiver.attempts(), 3, "two 503s, then taken");
    provider.shutdown().unwrap();

    let receiver = Receiver::start(vec![Answer(400, Duration::ZERO, None)]);
    let provider = tracer_provider(Processor::new(config(&receiver.url)).unwrap());
    end_spans(&provider, &["a", "b", "c", "d"]);
    let _ = provider.force_flush();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.attempts(), 1, "400 is final");
    assert!(receiver.received().is_empty());
    provider.shutdown().unwrap();
}

#[test]
fn a_collector_that_never_answers_costs_at_most_the_timeout() {
    let receiver = Receiver::start(vec![Answer(200, Duration::from_secs(30), None)]);
    let mut c = config(&receiver.url);
    c.timeout = Duration::from_millis(300);
    let provider = tracer_provider(Processor::new(c).unwrap());
    end_spans(&provider, &["a"]);
    let _ = within(Duration::from_secs(3), "flush", || provider.force_flush());
    let _ = within(Duration::from_secs(3), "shutdown", || {
        provider.shutdown_with_timeout(Duration::from_secs(2))
    });
}

#[test]
fn nothing_listening_drops_the_batch_without_blocking_span_ends() {
    // A port with nothing behind it.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1/traces", l.local_addr().unwrap())
    };
    let mut c = config(&url);
    c.timeout = Duration::from_millis(500);
    let provider = tracer_provider(Processor::new(c).unwrap());
    within(
        Duration::from_secs(1),
        "span ends never wait on the export",
        || end_spans(&provider, &["a"; 400]),
    );
    let _ = provider.shutdown_with_timeout(Duration::from_secs(2));
}

#[test]
fn unsampled_spans_are_not_sent() {
    let receiver = Receiver::start(vec![]);
    let processor = Processor::new(config(&receiver.url)).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut s = span(&mut rng, &scopes());
    s.span_context = SpanContext::new(
        TraceId::from(1_u128),
        SpanId::from(1_u64),
        TraceFlags::default(),
        false,
        TraceState::NONE,
    );
    processor.on_end(s);
    processor.force_flush().unwrap();
    assert!(receiver.received().is_empty());
    processor.shutdown().unwrap();
}

#[test]
fn retry_after_zero_still_backs_off_and_a_huge_one_gives_up_without_harm() {
    // Always 503 + Retry-After: 0: the backoff (100 ms, doubling) still spaces
    // the attempts, and the round gives up within the timeout.
    let receiver = Receiver::scripted(vec![], Answer(503, Duration::ZERO, Some("0")));
    let mut c = config(&receiver.url);
    c.timeout = Duration::from_millis(1000);
    let provider = tracer_provider(Processor::new(c).unwrap());
    end_spans(&provider, &["a"]);
    let flushed = within(Duration::from_secs(3), "flush", || provider.force_flush());
    assert!(flushed.is_err(), "a lost batch makes the flush say so");
    let attempts = receiver.attempts();
    assert!((2..=6).contains(&attempts), "{attempts} attempts in 1 s");
    provider.shutdown().unwrap();

    // Retry-After far beyond the timeout: given up at once, and the export
    // thread lives on for the next batch.
    let receiver = Receiver::start(vec![Answer(
        503,
        Duration::ZERO,
        Some("9223372036854775807"),
    )]);
    let provider = tracer_provider(Processor::new(config(&receiver.url)).unwrap());
    end_spans(&provider, &["dropped"]);
    let flushed = within(Duration::from_secs(2), "flush", || provider.force_flush());
    assert!(flushed.is_err());
    end_spans(&provider, &["sent"]);
    provider.force_flush().unwrap();
    let names: Vec<String> = receiver
        .received()
        .iter()
        .flat_map(Received::span_names)
        .collect();
    assert_eq!(names, ["sent"]);
    provider.shutdown_with_timeout(Duration::MAX).unwrap();
}

#[test]
fn shutdown_ends_retries_against_a_collector_that_keeps_failing() {
    let receiver = Receiver::scripted(vec![], Answer(503, Duration::ZERO, Some("1")));
    let mut c = config(&receiver.url);
    c.timeout = Duration::from_secs(30);
    let provider = tracer_provider(Processor::new(c).unwrap());
    end_spans(&provider, &["a", "b", "c", "d"]);
    // The batch is being retried (a second apart) when shutdown comes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while receiver.attempts() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    within(Duration::from_secs(3), "shutdown", || {
        provider.shutdown_with_timeout(Duration::from_secs(5))
    })
    .unwrap();
    let attempts = receiver.attempts();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.attempts(), attempts, "no attempt after shutdown");
}
