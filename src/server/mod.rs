//! The HTTP server: accepts connections up to a cap and serves each with hyper and the
//! application's poem endpoint, under the deadlines of `io`, and drains on shutdown.
//!
//! poem's own `Server` has no header timeout, no connection cap and no send timeout: a
//! client that sends half a request holds its socket for good. This is the same hyper
//! connection poem would build (HTTP/1.1 and HTTP/2, upgrades), with those limits.

mod io;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, IntoEndpoint, Request, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use io::{Deadlines, Expired};

use crate::telemetry::connections;

/// Limits on connections (`ServerSettings`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub deadlines: Deadlines,
    /// Connections open at once; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
}

/// How long to wait before accepting again after an error (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// Serves `endpoint` on `listener` until `signal`; then stops accepting and gives open
/// connections up to `drain` to finish their requests before closing them.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: ConnectionLimits,
    signal: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    let endpoint = Arc::new(endpoint.into_endpoint().map_to_response());
    let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No timer for HTTP/1: with one, hyper closes any connection whose next head takes
    // 30 s, idle keep-alive included; `io` keeps the header and idle deadlines instead.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.deadlines.keepalive / 2));
    tokio::pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((stream, peer, slot)) = accepted else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections::opened();
        let verdict = Arc::new(io::Verdict::default());
        let io = io::Guarded::new(stream, limits.deadlines, Arc::clone(&verdict));
        let endpoint = Arc::clone(&endpoint);
        let local = local.clone();
        let service = hyper::service::service_fn(move |req| {
            let endpoint = Arc::clone(&endpoint);
            let req = Request::from((
                req,
                local.clone(),
                RemoteAddr(Addr::SocketAddr(peer)),
                http::uri::Scheme::HTTP,
            ));
            async move {
                let resp: Response = endpoint.get_response(req).await;
                Ok::<_, Infallible>(http::Response::<Body>::from(resp))
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            connections::closed(verdict.get().map(Expired::as_str));
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(open = graceful.count(), "draining connections");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            after_seconds = drain.as_secs_f64(),
            "connections still open after the shutdown timeout; closing them"
        );
    }
    Ok(())
}

/// Raises the process' open-file limit to its hard limit (as Go's runtime does) and warns
/// when `max_connections` cannot fit under it anyway.
pub fn raise_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < max_connections as u64 + FILES_BESIDES_CONNECTIONS => {
            tracing::warn!(
                open_files = limit,
                max_connections,
                "TALLY_MAX_CONNECTIONS is above what the open-file limit allows; past it, \
                 accepting fails until connections close (raise `ulimit -n`)"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// Files the process needs besides client connections (Redis, PostgreSQL, logs).
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// The next connection once a slot is free; `None` after an accept error.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let slot = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, slot)),
        Err(e) => {
            tracing::warn!(error = %e, "accepting a connection failed");
            None
        }
    }
}
