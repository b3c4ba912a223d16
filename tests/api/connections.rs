//! Connection limits: a slowloris is closed at the header deadline while normal requests
//! are answered throughout; idle keep-alive connections close; the cap makes new
//! connections wait instead of exhausting file descriptors.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, TestRedis, spawn_app_with, test_settings};

async fn app_with(configure: impl FnOnce(&mut tally::config::Settings)) -> TestApp {
    let redis = TestRedis::start().await;
    let mut settings = test_settings(&redis);
    configure(&mut settings);
    spawn_app_with(redis, settings).await
}

fn port(app: &TestApp) -> u16 {
    app.address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// Whether the server has closed `stream` (EOF or reset), waiting up to `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_slowloris_is_closed_at_the_header_deadline_and_others_are_served() {
    let header = Duration::from_secs(2);
    let app = app_with(|s| s.server.header_timeout = header).await;
    let started = Instant::now();
    let mut loris = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", port(&app)))
            .await
            .expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: tally\r\n")
            .await
            .expect("half a head");
        loris.push(s);
    }
    // Normal requests are answered in their usual time meanwhile.
    let client = reqwest::Client::new();
    while started.elapsed() < header {
        let t = Instant::now();
        let resp = client.get(app.url("/health")).send().await.expect("health");
        assert_eq!(resp.status(), 200);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in &mut loris {
        assert!(
            closed_within(
                s,
                header + Duration::from_secs(3) - started.elapsed().min(header)
            )
            .await,
            "a half-sent request was still open after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < header + Duration::from_secs(3));
    let scrape = app.get("/metrics").await.text().await.expect("metrics");
    let line = scrape
        .lines()
        .find(|l| {
            l.starts_with("tally_http_connections_timed_out_total{reason=\"header_timeout\"}")
        })
        .expect("counted");
    let n: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(n >= 300.0, "{line}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout() {
    let keepalive = Duration::from_secs(1);
    let app = app_with(|s| s.server.keepalive_timeout = keepalive).await;
    let mut s = TcpStream::connect(("127.0.0.1", port(&app)))
        .await
        .expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: tally\r\n\r\n")
        .await
        .expect("request");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.expect("answer");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let idle = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    let waited = idle.elapsed();
    assert!(
        waited >= keepalive - Duration::from_millis(100) && waited < keepalive * 3,
        "{waited:?}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let header = Duration::from_secs(2);
    let app = app_with(|s| {
        s.server.max_connections = 3;
        s.server.header_timeout = header;
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(
            TcpStream::connect(("127.0.0.1", port(&app)))
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    // The fourth waits in the backlog until the silent three are closed at the deadline.
    let resp = reqwest::Client::new()
        .get(app.url("/health"))
        .send()
        .await
        .expect("answered once a slot is free");
    assert_eq!(resp.status(), 200);
    let waited = started.elapsed();
    assert!(waited >= header - Duration::from_millis(500), "{waited:?}");
    // (`tally_http_connections_max` is process-wide: other tests' apps set it too.)
    let scrape = app.get("/metrics").await.text().await.expect("metrics");
    assert!(scrape.contains("tally_http_connections_max "), "{scrape}");
}
