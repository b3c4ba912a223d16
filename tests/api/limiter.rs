use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Response;
use tally::config::{FailMode, Settings, TrustedProxies};
use tally::limiter::{ClientKey, PolicyName, RedisWindow};

use crate::helpers::{
    DelayProxy, LIMITER_TIMEOUT_MS, TestApp, TestRedis, assert_problem, header, metric,
    spawn_app_with, test_settings,
};

/// No request may take longer than this while Redis is stopped or paused.
const OUTAGE_BOUND: Duration = Duration::from_millis(LIMITER_TIMEOUT_MS * 3);

fn limited(redis: &TestRedis, limit: u64, window_secs: u64) -> Settings {
    let mut s = test_settings(redis);
    s.limiter.write_requests = limit;
    s.limiter.write_window_seconds = window_secs;
    s.limiter.read_requests = limit;
    s.limiter.read_window_seconds = window_secs;
    s
}

async fn post(app: &TestApp, xff: Option<&str>) -> Response {
    let mut req = app
        .client
        .post(app.url("/api/metrics"))
        .header("content-type", "application/json")
        .body(metric("limited", 1.0).to_string());
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.expect("sent")
}

async fn burst(app: &TestApp, n: usize) -> (usize, usize) {
    let statuses = join_all((0..n).map(|_| post(app, None))).await;
    let ok = statuses.iter().filter(|r| r.status() == 201).count();
    let limited = statuses.iter().filter(|r| r.status() == 429).count();
    (ok, limited)
}

/// The `r` and `t` parameters of a `RateLimit` header.
fn remaining_and_reset(value: &str) -> (u64, u64) {
    let param = |p: &str| {
        value
            .split(';')
            .find_map(|kv| kv.strip_prefix(p))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {p} in {value}"))
    };
    (param("r="), param("t="))
}

/// The Redis key counting `client`'s writes.
pub fn write_count(client: &str) -> String {
    let ip = client.parse().expect("an address");
    let [_, count] = RedisWindow::keys(PolicyName::Write, ClientKey::of(ip));
    count
}

#[tokio::test]
async fn concurrent_burst_gets_exactly_the_limit() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 50, 60);
    let app = spawn_app_with(redis, settings).await;
    let (ok, limited) = burst(&app, 80).await;
    assert_eq!((ok, limited), (50, 30));
    assert_eq!(
        app.redis.cli(&["get", &write_count("127.0.0.1")]),
        "50",
        "rejections are not counted"
    );
    assert_eq!(app.summary("limited", "all").await["count"], 50);
}

#[tokio::test]
async fn two_instances_sharing_redis_accept_exactly_the_limit_in_total() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 40, 60);
    let first = spawn_app_with(redis, settings.clone()).await;
    let second = spawn_app_with(TestRedis::unstarted(), settings).await;
    let (a, b) = tokio::join!(burst(&first, 40), burst(&second, 40));
    assert_eq!(a.0 + b.0, 40, "accepted across instances: {a:?} {b:?}");
    assert_eq!(a.1 + b.1, 40);
}

#[tokio::test]
async fn quota_returns_as_each_request_leaves_the_window() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 3, 3);
    let app = spawn_app_with(redis, settings).await;
    assert_eq!(burst(&app, 2).await, (2, 0));
    // Both were counted before their responses came back.
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(post(&app, None).await.status(), 201);
    let refused = post(&app, None).await;
    assert_eq!(refused.status(), 429);
    // The two first requests leave at t0 + 3 s: about 1.5 s from now.
    assert_eq!(header(&refused, "retry-after"), "2");
    let wait = Duration::from_millis(3100).saturating_sub(t0.elapsed());
    tokio::time::sleep(wait).await;

    // Two units came back (not all three: the third request is still counted).
    assert_eq!(burst(&app, 3).await, (2, 1));
}

#[tokio::test]
async fn headers_are_present_and_consistent() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 3, 30);
    let app = spawn_app_with(redis, settings).await;
    for expected in [2, 1, 0] {
        let resp = post(&app, None).await;
        assert_eq!(resp.status(), 201);
        assert_eq!(header(&resp, "ratelimit-policy"), r#""write";q=3;w=30"#);
        let state = header(&resp, "ratelimit");
        assert!(state.starts_with(r#""write";"#), "{state}");
        let (r, t) = remaining_and_reset(&state);
        assert_eq!(r, expected);
        assert!((1..=30).contains(&t));
    }
    let refused = post(&app, None).await;
    let retry: u64 = header(&refused, "retry-after")
        .parse()
        .expect("Retry-After in seconds");
    let (r, t) = remaining_and_reset(&header(&refused, "ratelimit"));
    assert_eq!(
        (r, t),
        (0, retry),
        "Retry-After matches the reset of RateLimit"
    );
    assert!((29..=30).contains(&retry));
    let problem = assert_problem(refused, 429).await;
    assert_eq!(problem["type"], "urn:tally:problem:rate-limited");

    // Reads have their own policy; health and docs are not limited.
    let read = app.get("/api/metrics/types").await;
    assert_eq!(header(&read, "ratelimit-policy"), r#""read";q=3;w=30"#);
    for _ in 0..10 {
        let health = app.get("/health").await;
        assert_eq!(health.status(), 200);
        assert!(health.headers().get("ratelimit").is_none());
    }
    assert_eq!(app.get("/openapi.json").await.status(), 200);
}

#[tokio::test]
async fn spoofed_forwarded_for_gets_no_extra_quota() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 5, 60);
    let app = spawn_app_with(redis, settings).await;
    let mut ok = 0;
    for i in 0..20 {
        if post(&app, Some(&format!("203.0.113.{i}"))).await.status() == 201 {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "the peer is the client, whatever the header says");
}

/// Limited to `limit` per minute, with every loopback peer a trusted proxy.
async fn behind_a_loopback_proxy(limit: u64) -> TestApp {
    let redis = TestRedis::start().await;
    let mut settings = limited(&redis, limit, 60);
    settings.limiter.trusted_proxies = TrustedProxies(vec!["127.0.0.0/8".parse().expect("cidr")]);
    spawn_app_with(redis, settings).await
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited() {
    let app = behind_a_loopback_proxy(2).await;
    // The leftmost entry is client-written and ignored; the rightmost untrusted one counts.
    for _ in 0..2 {
        assert_eq!(
            post(&app, Some("6.6.6.6, 198.51.100.1")).await.status(),
            201
        );
    }
    assert_eq!(
        post(&app, Some("7.7.7.7, 198.51.100.1")).await.status(),
        429
    );
    assert_eq!(
        post(&app, Some("198.51.100.2")).await.status(),
        201,
        "another client"
    );
    assert_eq!(app.redis.cli(&["get", &write_count("198.51.100.1")]), "2");
}

/// A proxy that sets X-Forwarded-For (the default FORWARDED_HEADER) passes a
/// client's own `Forwarded` header on untouched: rotating it must not buy the
/// client fresh quota.
#[tokio::test]
async fn behind_a_trusted_proxy_a_client_written_forwarded_header_is_ignored() {
    let app = behind_a_loopback_proxy(2).await;
    let mut statuses = Vec::new();
    for i in 1..=4 {
        let resp = app
            .client
            .post(app.url("/api/metrics"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", "198.51.100.9")
            .header("forwarded", format!("for=203.0.113.{i}"))
            .body(metric("limited", 1.0).to_string())
            .send()
            .await
            .expect("sent");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 429, 429]);
    assert_eq!(app.redis.cli(&["get", &write_count("198.51.100.9")]), "2");
    assert_eq!(
        app.redis
            .cli(&["keys", "tally:v3:ratelimit:*:write:203.*:count"]),
        ""
    );
}

/// Every request of the burst is answered within `bound`.
async fn timed_burst(app: &TestApp, n: usize, bound: Duration) -> (usize, usize) {
    let mut ok = 0;
    let mut limited = 0;
    for _ in 0..n {
        let started = Instant::now();
        let status = post(app, None).await.status();
        assert!(
            started.elapsed() < bound,
            "answered in {:?}",
            started.elapsed()
        );
        match status.as_u16() {
            201 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    (ok, limited)
}

fn counted(app: &TestApp) -> u64 {
    app.redis
        .cli(&["get", &write_count("127.0.0.1")])
        .parse()
        .unwrap_or(0)
}

/// Posts until a request is accepted and counted by Redis: the limiter goes
/// back to Redis after the health watcher's next good PING. Requests the local
/// window refuses meanwhile are counted nowhere. Returns Redis' count then.
async fn wait_until_redis_decides(app: &TestApp) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let before = counted(app);
        let status = post(app, None).await.status();
        let after = counted(app);
        if status == 201 && after == before + 1 {
            return after;
        }
        assert_eq!(after, before, "a refused request was counted");
        assert!(
            Instant::now() < deadline,
            "the limiter did not go back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_stopped_mid_run_falls_back_to_local_and_comes_back() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 5, 60);
    let mut app = spawn_app_with(redis, settings).await;
    assert_eq!(timed_burst(&app, 2, Duration::from_secs(1)).await, (2, 0));
    app.redis.stop();
    // Local limiter, same policy, its own count: exactly 5 of 8, none slow.
    assert_eq!(timed_burst(&app, 8, OUTAGE_BOUND).await, (5, 3));
    app.redis.restart().await;
    assert_eq!(wait_until_redis_decides(&app).await, 1);
    // Redis decides again: a fresh server, so its own key fills to the limit.
    assert_eq!(timed_burst(&app, 5, Duration::from_secs(1)).await, (4, 1));
    assert_eq!(app.redis.cli(&["get", &write_count("127.0.0.1")]), "5");
}

#[tokio::test]
async fn redis_paused_mid_run_falls_back_without_waiting() {
    let redis = TestRedis::start().await;
    let settings = limited(&redis, 4, 60);
    let app = spawn_app_with(redis, settings).await;
    assert_eq!(timed_burst(&app, 1, Duration::from_secs(1)).await, (1, 0));
    app.redis.pause();
    // The first decision waits the Redis timeout; the rest skip Redis.
    assert_eq!(timed_burst(&app, 7, OUTAGE_BOUND).await, (4, 3));
    app.redis.resume();
    // Back on Redis, which still holds the request from before the pause, and
    // possibly the one whose decision timed out (Redis ran it on waking).
    let held = wait_until_redis_decides(&app).await;
    assert!((2..=3).contains(&held), "{held}");
    let left = 4 - held as usize;
    assert_eq!(
        timed_burst(&app, left + 1, Duration::from_secs(1)).await,
        (left, 1)
    );
    assert_eq!(app.redis.cli(&["get", &write_count("127.0.0.1")]), "4");
}

/// Redis answers every call within the bound, but a decision that arrives
/// while a call is in flight waits for it and then for its own: about two
/// round trips, past the bound. That decision falls back on its own; it must
/// not open the shared `redis` breaker (which took Redis away from every
/// request, the cache's included, and flapped between backends).
#[tokio::test]
async fn a_slow_redis_that_answers_within_the_bound_keeps_the_breaker_closed() {
    let redis = TestRedis::start().await;
    // About 100 ms a round trip against a 180 ms bound.
    let proxy = DelayProxy::start(redis.port, Duration::from_millis(50)).await;
    let mut settings = limited(&redis, 1_000_000, 60);
    settings.redis.url = proxy.url();
    settings.redis.timeout = Duration::from_millis(500);
    settings.limiter.redis_timeout_ms = 180;
    settings.limiter.lease_ms = 0; // one script call per decision
    let app = spawn_app_with(redis, settings).await;
    // (The first call may open it: connecting and loading the script take
    // more round trips than the bound allows.)
    wait_until_redis_decides(&app).await;
    let breaker = app.state.breakers.get("redis").expect("the redis breaker");
    let before = breaker.transitions();
    let counted_before = counted(&app);

    // Waves 15 ms apart, so most decisions arrive while a call is in flight.
    let waves = (0..12).map(|i| {
        let app = &app;
        async move {
            tokio::time::sleep(Duration::from_millis(15 * i)).await;
            join_all((0..8).map(|_| post(app, None))).await
        }
    });
    for wave in join_all(waves).await {
        for resp in wave {
            assert_eq!(resp.status(), 201);
        }
    }
    let after = breaker.transitions();
    assert_eq!(
        after.len(),
        before.len(),
        "the redis breaker moved during the burst: {after:?}"
    );
    assert!(
        counted(&app) > counted_before,
        "Redis decided none of the burst"
    );
}

#[tokio::test]
async fn fail_modes_open_and_closed() {
    for (mode, status) in [(FailMode::Open, 201), (FailMode::Closed, 503)] {
        let redis = TestRedis::unstarted();
        let mut settings = limited(&redis, 1, 60);
        settings.limiter.fail_mode = mode;
        let app = spawn_app_with(redis, settings).await;
        for _ in 0..3 {
            let resp = post(&app, None).await;
            assert_eq!(resp.status().as_u16(), status, "{mode:?}");
            assert!(
                resp.headers().get("ratelimit").is_none(),
                "no window decided"
            );
            if mode == FailMode::Closed {
                assert_eq!(header(&resp, "retry-after"), "1");
                assert_problem(resp, 503).await;
            }
        }
    }
}

#[tokio::test]
async fn disabled_limiter_adds_no_headers() {
    let redis = TestRedis::start().await;
    let mut settings = limited(&redis, 1, 60);
    settings.limiter.enabled = false;
    let app = spawn_app_with(redis, settings).await;
    for _ in 0..5 {
        let resp = post(&app, None).await;
        assert_eq!(resp.status(), 201);
        assert!(resp.headers().get("ratelimit-policy").is_none());
    }
}

/// Waits for `/ready` to answer 200 (as a load balancer's health check does).
async fn ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if app.get("/ready").await.status() == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A burst sent the moment `/ready` says 200, to two fresh instances sharing Redis, is
/// decided by Redis: the quota is exact across both, its keys are in Redis, and the
/// `redis` breaker never opened (not being connected yet is the start state). Redis sits
/// 40 ms away each way, so connecting takes a while, as over a real network.
#[tokio::test]
async fn a_burst_right_after_ready_is_decided_by_redis_on_both_instances() {
    let redis = TestRedis::start().await;
    let far = crate::helpers::DelayProxy::start(redis.port, Duration::from_millis(40)).await;
    let mut settings = limited(&redis, 15, 60);
    settings.redis.url = far.url();
    settings.redis.timeout = Duration::from_millis(400);
    let first = spawn_app_with(redis, settings.clone()).await;
    let second = spawn_app_with(TestRedis::unstarted(), settings).await;
    tokio::join!(ready(&first), ready(&second));
    let (a, b) = tokio::join!(burst(&first, 15), burst(&second, 15));
    assert_eq!(a.0 + b.0, 15, "accepted across instances: {a:?} {b:?}");
    assert_eq!(first.redis.cli(&["get", &write_count("127.0.0.1")]), "15");
    for app in [&first, &second] {
        let breaker = app.state.breakers.get("redis").expect("the redis breaker");
        assert!(
            breaker.transitions().is_empty(),
            "the redis breaker moved: {:?}",
            breaker.transitions()
        );
        let stats = app.state.limiter.as_ref().expect("limiter").stats();
        assert_eq!(stats.backend, Some(tally::limiter::Backend::Redis));
    }
}
