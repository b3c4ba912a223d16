use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

const DEADLINES: Deadlines = Deadlines {
    header: Duration::from_secs(10),
    keepalive: Duration::from_secs(75),
    send: Duration::from_secs(30),
};

/// The server's side, guarded, and the client's end of a small in-memory socket.
fn pair() -> (Guarded<DuplexStream>, DuplexStream, Arc<Verdict>) {
    let (server, client) = tokio::io::duplex(256);
    let verdict = Arc::new(Verdict::default());
    (
        Guarded::new(server, DEADLINES, Arc::clone(&verdict)),
        client,
        verdict,
    )
}

async fn read_some(conn: &mut Guarded<DuplexStream>) -> io::Result<usize> {
    let mut buf = [0; 512];
    conn.read(&mut buf).await
}

#[tokio::test(start_paused = true)]
async fn half_a_head_is_cut_at_the_header_deadline() {
    let (mut conn, mut client, verdict) = pair();
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    client
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    read_some(&mut conn).await.unwrap();
    let err = read_some(&mut conn).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(verdict.get(), Some(Expired::Header));
    assert_eq!(
        opened.elapsed(),
        DEADLINES.header,
        "counted from the connection's start"
    );
}

#[tokio::test(start_paused = true)]
async fn a_complete_head_has_no_read_deadline_until_answered_then_the_idle_one() {
    let (mut conn, mut client, verdict) = pair();
    client
        .write_all(b"POST /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut conn).await.unwrap();
    // A slow handler: no bytes either way for longer than every deadline.
    let waiting = tokio::time::timeout(Duration::from_secs(300), read_some(&mut conn)).await;
    assert!(waiting.is_err(), "still waiting, not cut");
    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 64];
    let _ = client.read(&mut answer).await.unwrap();
    let idle = Instant::now();
    let err = read_some(&mut conn).await.unwrap_err();
    assert_eq!(verdict.get(), Some(Expired::Idle), "{err}");
    assert_eq!(idle.elapsed(), DEADLINES.keepalive);
}

/// hyper may not read again after a response until the client sends: the idle
/// deadline counts from the last byte written all the same, and a response that keeps
/// writing (an event stream) keeps the connection.
#[tokio::test(start_paused = true)]
async fn the_idle_deadline_counts_from_the_last_byte_written() {
    let (mut conn, mut client, verdict) = pair();
    client
        .write_all(b"GET /stream HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut conn).await.unwrap();
    let mut sink = [0; 256];
    for _ in 0..10 {
        conn.write_all(b"data: tick\n\n").await.unwrap();
        let _ = client.read(&mut sink).await.unwrap();
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    assert_eq!(verdict.get(), None, "150 s of events, never idle");
    tokio::time::sleep(Duration::from_secs(61)).await;
    let err = read_some(&mut conn).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(verdict.get(), Some(Expired::Idle));
}

#[tokio::test(start_paused = true)]
async fn the_next_request_has_the_header_deadline_from_its_first_byte() {
    let (mut conn, mut client, verdict) = pair();
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    read_some(&mut conn).await.unwrap();
    conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        .await
        .unwrap();
    let idle = tokio::time::timeout(Duration::from_secs(60), read_some(&mut conn)).await;
    assert!(idle.is_err(), "idle, within the keep-alive");
    client.write_all(b"GET / HT").await.unwrap();
    read_some(&mut conn).await.unwrap();
    let started = Instant::now();
    read_some(&mut conn).await.unwrap_err();
    assert_eq!(verdict.get(), Some(Expired::Header));
    assert_eq!(started.elapsed(), DEADLINES.header);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_at_the_send_deadline() {
    let (mut conn, mut client, verdict) = pair();
    client
        .write_all(b"GET /stream HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    read_some(&mut conn).await.unwrap();
    let started = Instant::now();
    let event = [b'x'; 100];
    let err = loop {
        if let Err(e) = conn.write_all(&event).await {
            break e;
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(verdict.get(), Some(Expired::Send));
    assert_eq!(started.elapsed(), DEADLINES.send);
}

#[tokio::test(start_paused = true)]
async fn http2_gets_only_the_idle_deadline() {
    let (mut conn, mut client, verdict) = pair();
    client
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04")
        .await
        .unwrap();
    read_some(&mut conn).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_secs(60), read_some(&mut conn)).await;
    assert!(waiting.is_err(), "frames, not a head: no header deadline");
    read_some(&mut conn).await.unwrap_err();
    assert_eq!(verdict.get(), Some(Expired::Idle));
}

#[test]
fn the_head_ends_at_its_first_empty_line_across_reads() {
    let mut tail = [0; 3];
    assert!(!ends_head(&mut tail, b"GET / HTTP/1.1\r\nHost: x\r"));
    assert!(!ends_head(&mut tail, b"\n"));
    assert!(ends_head(&mut tail, b"\r\n"));
    let mut tail = [0; 3];
    assert!(ends_head(&mut tail, b"GET / HTTP/1.1\nHost: x\n\n"));
    let mut tail = [0; 3];
    assert!(!ends_head(&mut tail, b"GET / HTTP/1.1\r\nX: 1\r\n"));
}
