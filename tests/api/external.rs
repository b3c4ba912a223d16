use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use tally::breaker::BreakerState;
use tally::config::{AdminTokens, Settings};
use tally::upstream::{SimulatorConfig, SimulatorMode};

use crate::helpers::{TestApp, TestRedis, assert_problem, spawn_app_with, test_settings};

const TOKEN: &str = "alice-test-token-0123456789";

fn settings(redis: &TestRedis) -> Settings {
    let mut s = test_settings(redis);
    s.limiter.read_requests = 100_000;
    s.upstream.simulator_failure_rate = 0.0;
    s.upstream.simulator_latency_ms = 0;
    s.upstream.timeout_ms = 500;
    s.breaker.reset_timeout_seconds = 1;
    s.admin.tokens = AdminTokens(vec![("alice".into(), TOKEN.into())]);
    s
}

async fn app_with(f: impl FnOnce(&mut Settings)) -> TestApp {
    let redis = TestRedis::start().await;
    let mut s = settings(&redis);
    f(&mut s);
    spawn_app_with(redis, s).await
}

fn simulate(app: &TestApp, mode: SimulatorMode, latency_ms: u64) {
    let sim = &app.state.upstream.simulator;
    sim.configure(SimulatorConfig {
        failure_rate: 0.0,
        latency_ms,
        mode,
    })
    .expect("valid config");
}

fn upstream_calls(app: &TestApp) -> u64 {
    app.state.upstream.simulator.requests()
}

async fn external(app: &TestApp) -> reqwest::Response {
    app.get("/api/external").await
}

#[tokio::test]
async fn a_healthy_upstream_answers_through_the_breaker_with_the_traceparent() {
    let app = app_with(|_| {}).await;
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let resp = app
        .client
        .get(app.url("/api/external"))
        .header("traceparent", tp)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["source"], "upstream");
    assert!(body["data"]["value"].is_number());
    assert_eq!(
        app.state.upstream.simulator.last_traceparent().as_deref(),
        Some(tp)
    );
}

#[tokio::test]
async fn failures_give_502_then_the_open_breaker_answers_503_without_calling() {
    let app = app_with(|s| s.breaker.reset_timeout_seconds = 30).await;
    simulate(&app, SimulatorMode::Failing, 0);
    for _ in 0..5 {
        let problem = assert_problem(external(&app).await, 502).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("breaker 'upstream'")
        );
    }
    let calls = upstream_calls(&app);
    for _ in 0..20 {
        let started = Instant::now();
        let resp = external(&app).await;
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "fast rejection"
        );
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("secs");
        assert!((29..=30).contains(&retry), "{retry}");
        let problem = assert_problem(resp, 503).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("is open")
        );
    }
    assert_eq!(
        upstream_calls(&app),
        calls,
        "the simulator saw no call while open"
    );
}

#[tokio::test]
async fn a_slow_upstream_gives_504() {
    let app = app_with(|s| s.upstream.timeout_ms = 200).await;
    simulate(&app, SimulatorMode::Healthy, 1_000);
    let started = Instant::now();
    assert_problem(external(&app).await, 504).await;
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn two_hundred_concurrent_failures_open_the_breaker_exactly_once() {
    let app = app_with(|s| s.breaker.reset_timeout_seconds = 30).await;
    simulate(&app, SimulatorMode::Failing, 20);
    let statuses: Vec<u16> = join_all((0..200).map(|_| external(&app)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 502 || *s == 503),
        "{statuses:?}"
    );
    let breaker = &app.state.upstream.breaker;
    let opened = breaker
        .transitions()
        .iter()
        .filter(|t| t.from == BreakerState::Closed && t.to == BreakerState::Open)
        .count();
    assert_eq!(opened, 1, "{:?}", breaker.transitions());
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test]
async fn half_open_admits_exactly_the_permitted_probes() {
    let app = app_with(|s| s.breaker.half_open_permits = 2).await;
    simulate(&app, SimulatorMode::Failing, 0);
    for _ in 0..5 {
        external(&app).await;
    }
    assert_eq!(app.state.upstream.breaker.state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    simulate(&app, SimulatorMode::Healthy, 300);
    let before = upstream_calls(&app);
    let statuses: Vec<u16> = join_all((0..30).map(|_| external(&app)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        upstream_calls(&app) - before,
        2,
        "exactly two probes reached the upstream"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2);
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 28);
    assert_eq!(
        app.state.upstream.breaker.state(),
        BreakerState::Closed,
        "both probes succeeded"
    );
}

async fn admin(app: &TestApp, token: Option<&str>, path: &str, body: Value) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("sent")
}

#[tokio::test]
async fn admin_actions_need_the_right_token_and_are_audited() {
    let app = app_with(|_| {}).await;
    let force = json!({"action": "force_open"});
    let anonymous = admin(&app, None, "/admin/breakers/upstream", force.clone()).await;
    assert_eq!(
        crate::helpers::header(&anonymous, "www-authenticate"),
        "Bearer realm=\"tally admin\""
    );
    assert_problem(anonymous, 401).await;
    let wrong = admin(
        &app,
        Some("not-the-token-at-all"),
        "/admin/breakers/upstream",
        force.clone(),
    );
    assert_problem(wrong.await, 403).await;
    assert_eq!(
        app.state.upstream.breaker.state(),
        BreakerState::Closed,
        "nothing changed"
    );

    let resp = admin(&app, Some(TOKEN), "/admin/breakers/upstream", force).await;
    assert_eq!(resp.status(), 200);
    let status: Value = resp.json().await.expect("json");
    assert_eq!(status["state"], "forced_open");
    let calls = upstream_calls(&app);
    assert_problem(external(&app).await, 503).await;
    assert_eq!(upstream_calls(&app), calls);

    let reset = admin(
        &app,
        Some(TOKEN),
        "/admin/breakers/upstream",
        json!({"action": "reset"}),
    );
    assert_eq!(reset.await.status(), 200);
    assert_eq!(external(&app).await.status(), 200);

    let bad = admin(
        &app,
        Some(TOKEN),
        "/admin/breakers/upstream",
        json!({"action": "explode"}),
    );
    assert_problem(bad.await, 422).await;
    let missing = admin(
        &app,
        Some(TOKEN),
        "/admin/breakers/nope",
        json!({"action": "reset"}),
    );
    assert_problem(missing.await, 404).await;

    let audit: Value = app
        .client
        .get(app.url("/admin/audit"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let entries = audit["entries"].as_array().expect("entries");
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["who"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(actions, [("reset", "alice"), ("force_open", "alice")]);

    let status: Value = app
        .get("/api/circuit-breaker/status")
        .await
        .json()
        .await
        .expect("json");
    let upstream = status["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .find(|b| b["name"] == "upstream")
        .expect("the upstream breaker");
    let reasons: Vec<&str> = upstream["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| t["reason"].as_str().unwrap_or(""))
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("forced open by alice")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn admin_is_off_without_tokens_and_the_simulator_is_configurable() {
    let off = app_with(|s| s.admin.tokens = AdminTokens::default()).await;
    let resp = off
        .client
        .put(off.url("/admin/simulator"))
        .bearer_auth(TOKEN)
        .json(&json!({"failure_rate": 1.0, "latency_ms": 0, "mode": "healthy"}))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, 403).await;

    let app = app_with(|_| {}).await;
    let put = |body: Value| {
        app.client
            .put(app.url("/admin/simulator"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let resp = put(json!({"failure_rate": 1.5, "latency_ms": 0, "mode": "healthy"}))
        .await
        .expect("sent");
    assert_problem(resp, 422).await;
    let resp = put(json!({"failure_rate": 1.0, "latency_ms": 0, "mode": "healthy"}))
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    assert_problem(external(&app).await, 502).await;
}

#[tokio::test]
async fn with_redis_stopped_its_breaker_opens_and_redis_is_skipped_at_once() {
    let mut app = app_with(|s| s.limiter.redis_timeout_ms = 200).await;
    assert_eq!(
        app.post_metric(&crate::helpers::metric("rb", 1.0))
            .await
            .status(),
        201
    );
    app.redis.stop();
    // The first call after the stop finds out (bounded by the timeout)...
    assert_eq!(
        app.post_metric(&crate::helpers::metric("rb", 1.0))
            .await
            .status(),
        201
    );
    let redis = app.state.breakers.get("redis").expect("the redis breaker");
    assert!(redis.state().is_open(), "{:?}", redis.state());
    // ...then limiter and cache skip Redis without waiting on it.
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(
            app.post_metric(&crate::helpers::metric("rb", 1.0))
                .await
                .status(),
            201
        );
        assert_eq!(app.get("/api/metrics/summary?type=rb").await.status(), 200);
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
    }
    let status: Value = app
        .get("/api/circuit-breaker/status")
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = status["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .map(|b| b["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["redis", "upstream"]);
    assert!(
        status["breakers"][0]["counts"]["rejected"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}
