//! The export thread: sends what the queue holds when a batch is full, when
//! the schedule delay has passed, on a flush and at shutdown; one POST per
//! batch, each bounded by the export timeout with its retries.
//!
//! Retries follow OTLP/HTTP: 429, 502, 503 and 504, and failures to connect,
//! are retried with exponential backoff (honouring `Retry-After`) while the
//! timeout allows; any other answer drops the batch. A batch the collector
//! took in part (`partial_success`) is counted as such. A change between
//! working and failing is logged once, not per batch.

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
/// Most of a response body read (for `partial_success`).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// Flushes asked for and done, and whether to stop: what callers of
/// `force_flush` and `shutdown` wait on.
#[derive(Debug, Default)]
pub struct Control {
    pub flush_asked: u64,
    pub flush_done: u64,
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
}

/// Runs until `control.stop`; then sends what is left and says `stopped`.
pub fn run(shared: &Shared) {
    let client = match reqwest::blocking::Client::builder()
        .connect_timeout(shared.config.timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(1)
        .build()
    {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "traces: cannot build the HTTP client; spans are dropped");
            None
        }
    };
    let mut failing = false;
    let mut dropping: Option<u64> = None;
    let mut next = Instant::now() + shared.config.delay;
    loop {
        let (flush, stop) = wait(shared, next);
        next = Instant::now() + shared.config.delay;
        let groups = shared.queue.drain();
        dropping = count_dropped(shared, dropping);
        let resource = Arc::clone(&shared.resource.lock());
        for batch in queue::batches(&groups, shared.config.batch) {
            let spans = batch.spans;
            let body = encode::request(&resource, &batch.scopes);
            let outcome = match &client {
                Some(c) => send(c, &shared.config, body),
                None => Err("no HTTP client".to_owned()),
            };
            match outcome {
                Ok(rejected) => {
                    if failing {
                        tracing::info!("traces: export works again");
                        failing = false;
                    }
                    let rejected = rejected.min(spans as u64);
                    counter("exported").increment(spans as u64 - rejected);
                    counter("rejected").increment(rejected);
                }
                Err(why) => {
                    if !failing {
                        tracing::warn!(
                            error = %why,
                            "traces: export failing; spans are dropped until it works again"
                        );
                        failing = true;
                    }
                    counter("export_failed").increment(spans as u64);
                }
            }
        }
        drop(groups);
        let mut control = shared.control.lock();
        control.flush_done = control.flush_done.max(flush);
        if stop {
            control.stopped = true;
            shared.changed.notify_all();
            return;
        }
        shared.changed.notify_all();
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
    Some(Duration::from_secs(secs))
}

/// POSTs one request, retrying while the timeout allows; the spans the
/// collector rejected (partial success) when it took the request.
fn send(
    client: &reqwest::blocking::Client,
    config: &ExportConfig,
    body: Vec<u8>,
) -> Result<u64, String> {
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
        let (why, wait) = match request.send() {
            Ok(resp) if resp.status().is_success() => return Ok(rejected(resp)),
            Ok(resp) if retryable(resp.status().as_u16()) => (
                format!("the collector answered {}", resp.status()),
                retry_after(&resp).unwrap_or(backoff),
            ),
            Ok(resp) => return Err(format!("the collector answered {}", resp.status())),
            Err(e) if e.is_timeout() => {
                return Err(format!("no answer within {:?}", config.timeout));
            }
            // Without the URL: it may carry credentials.
            Err(e) => (e.without_url().to_string(), backoff),
        };
        let jitter = Duration::from_millis(rand::random_range(
            0..=wait.as_millis().min(1000) as u64 / 4,
        ));
        let wait = wait + jitter;
        if Instant::now() + wait >= deadline {
            return Err(why);
        }
        std::thread::sleep(wait);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Spans a 2xx answer says were rejected (`partial_success`); an empty or
/// unreadable body means all were taken.
fn rejected(resp: reqwest::blocking::Response) -> u64 {
    let mut body = Vec::new();
    if resp
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut body)
        .is_err()
    {
        return 0;
    }
    let Ok(answer) = ExportTraceServiceResponse::decode(body.as_slice()) else {
        return 0;
    };
    match answer.partial_success {
        Some(p) if p.rejected_spans > 0 || !p.error_message.is_empty() => {
            tracing::warn!(
                rejected = p.rejected_spans,
                message = %p.error_message,
                "traces: the collector rejected part of a batch"
            );
            u64::try_from(p.rejected_spans).unwrap_or(0)
        }
        _ => 0,
    }
}
