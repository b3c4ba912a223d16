//! A minimal OTLP/HTTP trace receiver for benchmarks: reads each export
//! request's whole body and acknowledges it with an empty
//! `ExportTraceServiceResponse`, without decoding it, so that the receiver
//! costs the shared machine as little as a receiver can. On SIGINT or
//! SIGTERM it prints how many requests and bytes it took.
//!
//!     cargo run --release --example otlp_sink -- PORT
//!
//! (The end-to-end trace check, `tests/otlp/check_traces.py`, decodes every
//! span; this is only the benchmarks' receiver.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::{EndpointExt, Response, Route, Server, post};

#[derive(Default)]
struct Received {
    requests: AtomicU64,
    bytes: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(4318);
    let received = Arc::new(Received::default());
    let app = Route::new()
        .at(
            "/v1/traces",
            post(poem::endpoint::make(|req: poem::Request| async move {
                let received = req.data::<Arc<Received>>().cloned();
                let bytes = req.into_body().into_bytes().await;
                let status = match (bytes, received) {
                    (Ok(b), Some(r)) => {
                        r.requests.fetch_add(1, Ordering::Relaxed);
                        r.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        StatusCode::OK
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                Response::builder()
                    .status(status)
                    .content_type("application/x-protobuf")
                    .body(Vec::<u8>::new())
            })),
        )
        .data(Arc::clone(&received));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Server::new(TcpListener::bind(("127.0.0.1", port)))
        .run_with_graceful_shutdown(
            app,
            async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            },
            None,
        )
        .await?;
    println!(
        "otlp_sink: {} requests, {} bytes",
        received.requests.load(Ordering::Relaxed),
        received.bytes.load(Ordering::Relaxed)
    );
    Ok(())
}
