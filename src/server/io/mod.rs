//! One connection's socket, with the deadlines hyper does not keep by itself.
//!
//! - **Header:** a request's head (up to its blank line) must arrive within
//!   `header_timeout` of its first byte, or of the connection opening. A client that
//!   sends half a head and stops (slowloris) is closed then.
//! - **Idle:** between requests, a keep-alive connection waits at most `keepalive_timeout`
//!   for the next one, counted from the last byte written.
//! - **Send:** a write that makes no progress for `send_timeout` (the client stopped
//!   reading: its socket buffer is full) closes the connection. This is what drops a
//!   stalled event-stream client.
//!
//! The phase is read off the bytes: the head ends at its first empty line (`\r\n\r\n`,
//! or `\n\n`, which HTTP/1 parsers accept); once the response begins, the connection
//! waits idle until the next request's first byte. A connection that opens with the HTTP/2 preface has frames, not
//! heads: it only gets the idle deadline, reset by every byte either way. An expired
//! deadline is a `TimedOut` error to hyper, which closes the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[cfg(test)]
mod tests;
mod verdict;

pub use verdict::{Expired, Verdict};

#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub header: Duration,
    pub keepalive: Duration,
    pub send: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head (deadline `head_by`); `tail` holds its last bytes, to find
    /// the blank line.
    Head { tail: [u8; 3] },
    /// Head read: body and handler. No read deadline.
    Busy,
    /// The response began: until the next request's first byte, the connection is idle
    /// (deadline: the last byte written + keepalive).
    Answered,
    /// HTTP/2: frames both ways; the deadline is the last byte either way + keepalive.
    Frames,
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";
/// The interim answer to `Expect: 100-continue`: the request's body comes after it.
const CONTINUE: &[u8] = b"HTTP/1.1 100 ";

pub struct Guarded<T> {
    inner: T,
    deadlines: Deadlines,
    phase: Phase,
    /// Bytes read so far (only counted up to the preface's length).
    seen: usize,
    /// When the head being read must be complete.
    head_by: Instant,
    /// The last byte written (`Answered`) or moved either way (`Frames`).
    last_activity: Instant,
    /// Wakes the connection at (or before) its read deadline. It is moved only to fire
    /// sooner: a deadline that moved later is noticed when it fires, so a busy connection
    /// costs no timer work per request.
    timer: Pin<Box<Sleep>>,
    /// The timer was polled with this connection's waker (it may have fired since:
    /// `is_elapsed` tells).
    armed: bool,
    /// Armed while a write waits on a full socket.
    send_by: Pin<Box<Sleep>>,
    sending: bool,
    verdict: Arc<Verdict>,
}

impl<T> Guarded<T> {
    pub fn new(inner: T, deadlines: Deadlines, verdict: Arc<Verdict>) -> Self {
        let now = Instant::now();
        Self {
            inner,
            deadlines,
            phase: Phase::Head { tail: [0; 3] },
            seen: 0,
            head_by: now + deadlines.header,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + deadlines.header)),
            armed: false,
            send_by: Box::pin(tokio::time::sleep_until(now + deadlines.send)),
            sending: false,
            verdict,
        }
    }

    /// The read deadline of the phase, and what expires with it; `None` while busy.
    fn read_deadline(&self) -> Option<(Instant, Expired)> {
        match self.phase {
            Phase::Head { .. } => Some((self.head_by, Expired::Header)),
            Phase::Answered | Phase::Frames => {
                Some((self.last_activity + self.deadlines.keepalive, Expired::Idle))
            }
            Phase::Busy => None,
        }
    }

    /// Polls the timer toward `deadline`: `Ready` once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if self.timer.deadline() > deadline {
            self.timer.as_mut().reset(deadline);
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                self.armed = true;
                return Poll::Pending;
            }
            self.armed = false;
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            // It fired for an earlier deadline: wait for the one that holds now.
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Reads `fresh` bytes: the phase they move the connection to.
    fn on_read(&mut self, fresh: &[u8]) {
        if self.seen < PREFACE.len() {
            let start = self.seen;
            let n = fresh.len().min(PREFACE.len() - start);
            self.seen = if fresh[..n] == PREFACE[start..start + n] {
                start + n
            } else {
                usize::MAX // not HTTP/2: stop looking
            };
            if self.seen == PREFACE.len() {
                self.phase = Phase::Frames;
            }
        }
        self.phase = match self.phase {
            Phase::Frames => {
                self.last_activity = Instant::now();
                Phase::Frames
            }
            Phase::Head { mut tail } => {
                if ends_head(&mut tail, fresh) {
                    Phase::Busy
                } else {
                    Phase::Head { tail }
                }
            }
            Phase::Answered => {
                // The next request's first bytes: its head has `header` from now.
                let mut tail = [0; 3];
                if ends_head(&mut tail, fresh) {
                    Phase::Busy
                } else {
                    self.head_by = Instant::now() + self.deadlines.header;
                    Phase::Head { tail }
                }
            }
            Phase::Busy => Phase::Busy,
        };
    }

    /// Wrote bytes: a response began (or goes on), or frames moved.
    fn on_written(&mut self, cx: &mut Context<'_>, interim: bool) {
        match self.phase {
            Phase::Busy if interim => return,
            Phase::Busy | Phase::Answered | Phase::Frames => {}
            Phase::Head { .. } => return,
        }
        if self.phase == Phase::Busy {
            self.phase = Phase::Answered;
        }
        self.last_activity = Instant::now();
        if !self.armed || self.timer.is_elapsed() {
            // hyper may not read again until the client sends: the timer must be able
            // to wake this connection for its idle deadline by itself.
            let deadline = self.last_activity + self.deadlines.keepalive;
            if self.poll_deadline(cx, deadline).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
    }
}

/// Whether `bytes`, after the `tail` of what came before, hold an empty line; updates `tail`.
fn ends_head(tail: &mut [u8; 3], bytes: &[u8]) -> bool {
    let mut window = *tail;
    for &b in bytes {
        if b == b'\n' && (window[2] == b'\n' || (window[2] == b'\r' && window[1] == b'\n')) {
            return true;
        }
        window = [window[1], window[2], b];
    }
    *tail = window;
    false
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if !fresh.is_empty() {
                    this.on_read(fresh);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, expired)) = this.read_deadline() else {
                    return Poll::Pending;
                };
                ready!(this.poll_deadline(cx, deadline));
                this.verdict.set(expired);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    expired.as_str(),
                )))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> Guarded<T> {
    /// Runs a write-side poll with the send deadline around it.
    fn guard_send<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.sending = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !self.sending {
                    self.sending = true;
                    self.send_by
                        .as_mut()
                        .reset(Instant::now() + self.deadlines.send);
                }
                ready!(self.send_by.as_mut().poll(cx));
                self.verdict.set(Expired::Send);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    Expired::Send.as_str(),
                )))
            }
        }
    }

    /// A write: bytes that went out are activity (`interim`: a `100 Continue`, after
    /// which the request's body still comes). Flushes are not: hyper flushes on every
    /// wake, bytes or not.
    fn write_with(
        &mut self,
        cx: &mut Context<'_>,
        interim: bool,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let written = ready!(self.guard_send(cx, op));
        if matches!(written, Ok(n) if n > 0) {
            self.on_written(cx, interim);
        }
        Poll::Ready(written)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let interim = buf.starts_with(CONTINUE);
        self.get_mut()
            .write_with(cx, interim, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        let interim = first.is_some_and(|b| b.starts_with(CONTINUE));
        self.get_mut()
            .write_with(cx, interim, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .guard_send(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
