//! The PostgreSQL backend over HTTP, against a private PostgreSQL per test:
//! the API works the same, an outage answers 503 (never 201) and recovers by
//! itself, every acknowledged metric is stored even when the service is
//! killed, and migrations tolerate reruns and racing instances.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use sqlx::Connection;
use tally::config::Settings;
use tokio::task::{JoinError, JoinHandle};

use crate::helpers::{
    DelayProxy, TestApp, TestRedis, assert_problem, free_port, header, metric, now, spawn_app_with,
    test_settings,
};
use crate::postgres::TestPostgres;

fn settings(redis: &TestRedis, url: &str) -> Settings {
    let mut s = test_settings(redis);
    s.database.url = Some(url.to_owned());
    s.database.timeout = Duration::from_millis(500);
    s.limiter.enabled = false;
    s
}

async fn wait_ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = app.get_json("/health").await;
        if health["database_connected"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "database never ready: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored_values(url: &str) -> HashSet<u64> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let rows: Vec<(f64,)> = sqlx::query_as("SELECT value FROM metrics")
        .fetch_all(&mut conn)
        .await
        .expect("select");
    rows.into_iter().map(|(v,)| v as u64).collect()
}

/// A private PostgreSQL with a fresh database, and the service on it, ready.
pub async fn on_postgres(database: &str) -> (TestPostgres, String, TestApp) {
    let pg = TestPostgres::start();
    let url = pg.database(database).await;
    let redis = TestRedis::start().await;
    let s = settings(&redis, &url);
    let app = spawn_app_with(redis, s).await;
    wait_ready(&app).await;
    (pg, url, app)
}

/// Rows in `table`.
/// Every value the load's clients saw acknowledged (201), once the load ends.
async fn acknowledged(load: JoinHandle<Vec<Result<Vec<u64>, JoinError>>>) -> Vec<u64> {
    load.await
        .expect("load")
        .into_iter()
        .flat_map(|r| r.expect("client"))
        .collect()
}

async fn count(url: &str, table: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    n
}

#[tokio::test]
async fn the_api_works_the_same_over_postgres() {
    let (_pg, url, app) = on_postgres("api").await;
    for v in [1.0, 2.0, 6.0] {
        assert_eq!(app.post_metric(&metric("cpu", v)).await.status(), 201);
    }
    let batch = json!([metric("mem", 1.0), metric("mem", 3.0)]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    let s = app.summary("cpu", "all").await;
    assert_eq!(
        (s["count"].clone(), s["sum"].clone()),
        (json!(3), json!(9.0))
    );
    assert_eq!(
        (s["min_value"].clone(), s["max_value"].clone()),
        (json!(1.0), json!(6.0))
    );
    let p50 = s["p50"].as_f64().expect("p50");
    assert!((p50 - 2.0).abs() <= 0.02, "p50 within 1% of 2.0: {p50}");
    let types = app.get_json("/api/metrics/types").await;
    assert_eq!(types["types"][0]["type"], "cpu");
    assert_eq!(types["types"][1]["count"], 2);
    let recent = app.get_json("/api/metrics?type=cpu&limit=2").await;
    assert_eq!(recent["metrics"].as_array().map(Vec::len), Some(2));
    // A batch with one bad item stores nothing.
    let bad = json!([metric("mem", 5.0), {"timestamp": now(), "value": "x", "type": "mem"}]);
    assert_eq!(app.post_batch(&bad).await.status(), 422);
    assert_eq!(count(&url, "metrics").await, 5);
}

#[tokio::test]
async fn an_outage_answers_503_with_retry_after_never_201_and_recovers() {
    let (pg, url, app) = on_postgres("outage").await;
    assert_eq!(app.post_metric(&metric("cpu", 1.0)).await.status(), 201);
    let warm = app.summary("cpu", "all").await;
    assert_eq!(warm["count"], 1);

    pg.stop();
    for i in 0..6 {
        let started = Instant::now();
        let resp = app.post_metric(&metric("cpu", 100.0 + f64::from(i))).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "bounded: {:?}",
            started.elapsed()
        );
        assert_eq!(header(&resp, "retry-after"), "2");
        assert_problem(resp, 503).await;
    }
    // Reads are served from the cache while it lasts.
    let resp = app
        .client
        .get(app.url("/api/metrics/summary?type=cpu"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let health = app.get_json("/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["database_connected"], false);

    pg.start_server();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app.post_metric(&metric("cpu", 7.0)).await.status();
        if status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored = stored_values(&url).await;
    assert!(stored.contains(&7) && stored.contains(&1));
    assert!(
        (100..106).all(|v| !stored.contains(&v)),
        "refused writes are not stored"
    );
}

#[tokio::test]
async fn no_acknowledged_metric_is_lost_when_the_database_stops_mid_load() {
    let pg = TestPostgres::start();
    let url = pg.database("midload").await;
    let redis = TestRedis::start().await;
    let s = settings(&redis, &url);
    let app = Arc::new(spawn_app_with(redis, s).await);
    wait_ready(&app).await;
    let clients = (0..20u64).map(|c| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..60u64 {
                let v = c * 1_000 + i;
                let resp = app.post_metric(&metric("load", v as f64)).await;
                if resp.status() == 201 {
                    acked.push(v);
                }
            }
            acked
        })
    });
    let load = tokio::spawn(join_all(clients));
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.start_server();
    let acked = acknowledged(load).await;
    let stored = stored_values(&url).await;
    let lost: Vec<&u64> = acked.iter().filter(|v| !stored.contains(v)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(
        !acked.is_empty() && acked.len() < 1_200,
        "{} acked",
        acked.len()
    );
}

#[tokio::test]
async fn migrations_run_twice_and_from_two_instances_at_once() {
    let pg = TestPostgres::start();
    let url = pg.database("migrate").await;
    let (r1, r2) = (TestRedis::start().await, TestRedis::start().await);
    let (s1, s2) = (settings(&r1, &url), settings(&r2, &url));
    let (a, b) = tokio::join!(spawn_app_with(r1, s1), spawn_app_with(r2, s2));
    tokio::join!(wait_ready(&a), wait_ready(&b));
    assert_eq!(a.post_metric(&metric("cpu", 1.0)).await.status(), 201);
    drop((a, b));
    let r3 = TestRedis::start().await;
    let s3 = settings(&r3, &url);
    let c = spawn_app_with(r3, s3).await;
    wait_ready(&c).await;
    assert_eq!(c.summary("cpu", "all").await["count"], 1, "data kept");
    // One row per migration, each applied once.
    let migrations = std::fs::read_dir("src/store/postgres/migrations")
        .expect("migrations")
        .count() as i64;
    assert_eq!(count(&url, "_sqlx_migrations").await, migrations);
}

/// The real binary, so it can be killed with SIGKILL.
fn spawn_binary(url: &str, redis: &TestRedis, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .env("TALLY_ADDR", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", redis.url())
        .env("DATABASE_URL", url)
        .env("RATE_LIMIT_ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tally starts")
}

#[tokio::test]
async fn every_acknowledged_metric_survives_a_sigkill() {
    let pg = TestPostgres::start();
    let url = pg.database("sigkill").await;
    let redis = TestRedis::start().await;
    let port = free_port();
    let mut child = spawn_binary(&url, &redis, port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = client.get(format!("{base}/health")).send().await;
        if let Ok(resp) = ok {
            let h: Value = resp.json().await.unwrap_or_default();
            if h["database_connected"] == true {
                break;
            }
        }
        assert!(Instant::now() < deadline, "binary never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let clients = (0..32u64).map(|c| {
        let client = client.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10_000u64 {
                let v = c * 100_000 + i;
                let resp = client
                    .post(format!("{base}/api/metrics"))
                    .header("content-type", "application/json")
                    .body(metric("kill", v as f64).to_string())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 201 => acked.push(v),
                    Ok(_) => {}
                    Err(_) => break, // the server is gone
                }
            }
            acked
        })
    });
    let load = tokio::spawn(join_all(clients));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let acked = acknowledged(load).await;
    assert!(acked.len() > 100, "the load ran: {} acked", acked.len());

    // Restarted, the service sees every acknowledged metric.
    let mut child = spawn_binary(&url, &redis, port);
    let stored = stored_values(&url).await;
    let lost: Vec<&u64> = acked.iter().filter(|v| !stored.contains(v)).collect();
    assert!(lost.is_empty(), "{} acknowledged but lost", lost.len());
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn retention_drops_whole_partitions_and_the_dashboard_shows_the_database() {
    let pg = TestPostgres::start();
    let url = pg.database("retention").await;
    let redis = TestRedis::start().await;
    let mut s = settings(&redis, &url);
    s.store.retention = Duration::from_secs(7 * 86_400);
    let app = spawn_app_with(redis, s.clone()).await;
    wait_ready(&app).await;
    let page = app.get("/dashboard").await.text().await.expect("page");
    assert!(
        page.contains("data-dependency=\"Database\""),
        "database tile"
    );
    assert_eq!(app.post_metric(&metric("cpu", 3.0)).await.status(), 201);
    // Two points five days old: within this instance's retention, past the next one's.
    let old = (chrono::Utc::now() - chrono::Duration::days(5)).date_naive();
    let at = |t: &str| json!({"timestamp": format!("{old}T{t}Z"), "value": 1.0, "type": "cpu"});
    let batch = json!([at("12:00:00"), at("13:00:00")]);
    assert_eq!(app.post_batch(&batch).await.status(), 201);
    drop(app);
    let partitions: Vec<String> = ["metrics", "rollup_minute"]
        .iter()
        .map(|table| format!("{table}_p{}", old.format("%Y%m%d")))
        .collect();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let exists = async |conn: &mut sqlx::PgConnection, name: &str| -> bool {
        let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
            .bind(name)
            .fetch_one(conn)
            .await
            .expect("regclass");
        exists
    };
    for name in &partitions {
        assert!(exists(&mut conn, name).await, "{name} holds the old day");
    }

    let redis = TestRedis::start().await;
    let mut s2 = settings(&redis, &url);
    s2.store.retention = Duration::from_secs(86_400);
    let app = spawn_app_with(redis, s2).await;
    wait_ready(&app).await;
    for name in &partitions {
        let gone = !exists(&mut conn, name).await;
        assert!(gone, "the expired partition {name} is dropped whole");
    }
    let stats = app.state.store.stats();
    assert_eq!((stats.evicted_retention, stats.points), (2, 1));
}

#[tokio::test]
async fn ready_waits_for_the_schema_and_health_reports_the_database() {
    let pg = TestPostgres::start();
    let url = pg.database("ready").await;
    pg.stop();
    let redis = TestRedis::start().await;
    let s = settings(&redis, &url);
    let app = spawn_app_with(redis, s).await;
    // The database is down at startup: the service runs, but is not ready.
    assert_problem(app.get("/ready").await, 503).await;
    let health = app.get_json("/health").await;
    assert_eq!(health["database_connected"], false);
    assert_eq!(app.post_metric(&metric("cpu", 1.0)).await.status(), 503);
    pg.start_server();
    wait_ready(&app).await;
    assert_eq!(app.get("/ready").await.status(), 200);
    assert_eq!(app.post_metric(&metric("cpu", 1.0)).await.status(), 201);
}

/// A connection that stops answering while the schema is prepared (the
/// server never gets the statement, so `statement_timeout` cannot end it)
/// only delays readiness: the preparation is bounded on the client's clock
/// and retried on another connection. (The statement swallowed is the point
/// count that follows the migrations: a session swallowed while it holds
/// the migrator's advisory lock keeps that lock on the server until the
/// server's TCP keepalive ends it, which no client can shorten.)
#[tokio::test]
async fn a_connection_that_goes_silent_during_preparation_only_delays_readiness() {
    let pg = TestPostgres::start();
    pg.database("silent").await;
    let proxy = DelayProxy::start(pg.port, Duration::ZERO).await;
    // A statement of the preparation: the point count (from the rollups).
    proxy.swallow_once(b"SELECT NULL, NULL, NULL, partials FROM rollup_delta");
    let url = format!("postgres://postgres@127.0.0.1:{}/silent", proxy.port);
    let redis = TestRedis::start().await;
    let mut s = settings(&redis, &url);
    s.database.timeout = Duration::from_millis(200); // the bound: 15 of them
    let app = spawn_app_with(redis, s).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_problem(app.get("/ready").await, 503).await;
    wait_ready(&app).await;
    assert_eq!(app.get("/ready").await.status(), 200);
    assert_eq!(app.post_metric(&metric("cpu", 1.0)).await.status(), 201);
    drop(pg);
}

/// With no traffic at all, `/health` sees PostgreSQL stop (immediate mode, as a crash)
/// within a few seconds, names it in `dependencies`, and sees it come back.
#[tokio::test]
async fn health_sees_the_database_go_and_come_back_without_traffic() {
    let (pg, _url, app) = on_postgres("health_probe").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let health = loop {
        let h = app.get_json("/health").await;
        if h["status"] == "healthy" {
            break h;
        }
        assert!(Instant::now() < deadline, "never healthy: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let state = |h: &Value, name: &str| {
        h["dependencies"]
            .as_array()
            .and_then(|deps| deps.iter().find(|d| d["name"] == name))
            .map(|d| d["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state(&health, "database").as_deref(), Some("up"));
    assert_eq!(state(&health, "redis").as_deref(), Some("up"));
    assert!(state(&health, "upstream").is_some(), "{health}");

    pg.stop();
    let stopped = Instant::now();
    let health = loop {
        let h = app.get_json("/health").await;
        if h["database_connected"] == false {
            break h;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "still healthy: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["status"], "degraded");
    assert_eq!(state(&health, "database").as_deref(), Some("down"));

    pg.start_server();
    let restarted = Instant::now();
    loop {
        let h = app.get_json("/health").await;
        if h["database_connected"] == true {
            assert_eq!(h["status"], "healthy");
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "not back: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A write whose commit happens but whose answer is lost is told 503 (outcome unknown).
/// Retried with the same `Idempotency-Key` it is answered 201 as the first, and the
/// database holds exactly one copy; retried without a key it would hold two.
#[tokio::test]
async fn a_lost_answer_retried_with_its_key_is_stored_exactly_once() {
    let pg = TestPostgres::start();
    let url_direct = pg.database("exactly_once").await;
    let proxy = DelayProxy::start(pg.port, Duration::ZERO).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/exactly_once", proxy.port);
    let redis = TestRedis::start().await;
    let s = settings(&redis, &url);
    let app = spawn_app_with(redis, s).await;
    wait_ready(&app).await;

    // The next keyed insert reaches the server (and commits); its answer never returns.
    proxy.deliver_then_swallow_once(b"lost-answer-1");
    let body = json!({"timestamp": now(), "value": 4242.0, "type": "once"}).to_string();
    let post = || {
        app.client
            .post(app.url("/api/metrics"))
            .header("content-type", "application/json")
            .header("idempotency-key", "lost-answer-1")
            .body(body.clone())
            .send()
    };
    let first = post().await.expect("sent");
    assert_eq!(first.status(), 503, "the outcome was unknown");
    let copies = || async {
        let mut conn = sqlx::PgConnection::connect(&url_direct)
            .await
            .expect("connect");
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM metrics WHERE value = 4242")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        n
    };
    assert_eq!(copies().await, 1, "the first attempt did commit");

    let deadline = Instant::now() + Duration::from_secs(10);
    let retry = loop {
        let resp = post().await.expect("sent");
        if resp.status() == 201 {
            break resp;
        }
        assert!(
            Instant::now() < deadline,
            "the retry never went through: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(header(&retry, "idempotent-replayed"), "true");
    assert_eq!(copies().await, 1, "exactly one copy");
}
