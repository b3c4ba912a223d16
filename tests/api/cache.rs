use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Response;
use serde_json::Value;
use tally::config::Settings;

use crate::faulty_store::FaultyStore;
use crate::helpers::{
    TestApp, TestRedis, assert_problem, header, metric, spawn_app_with, spawn_app_with_store,
    test_settings,
};

/// Settings with short cache lifetimes and limits that never get in the way.
fn cache_settings(redis: &TestRedis, ttl: u64, stale: u64, local_ttl_ms: u64) -> Settings {
    let mut s = test_settings(redis);
    s.cache.ttl_seconds = ttl;
    s.cache.stale_seconds = stale;
    s.cache.local_ttl_ms = local_ttl_ms;
    s.cache.redis_timeout_ms = 100;
    s.limiter.read_requests = 100_000;
    s.limiter.write_requests = 100_000;
    s
}

async fn summary(app: &TestApp, t: &str, period: &str) -> Response {
    let resp = app
        .client
        .get(app.url("/api/metrics/summary"))
        .query(&[("type", t), ("period", period)])
        .send()
        .await
        .expect("sent");
    let status = resp.status();
    assert!(status == 200 || status == 503, "status {status}");
    resp
}

/// (X-Cache, Cache-Status, count) of one summary request.
async fn look(app: &TestApp, t: &str) -> (String, String, u64) {
    let resp = summary(app, t, "all").await;
    assert_eq!(resp.status(), 200);
    let x = header(&resp, "x-cache");
    let cs = header(&resp, "cache-status");
    assert!(resp.headers().get("age").is_some(), "Age header");
    let body: Value = resp.json().await.expect("json");
    (x, cs, body["count"].as_u64().expect("count"))
}

async fn post(app: &TestApp, t: &str) {
    assert_eq!(app.post_metric(&metric(t, 1.0)).await.status(), 201);
}

#[tokio::test]
async fn miss_then_memory_hit_without_any_redis_call() {
    let redis = TestRedis::start().await;
    let mut settings = cache_settings(&redis, 10, 30, 60_000);
    // The limiter's script reads with GET too: without it, every GET is the cache's.
    settings.limiter.enabled = false;
    let app = spawn_app_with(redis, settings).await;
    post(&app, "hits").await;
    let (x, cs, count) = look(&app, "hits").await;
    assert_eq!(
        (x.as_str(), cs.as_str(), count),
        ("MISS", "tally; fwd=miss; stored", 1)
    );
    let gets = app.redis.command_calls("get");
    let before = app.state.cache.stats();
    for _ in 0..5 {
        let (x, cs, _) = look(&app, "hits").await;
        assert_eq!(x, "HIT");
        assert!(
            cs.starts_with("tally; hit; ttl=") && cs.ends_with("detail=memory"),
            "{cs}"
        );
    }
    let after = app.state.cache.stats();
    assert_eq!(
        app.redis.command_calls("get"),
        gets,
        "memory hits make no Redis call"
    );
    assert_eq!(after.memory.hits - before.memory.hits, 5);
    assert_eq!(
        (after.redis.hits, after.redis.misses),
        (before.redis.hits, before.redis.misses)
    );
    assert_eq!(after.computations, 1);
    assert!(after.hit_ratio() > 0.8, "{}", after.hit_ratio());
    assert_eq!(after.memory.entries, Some(1));
}

#[tokio::test]
async fn a_second_instance_hits_in_redis() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 10, 30, 1000);
    let first = spawn_app_with(redis, settings.clone()).await;
    let second = spawn_app_with(TestRedis::unstarted(), settings).await;
    post(&first, "shared").await;
    assert_eq!(look(&first, "shared").await.0, "MISS");
    // The Redis write happens behind the response.
    let deadline = Instant::now() + Duration::from_secs(5);
    while first
        .redis
        .cli(&["exists", "tally:v2:summary:6:shared:all"])
        != "1"
    {
        assert!(Instant::now() < deadline, "entry never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (x, cs, count) = look(&second, "shared").await;
    assert_eq!(x, "HIT");
    assert!(cs.ends_with("detail=redis"), "{cs}");
    assert_eq!(
        count, 1,
        "the first instance's summary (the second holds no points)"
    );
    assert_eq!(second.state.cache.stats().computations, 0);
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 1, 0, 100);
    let app = spawn_app_with(redis, settings).await;
    post(&app, "ttl").await;
    assert_eq!(look(&app, "ttl").await.2, 1);
    post(&app, "ttl").await;
    let (x, _, count) = look(&app, "ttl").await;
    assert_eq!(
        (x.as_str(), count),
        ("HIT", 1),
        "fresh: the new point is not seen yet"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (x, _, count) = look(&app, "ttl").await;
    assert_eq!((x.as_str(), count), ("MISS", 2), "expired, recomputed");
}

#[tokio::test]
async fn a_hundred_concurrent_cold_requests_compute_once() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 10, 30, 1000);
    let store = FaultyStore::new();
    let app = spawn_app_with_store(redis, settings, store.clone()).await;
    post(&app, "cold").await;
    store.set_delay(Duration::from_millis(300));
    let responses = join_all((0..100).map(|_| summary(&app, "cold", "all"))).await;
    let statuses: Vec<String> = responses
        .iter()
        .map(|r| header(r, "cache-status"))
        .collect();
    let stored = statuses
        .iter()
        .filter(|s| *s == "tally; fwd=miss; stored")
        .count();
    let collapsed = statuses
        .iter()
        .filter(|s| *s == "tally; fwd=miss; collapsed")
        .count();
    assert_eq!((stored, collapsed), (1, 99), "{statuses:?}");
    assert_eq!(store.summaries(), 1, "exactly one store computation");
    let stats = app.state.cache.stats();
    assert_eq!((stats.computations, stats.coalesced_waiters), (1, 99));
}

#[tokio::test]
async fn stale_is_served_while_exactly_one_refresh_runs() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 1, 30, 60_000);
    let store = FaultyStore::new();
    let app = spawn_app_with_store(redis, settings, store.clone()).await;
    post(&app, "swr").await;
    assert_eq!(look(&app, "swr").await.2, 1);
    post(&app, "swr").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.set_delay(Duration::from_millis(300));
    let before = store.summaries();
    let responses = join_all((0..20).map(|_| look(&app, "swr"))).await;
    for (x, cs, count) in &responses {
        assert_eq!((x.as_str(), *count), ("STALE", 1), "{cs}");
        assert!(cs.starts_with("tally; hit; fwd=stale; ttl=-"), "{cs}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.summaries() - before, 1, "one background refresh");
    assert_eq!(app.state.cache.stats().refreshes, 1);
    let (x, _, count) = look(&app, "swr").await;
    assert_eq!((x.as_str(), count), ("HIT", 2), "refreshed");
}

#[tokio::test]
async fn stale_if_error_and_errors_are_never_cached() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 1, 30, 100);
    let store = FaultyStore::new();
    let app = spawn_app_with_store(redis, settings, store.clone()).await;
    post(&app, "sie").await;
    assert_eq!(look(&app, "sie").await.2, 1);
    store.set_failing(true);
    // Redis loses its copy (a restart without persistence): only memory has
    // one, and Redis answers "miss", so the summary is computed while the
    // request waits (a Redis that is down would let memory serve it stale
    // while a refresh runs instead).
    let key = "tally:v2:summary:3:sie:all";
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.redis.cli(&["exists", key]) != "1" {
        assert!(Instant::now() < deadline, "never stored in Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.redis.cli(&["del", key]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (x, cs, count) = look(&app, "sie").await;
    assert_eq!((x.as_str(), count), ("STALE", 1));
    assert!(cs.ends_with("detail=stale-if-error"), "{cs}");
    // No stale copy of another type: the error shows, and is not cached.
    let resp = summary(&app, "never.computed", "all").await;
    assert_problem(resp, 503).await;
    store.set_failing(false);
    let (x, cs, _) = look(&app, "never.computed").await;
    assert_eq!(
        (x.as_str(), cs.as_str()),
        ("MISS", "tally; fwd=miss; stored")
    );
}

async fn all_answered_within(app: &TestApp, bound: Duration) {
    for i in 0..10 {
        let started = Instant::now();
        let (x, _, _) = look(app, &format!("outage{}", i % 3)).await;
        assert!(["HIT", "MISS", "STALE"].contains(&x.as_str()));
        assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn redis_stopped_or_paused_never_fails_or_slows_a_summary() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 10, 30, 50);
    let mut app = spawn_app_with(redis, settings).await;
    post(&app, "outage0").await;
    all_answered_within(&app, Duration::from_secs(1)).await;
    app.redis.pause();
    all_answered_within(&app, Duration::from_millis(600)).await;
    app.redis.resume();
    app.redis.stop();
    all_answered_within(&app, Duration::from_millis(600)).await;
    app.redis.restart().await;
    // Recovery: after the watcher's next PING the cache writes to Redis again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        look(&app, "recovered").await;
        if app
            .redis
            .cli(&["exists", "tally:v2:summary:9:recovered:all"])
            == "1"
        {
            break;
        }
        assert!(Instant::now() < deadline, "cache never used Redis again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn keys_isolate_types_and_periods() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 10, 30, 1000);
    let app = spawn_app_with(redis, settings).await;
    post(&app, "a:b").await;
    post(&app, "a").await;
    post(&app, "a").await;
    assert_eq!(look(&app, "a:b").await.2, 1);
    assert_eq!(look(&app, "a").await.2, 2);
    for t in ["a:b:all", "a:all", "b", "3:a:b"] {
        assert_eq!(look(&app, t).await.2, 0, "{t}");
    }
    let resp = summary(&app, "a", "hourly").await;
    assert_eq!(
        header(&resp, "x-cache"),
        "MISS",
        "another period, another entry"
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        (body["period"].as_str(), body["count"].as_u64()),
        (Some("hourly"), Some(2))
    );
    let resp = summary(&app, "a", "60m").await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["period"], "60m",
        "the caller's spelling, from the shared entry"
    );
    // Hostile names never reach the cache.
    for t in ["a*", "a\r\nFLUSHALL", "<script>", "a b"] {
        let resp = app
            .client
            .get(app.url("/api/metrics/summary"))
            .query(&[("type", t)])
            .send()
            .await
            .expect("sent");
        assert_problem(resp, 422).await;
    }
    let keys = app
        .redis
        .cli(&["--scan", "--pattern", "tally:v2:summary:*"]);
    assert!(
        keys.lines().all(|k| k.starts_with("tally:v2:summary:")),
        "{keys}"
    );
}

/// While Redis is out, the memory copy stands in for it for the summary's
/// whole TTL (then stale-while-revalidate), not only for CACHE_LOCAL_TTL_MS:
/// the store is not asked again for every request past that.
#[tokio::test]
async fn with_redis_down_memory_answers_for_the_whole_ttl() {
    let redis = TestRedis::start().await;
    let settings = cache_settings(&redis, 1, 30, 100);
    let mut app = spawn_app_with(redis, settings).await;
    post(&app, "down").await;
    app.redis.stop();
    let (x, _, _) = look(&app, "down").await;
    assert_eq!(x, "MISS");
    let computed = app.state.cache.stats().computations;
    for _ in 0..3 {
        // Past the memory tier's own 100 ms, within the 1 s TTL.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (x, cs, _) = look(&app, "down").await;
        assert_eq!(x, "HIT", "{cs}");
        assert!(
            cs.starts_with("tally; hit;") && cs.ends_with("detail=memory"),
            "{cs}"
        );
    }
    assert_eq!(app.state.cache.stats().computations, computed);
    // Past the TTL: served stale while one refresh runs.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (x, _, _) = look(&app, "down").await;
    assert_eq!(x, "STALE");
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.cache.stats().computations == computed {
        assert!(Instant::now() < deadline, "no refresh ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.state.cache.stats().computations, computed + 1);
}

/// The `redis` breaker takes its policy from the `REDIS_BREAKER_*` settings: with a
/// threshold of 3 it stays closed through two failed cache calls and opens on the third.
#[tokio::test]
async fn the_redis_breaker_opens_at_its_configured_threshold() {
    let redis = TestRedis::start().await;
    let mut settings = cache_settings(&redis, 10, 30, 50);
    settings.limiter.enabled = false; // only the cache calls Redis
    settings.redis_breaker.failure_threshold = 3;
    settings.redis_breaker.reset_timeout_seconds = 60;
    let app = spawn_app_with(redis, settings).await;
    look(&app, "warm").await; // the first connection has settled
    app.redis.pause();
    let breaker = |status: &Value| {
        status["breakers"]
            .as_array()
            .and_then(|all| all.iter().find(|b| b["name"] == "redis"))
            .cloned()
            .expect("the redis breaker")
    };
    let mut seen = Vec::new();
    for i in 0..10 {
        look(&app, &format!("paused{i}")).await;
        let b = breaker(&app.get_json("/api/circuit-breaker/status").await);
        let state = b["state"].as_str().unwrap_or("").to_owned();
        seen.push((
            b["consecutive_failures"].as_u64().unwrap_or(0),
            state.clone(),
        ));
        if state == "open" {
            assert_eq!(b["policy"]["failure_threshold"], 3);
            assert_eq!(b["policy"]["reset_timeout_seconds"], 60);
            let reason = b["transitions"][0]["reason"].as_str().unwrap_or("");
            assert_eq!(reason, "3 consecutive failures", "{b}");
            break;
        }
    }
    app.redis.resume();
    assert_eq!(seen.last().map(|s| s.1.as_str()), Some("open"), "{seen:?}");
    // Closed while fewer than three calls had failed.
    assert!(seen.iter().all(|(n, s)| s == "open" || *n < 3), "{seen:?}");
    assert!(
        seen.iter().any(|(n, s)| s == "closed" && *n >= 1),
        "{seen:?}"
    );
}
