use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{TestRedis, free_port, metric, spawn_app};

#[tokio::test]
async fn shutdown_finishes_promptly_and_refuses_new_connections() {
    let app = spawn_app().await;
    assert_eq!(app.post_metric(&metric("bye", 1.0)).await.status(), 201);
    let address = app.address.clone();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.shutdown())
        .await
        .expect("shutdown within the bound")
        .expect("clean stop");
    assert!(started.elapsed() < Duration::from_secs(5));
    let client = reqwest::Client::new();
    assert!(
        client
            .get(format!("{address}/health"))
            .send()
            .await
            .is_err()
    );
}

#[test]
fn the_binary_stops_cleanly_on_sigterm() {
    let redis = TestRedis::unstarted();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .env_clear()
        .env("TALLY_ADDR", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", redis.url())
        .env("TALLY_SHUTDOWN_DELAY", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tally starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tally did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let signalled = Instant::now();
    // During the shutdown delay it still serves, new connections too, but is not ready,
    // and every answer closes its connection.
    std::thread::sleep(Duration::from_millis(200));
    let get = |path: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            reqwest::get(format!("http://127.0.0.1:{port}{path}"))
                .await
                .map(|r| {
                    let close = r.headers().get("connection").is_some_and(|v| v == "close");
                    (r.status().as_u16(), close)
                })
                .expect("still served during the shutdown delay")
        })
    };
    assert_eq!(get("/ready"), (503, true));
    assert_eq!(get("/health"), (200, true));
    assert!(signalled.elapsed() < Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "tally did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One line naming the variable and its flag, the value and the rule (the OTLP
/// exporter's own variables: the value and the rule).
#[test]
fn invalid_settings_stop_startup_with_one_clear_line() {
    for (var, value, rule) in [
        ("TALLY_MAX_POINTS", "lots", "invalid digit"),
        ("TALLY_RETENTION", "0s", "greater than zero"),
        ("TALLY_ADDR", "nowhere", "socket address"),
        ("LOG_FORMAT", "xml", "must be one of text, json"),
        ("REDIS_URL", "http://example", "redis://"),
        (
            "REDIS_URL",
            "redis-sentinel://127.0.0.1:26379/0",
            "sentinel service name",
        ),
        ("CIRCUIT_BREAKER_FAILURE_RATE", "2", "between 0 and 1"),
        ("TALLY_MAX_MEMORY", "lots", "256MiB"),
        ("DATABASE_URL", "mysql://nobody@127.0.0.1/x", "postgres://"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "otlp"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "collector:4318",
            "http://",
        ),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
            .env_clear()
            .env("TALLY_ADDR", "127.0.0.1:0")
            .env(var, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tally runs");
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{var}={value} was accepted: tally kept running");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{var}: {stderr}");
        assert!(
            stderr.contains(value),
            "{var}: names the bad value: {stderr}"
        );
        assert!(stderr.contains(rule), "{var}: says the rule: {stderr}");
        if !var.starts_with("OTEL_") {
            assert!(
                stderr.starts_with(&format!("tally: {var} (--")),
                "{var}: names the variable and its flag: {stderr}"
            );
        }
    }
}

/// A secret setting is not repeated in the error: a URL without its password, a token
/// list not at all.
#[test]
fn invalid_secrets_are_not_repeated() {
    for (var, value, shown, hidden) in [
        (
            "DATABASE_URL",
            "mysql://app:s3cret@db/x",
            "mysql://app:***@db/x",
            "s3cret",
        ),
        ("ADMIN_TOKENS", "ops:short-s3cret", "(not shown)", "s3cret"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tally"))
            .env_clear()
            .env(var, value)
            .output()
            .expect("tally runs");
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(shown), "{var}: {stderr}");
        assert!(
            !stderr.contains(hidden),
            "{var} leaked its secret: {stderr}"
        );
    }
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "TALLY_ADDR",
        "REDIS_URL",
        "TALLY_RETENTION",
        "TALLY_MAX_POINTS",
        "TALLY_MAX_BODY_BYTES",
        "TALLY_MAX_FUTURE_SKEW",
        "LOG_FORMAT",
        "RUST_LOG",
    ] {
        assert!(help.contains(var), "--help names {var}");
    }
    assert!(help.contains("[default: 127.0.0.1:8000]"));
}

#[tokio::test]
async fn tally_simulator_serves_the_upstream_alone() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .env_clear()
        .args(["simulator", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--simulator-failure-rate", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tally simulator starts");
    let url = format!("http://127.0.0.1:{port}/simulator/data");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body: serde_json::Value = loop {
        if let Ok(resp) = reqwest::get(&url).await {
            break resp.json().await.expect("json");
        }
        assert!(Instant::now() < deadline, "simulator did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(body["value"].is_number());
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "simulator did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
