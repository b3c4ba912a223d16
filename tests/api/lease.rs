//! Quota leases: the script's grants, stamps and give-backs against a real
//! Redis, and busy clients served from leases over HTTP.

use std::time::Duration;

use futures_util::future::join_all;
use tally::config::Settings;

use crate::helpers::{TestApp, TestRedis, header, spawn_app_with, test_settings};

const SCRIPT: &str = include_str!("../../src/limiter/window.lua");

/// One script call for one client under the write policy.
struct Call {
    limit: u64,
    window_ms: u64,
    lease_ms: u64,
}

/// What the script answered for the client.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    accepted: i64,
    count: i64,
    reset_us: i64,
    leased: i64,
    lease_stamp: i64,
}

impl Call {
    fn run(&self, redis: &TestRedis, want: u32, lease: u32, back: (i64, i64, i64)) -> Answer {
        let (limit, window) = (self.limit.to_string(), (self.window_ms * 1000).to_string());
        let lease_us = (self.lease_ms * 1000).to_string();
        let args = [
            "eval".to_string(),
            SCRIPT.to_string(),
            "2".into(),
            "t:log".into(),
            "t:count".into(),
            limit.clone(),
            window.clone(),
            limit,
            window,
            lease_us,
            "0".into(),
            want.to_string(),
            lease.to_string(),
            back.0.to_string(),
            back.1.to_string(),
            back.2.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = redis.cli(&args);
        let v: Vec<i64> = out
            .lines()
            .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("reply {out}")))
            .collect();
        assert_eq!(v.len(), 5, "reply {out}");
        Answer {
            accepted: v[0],
            count: v[1],
            reset_us: v[2],
            leased: v[3],
            lease_stamp: v[4],
        }
    }
}

const NONE: (i64, i64, i64) = (0, 0, 0);

#[tokio::test]
async fn leases_come_only_with_full_acceptance_and_within_half_the_limit() {
    let redis = TestRedis::start().await;
    let c = Call {
        limit: 100,
        window_ms: 60_000,
        lease_ms: 500,
    };
    let a = c.run(&redis, 10, 30, NONE);
    assert_eq!((a.accepted, a.leased, a.count), (10, 30, 40));
    let b = c.run(&redis, 5, 30, NONE);
    assert_eq!(
        (b.accepted, b.leased, b.count),
        (5, 5, 50),
        "up to half the limit"
    );
    let d = c.run(&redis, 1, 30, NONE);
    assert_eq!(
        (d.accepted, d.leased, d.count),
        (1, 0, 51),
        "past half: none"
    );
    let e = c.run(&redis, 60, 10, NONE);
    assert_eq!(
        (e.accepted, e.leased, e.count),
        (49, 0, 100),
        "a refusal: none"
    );
    assert_eq!(redis.cli(&["get", "t:count"]), "100");
    // One entry per call and lease, not one per request.
    assert_eq!(redis.cli(&["llen", "t:log"]), "6");
    // The lease entry is stamped at its end: half a second after the call.
    let now_us = a.lease_stamp - 500_000;
    assert_eq!(a.reset_us, 60_000_000, "the oldest entry is this call's");
    let newest = redis.cli(&["lindex", "t:log", "-1"]);
    let stamp: i64 = newest
        .split(':')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("stamp");
    assert!(
        stamp >= a.lease_stamp,
        "stamps never go below the newest: {newest}"
    );
    assert!(
        stamp - now_us < 10_000_000,
        "sane clock: {stamp} vs {now_us}"
    );
}

#[tokio::test]
async fn a_leased_slot_counts_until_a_window_after_the_lease_ends() {
    let redis = TestRedis::start().await;
    let c = Call {
        limit: 10,
        window_ms: 2_000,
        lease_ms: 1_000,
    };
    // t0: one request and a lease of 4, stamped t0 + 1 s.
    assert_eq!(c.run(&redis, 1, 4, NONE).count, 5);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    // t0 + 2.3 s: the request has left the window, the lease has not (until t0 + 3 s).
    let a = c.run(&redis, 1, 0, NONE);
    assert_eq!((a.accepted, a.count), (1, 5));
    assert!(
        a.reset_us > 0 && a.reset_us <= 700_000,
        "the lease leaves first: {a:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // t0 + 3.3 s: the lease has left; the t0 + 2.3 s request still counts.
    assert_eq!(c.run(&redis, 1, 0, NONE).count, 2);
}

#[tokio::test]
async fn unused_slots_go_back_once() {
    let redis = TestRedis::start().await;
    let c = Call {
        limit: 1_000,
        window_ms: 60_000,
        lease_ms: 500,
    };
    let a = c.run(&redis, 1, 100, NONE);
    assert_eq!((a.leased, a.count), (100, 101));
    let s = a.lease_stamp;
    assert_eq!(c.run(&redis, 1, 0, (s, 100, 60)).count, 42, "60 came back");
    assert_eq!(c.run(&redis, 1, 0, (s, 100, 60)).count, 43, "not twice");
    assert!(
        redis
            .cli(&["lrange", "t:log", "0", "-1"])
            .lines()
            .any(|e| e == format!("{s}:40")),
        "the lease's entry keeps what was used"
    );
    assert_eq!(c.run(&redis, 1, 0, (s, 40, 40)).count, 4, "all of it");
    // Left: the first request's entry and the three since, each stamped at
    // the lease's end (never below the newest entry): no lease entry.
    let entries = redis.cli(&["lrange", "t:log", "0", "-1"]);
    let entries: Vec<&str> = entries.lines().collect();
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert!(
        entries[1..].iter().all(|e| *e == format!("{s}:1")),
        "{entries:?}"
    );
}

fn leasing(redis: &TestRedis, read_limit: u64) -> Settings {
    let mut s = test_settings(redis);
    s.limiter.read_requests = read_limit;
    s.limiter.lease_ms = 300;
    s
}

/// `r` of the response's `RateLimit` header.
fn remaining(resp: &reqwest::Response) -> u64 {
    let value = header(resp, "ratelimit");
    value
        .split(';')
        .find_map(|kv| kv.strip_prefix("r="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no r in {value}"))
}

/// Waits for the app's Redis connection, so no decision falls back to the
/// local window while it is being made.
async fn redis_is_up(app: &TestApp) {
    for _ in 0..100 {
        if app.state.redis.is_connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Redis did not connect");
}

/// `n` waves of `width` concurrent reads; how many were accepted.
async fn waves(app: &TestApp, n: usize, width: usize) -> u64 {
    let mut ok = 0;
    for _ in 0..n {
        let wave = join_all((0..width).map(|_| app.get("/api/metrics/types"))).await;
        ok += wave.iter().filter(|r| r.status() == 200).count() as u64;
    }
    ok
}

#[tokio::test]
async fn a_busy_client_is_served_from_leases_and_gets_its_unused_slots_back() {
    const LIMIT: u64 = 1_000_000;
    let redis = TestRedis::start().await;
    let settings = leasing(&redis, LIMIT);
    let app = spawn_app_with(redis, settings).await;
    redis_is_up(&app).await;
    let mut last = LIMIT;
    for i in 0..300 {
        let resp = app.get("/api/metrics/types").await;
        assert_eq!(resp.status(), 200);
        let r = remaining(&resp);
        assert_eq!(r, last - 1, "request {i}: remaining counts down one by one");
        last = r;
    }
    let calls = app.redis.command_calls("evalsha");
    assert!(calls <= 20, "300 requests made {calls} script calls");
    // Once the lease has ended, the next call gives its unused slots back:
    // the 301st request sees exactly 301 counted.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = app.get("/api/metrics/types").await;
    assert_eq!(remaining(&resp), LIMIT - 301);
    let metrics = app.get("/metrics").await.text().await.expect("text");
    for name in [
        "tally_rate_limit_lease_slots_granted_total",
        "tally_rate_limit_lease_slots_returned_total",
    ] {
        let counted: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{policy=\"read\"}} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(counted > 0.0, "{name} in /metrics");
    }
}

#[tokio::test]
async fn instances_holding_leases_never_exceed_the_limit_together() {
    const LIMIT: u64 = 3_000;
    let redis = TestRedis::start().await;
    let settings = leasing(&redis, LIMIT);
    let first = spawn_app_with(redis, settings.clone()).await;
    let second = spawn_app_with(TestRedis::unstarted(), settings).await;
    redis_is_up(&first).await;
    redis_is_up(&second).await;
    let (a, b) = tokio::join!(waves(&first, 34, 50), waves(&second, 34, 50));
    assert!(a + b <= LIMIT, "accepted {a} + {b}");
    // Slots still leased when the quota ran out are at most a lease per instance.
    let lease_max = LIMIT / tally::limiter::LIMIT_SHARE;
    assert!(a + b >= LIMIT - 2 * lease_max, "accepted {a} + {b}");
}
