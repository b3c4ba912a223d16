use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestRedis, metric, spawn_app, spawn_app_with, test_settings};

async fn health(app: &crate::helpers::TestApp) -> Value {
    let resp = app.get("/health").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// Polls `/health` until `redis_connected` is `want`, for up to `secs`.
async fn wait_for_redis(app: &crate::helpers::TestApp, want: bool, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let body = health(app).await;
        if body["redis_connected"] == want || tokio::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn healthy_with_redis() {
    let app = spawn_app().await;
    let body = wait_for_redis(&app, true, 5).await;
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["redis_connected"], true);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    assert_eq!(app.get("/ready").await.status(), 200);
}

#[tokio::test]
async fn starts_degraded_without_redis_and_recovers_when_it_appears() {
    let redis = TestRedis::unstarted();
    let settings = test_settings(&redis);
    let app = spawn_app_with(redis, settings).await;
    let body = health(&app).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["redis_connected"], false);
    // The API works without Redis.
    assert_eq!(app.post_metric(&metric("noredis", 1.0)).await.status(), 201);
    assert_eq!(app.get("/ready").await.status(), 200);

    let mut app = app;
    app.redis.restart().await;
    let body = wait_for_redis(&app, true, 15).await;
    assert_eq!(body["status"], "healthy", "reconnected by itself");
}

#[tokio::test]
async fn losing_redis_mid_run_degrades_without_failing_requests() {
    let mut app = spawn_app().await;
    wait_for_redis(&app, true, 5).await;
    app.redis.stop();
    let body = wait_for_redis(&app, false, 5).await;
    assert_eq!(body["status"], "degraded");
    let started = tokio::time::Instant::now();
    assert_eq!(
        app.post_metric(&metric("still.up", 1.0)).await.status(),
        201
    );
    assert_eq!(app.summary("still.up", "all").await["count"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no request waits on Redis"
    );
    app.redis.restart().await;
    assert_eq!(wait_for_redis(&app, true, 15).await["status"], "healthy");
}
