//! The export thread: sends what the queue holds when a batch is full, when
//! the schedule delay has passed, on a flush and at shutdown; one POST per
//! batch, each bounded by the export timeout with its retries.
//!
//! Retries follow OTLP/HTTP: 429, 502, 503 and 504, and failures to connect,
//! are retried with exponential backoff (never sooner than `Retry-After`
//! asks) while the timeout allows; any other answer drops the batch. Once a
//! batch has failed, the rest of that round is dropped rather than each
//! waiting out its own timeout against the same collector, and a shutdown
//! cuts a backoff short. A change between working and failing is logged
//! once, not per batch.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use parking_lot::{Condvar, Mutex};
use prost::Message;

use super::config::ExportConfig;
use super::encode::{self, EncodedResource};
use super::queue::{self, Queue};
use crate::telemetry::names::{LABEL_OUTCOME, TRACE_SPANS_TOTAL};

/// First wait before a retry; doubled each time, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most of a response body read (for `partial_success`, or to reuse the
/// connection after an error).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// Flushes asked for and done, and whether to stop: what callers of
/// `force_flush` and `shutdown` wait on.
#[derive(Debug, Default)]
pub struct Control {
    pub flush_asked: u64,
    pub flush_done: u64,
    /// Whether the round that answered the last flush lost spans.
    pub flush_failed: bool,
    pub stop: bool,
    pub stopped: bool,
}

#[derive(Debug)]
pub struct Shared {
    pub config: ExportConfig,
    pub queue: Queue,
    pub resource: Mutex<Arc<EncodedResource>>,
    pub control: Mutex<Control>,
    pub changed: Condvar,
    /// Set by shutdown: spans that end afterwards are not queued.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.control.lock().stop
    }
}

/// Says `stopped` when the export thread ends, also by a panic, so that
/// flushes and shutdowns never wait for a thread that is gone.
struct Stopped<'a>(&'a Shared);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.control.lock().stopped = true;
        self.0.changed.notify_all();
    }
}

/// What the thread remembers between rounds, to log changes once.
#[derive(Default)]
struct Episodes {
    failing: bool,
    dropping: Option<u64>,
    rejecting: bool,
}

/// Runs until `control.stop`; then sends what is left and says `stopped`.
pub fn run(shared: &Shared) {
    let _stopped = Stopped(shared);
    let client = match reqwest::blocking::Client::builder()
        .connect_timeout(shared.config.timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(1)
        .user_agent(concat!(
            "tally/",
            env!("CARGO_PKG_VERSION"),
            " (OTLP trace exporter)"
        ))
        .build()
    {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "traces: cannot build the HTTP client; spans are dropped");
            None
        }
    };
    let mut episodes = Episodes::default();
    let mut next = Instant::now() + shared.config.delay;
    loop {
        let (flush, stop) = wait(shared, next);
        next = Instant::now() + shared.config.delay;
        let groups = shared.queue.drain();
        episodes.dropping = count_dropped(shared, episodes.dropping);
        let resource = Arc::clone(&shared.resource.lock());
        let mut lost = false;
        for batch in queue::batches(&groups, shared.config.batch) {
            let spans = batch.spans as u64;
            if lost {
                counter("export_failed").increment(spans);
                continue;
            }
            let body = encode::request(&resource, &batch.scopes);
            let outcome = match &client {
                Some(c) => send(c, shared, body),
                None => Err("no HTTP client".to_owned()),
            };
            match outcome {
                Ok(rejected) => {
                    if episodes.failing {
                        tracing::info!("traces: export works again");
                        episodes.failing = false;
                    }
                    let rejected = rejected.min(spans);
                    counter("exported").increment(spans - rejected);
                    counter("rejected").increment(rejected);
                    if rejected > 0 && !episodes.rejecting {
                        tracing::warn!(
                            rejected,
                            "traces: the collector rejected part of a batch (logged again after a batch it takes whole)"
                        );
                    }
                    episodes.rejecting = rejected > 0;
                }
                Err(why) => {
                    if !episodes.failing {
                        tracing::warn!(
                            error = %why,
                            "traces: export failing; spans are dropped until it works again"
                        );
                        episodes.failing = true;
                    }
                    counter("export_failed").increment(spans);
                    lost = true;
                }
            }
        }
        drop(groups);
        let mut control = shared.control.lock();
        if flush > control.flush_done {
            control.flush_done = flush;
            control.flush_failed = lost;
        }
        shared.changed.notify_all();
        if stop {
            return;
        }
    }
}

/// Sleeps until a batch is full, `next` comes, a flush is asked or stop is
/// set; the flush to answer and whether to stop.
fn wait(shared: &Shared, next: Instant) -> (u64, bool) {
    loop {
        {
            let control = shared.control.lock();
            if control.stop || control.flush_asked > control.flush_done {
                return (control.flush_asked, control.stop);
            }
        }
        let now = Instant::now();
        if now >= next || shared.queue.len() >= shared.config.batch {
            return (0, false);
        }
        std::thread::park_timeout(next - now);
    }
}

fn counter(outcome: &'static str) -> metrics::Counter {
    metrics::counter!(TRACE_SPANS_TOTAL, LABEL_OUTCOME => outcome)
}

/// Counts what a full queue dropped since the last export, and logs once
/// when dropping starts and once when it stops (with how many in all).
/// `dropping`: the spans dropped so far in the current episode.
fn count_dropped(shared: &Shared, dropping: Option<u64>) -> Option<u64> {
    let dropped = shared.queue.take_dropped();
    counter("queue_full").increment(dropped);
    match (dropping, dropped) {
        (None, 0) => None,
        (None, n) => {
            tracing::warn!(
                limit = shared.config.queue,
                "traces: the span queue is full; new spans are dropped until it drains"
            );
            Some(n)
        }
        (Some(total), 0) => {
            tracing::info!(dropped = total, "traces: the span queue has room again");
            None
        }
        (Some(total), n) => Some(total + n),
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by collectors).
fn retry_after(resp: &reqwest::blocking::Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(86_400)))
}

/// Reads at most `MAX_RESPONSE_BYTES` of the body (so the connection can be
/// reused).
fn body(resp: reqwest::blocking::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = resp.take(MAX_RESPONSE_BYTES).read_to_end(&mut body);
    body
}

/// POSTs one request, retrying while the timeout allows (a shutdown cuts
/// the retries short); the spans the collector rejected (partial success)
/// when it took the request.
fn send(client: &reqwest::blocking::Client, shared: &Shared, body: Vec<u8>) -> Result<u64, String> {
    let config = &shared.config;
    let deadline = Instant::now() + config.timeout;
    let body = Bytes::from(body);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut request = client
            .post(&config.endpoint)
            .timeout(left)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone());
        for (name, value) in &config.headers {
            request = request.header(name.as_str(), value.as_bytes());
        }
        let (why, at_least) = match request.send() {
            Ok(resp) if resp.status().is_success() => return Ok(rejected(&self::body(resp))),
            Ok(resp) if retryable(resp.status().as_u16()) => {
                let why = format!("the collector answered {}", resp.status());
                let after = retry_after(&resp);
                let _ = self::body(resp);
                (why, after.unwrap_or_default())
            }
            Ok(resp) => {
                let why = format!("the collector answered {}", resp.status());
                let _ = self::body(resp);
                return Err(why);
            }
            // Without the URL: it may carry credentials.
            Err(e) if e.is_connect() => (e.without_url().to_string(), Duration::ZERO),
            Err(e) if e.is_timeout() => {
                return Err(format!("no answer within {:?}", config.timeout));
            }
            Err(e) => (e.without_url().to_string(), Duration::ZERO),
        };
        // Never sooner than the collector asked, nor than the backoff.
        let wait = at_least.max(backoff);
        let wait = wait
            + Duration::from_millis(rand::random_range(
                0..=wait.as_millis().min(1000) as u64 / 4,
            ));
        if wait >= deadline.saturating_duration_since(Instant::now()) {
            return Err(why);
        }
        // Parked, not slept: a shutdown wakes it and ends the retries (a
        // full batch's wake-up only parks it again).
        let until = Instant::now() + wait;
        loop {
            if shared.stopping() {
                return Err(why);
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Spans a 2xx answer says were rejected (`partial_success`); an empty or
/// unreadable body means all were taken.
fn rejected(body: &[u8]) -> u64 {
    let Ok(answer) = ExportTraceServiceResponse::decode(body) else {
        return 0;
    };
    match answer.partial_success {
        Some(p) if p.rejected_spans > 0 => u64::try_from(p.rejected_spans).unwrap_or(0),
        _ => 0,
    }
}
