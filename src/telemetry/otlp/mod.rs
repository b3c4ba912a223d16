//! The built-in OTLP/HTTP span exporter: a span processor for the
//! OpenTelemetry SDK that encodes each sampled span into OTLP protobuf on the
//! thread that ends it, and one thread that sends the encoded spans in
//! batches (`TRACES_EXPORTER=builtin`, the default).
//!
//! It does what the SDK's `BatchSpanProcessor` and `opentelemetry-otlp`'s
//! HTTP exporter do together, for a fraction of the CPU: they move every
//! span struct through a channel to an export thread, copy it into
//! opentelemetry-proto's message structs and let prost walk those once per
//! level of nesting, then free it all on that thread; here a span is written
//! once, straight into the wire format, and freed where it was made
//! (README, Telemetry, has the measurements). `TRACES_EXPORTER=opentelemetry-otlp`
//! switches back to the SDK's pair, and the tests check that both send the
//! same spans.
//!
//! Settings are the standard `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*`
//! variables (`config.rs`).

pub mod config;
pub mod encode;
mod export;
mod queue;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use parking_lot::{Condvar, Mutex};

pub use config::ExportConfig;
use export::{Control, Shared};
use queue::{Pushed, Queue};

/// The span processor; see the module documentation.
#[derive(Debug)]
pub struct Processor {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Processor {
    /// Starts the export thread.
    pub fn new(mut config: ExportConfig) -> std::io::Result<Self> {
        config.queue = config.queue.max(1);
        config.batch = config.batch.clamp(1, config.queue);
        let shared = Arc::new(Shared {
            queue: Queue::new(config.queue),
            config,
            resource: Mutex::default(),
            control: Mutex::default(),
            changed: Condvar::new(),
            stopped: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || export::run(&for_thread))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn wake(&self) {
        if let Some(t) = self.thread.lock().as_ref() {
            t.thread().unpark();
        }
    }

    /// Waits until `done` holds or `timeout` passes (`Duration::MAX`: no
    /// limit); what `done` says then.
    fn wait_for(&self, timeout: Duration, done: impl Fn(&Control) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut control = self.shared.control.lock();
        while !done(&control) {
            match deadline {
                Some(d) => {
                    if self.shared.changed.wait_until(&mut control, d).timed_out() {
                        return done(&control);
                    }
                }
                None => self.shared.changed.wait(&mut control),
            }
        }
        true
    }
}

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() || self.shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        if let Pushed::Queued(held) = self.shared.queue.push(&span) {
            if held == self.shared.config.batch {
                self.wake();
            }
        }
    }

    /// Sends what is held now. Waits for the round in progress, if any,
    /// then for one round of its own: each ends within the export timeout
    /// (a round stops at its first failed batch), so at most twice that.
    fn force_flush(&self) -> OTelSdkResult {
        let ticket = {
            let mut control = self.shared.control.lock();
            if control.stopped {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            control.flush_asked += 1;
            control.flush_asked
        };
        self.wake();
        let limit = self.shared.config.timeout * 2 + Duration::from_secs(1);
        if !self.wait_for(limit, |c| c.flush_done >= ticket || c.stopped) {
            return Err(OTelSdkError::Timeout(limit));
        }
        let control = self.shared.control.lock();
        if control.flush_done < ticket {
            Err(OTelSdkError::AlreadyShutdown)
        } else if control.flush_failed {
            Err(OTelSdkError::InternalFailure(
                "the export failed; its spans were dropped".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Sends what is held and stops the export thread, waiting at most
    /// `timeout` (a batch being retried gets no more retries). Spans that
    /// end later are dropped.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        {
            let mut control = self.shared.control.lock();
            if control.stop {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            control.stop = true;
        }
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.wake();
        if self.wait_for(timeout, |c| c.stopped) {
            if let Some(t) = self.thread.lock().take() {
                let _ = t.join();
            }
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(timeout))
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self.shared.resource.lock() = Arc::new(encode::EncodedResource::new(resource));
    }
}
