//! tally against a real Redis Cluster and a real Sentinel-managed primary: exact limits
//! across shards, the cache shared by instances, and failovers that fail no request.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tally::config::{Settings, TrustedProxies};

use crate::helpers::{TestApp, TestRedis, header, metric, spawn_app_with, test_settings};
use crate::tls_redis::TestTlsRedis;
use crate::topology::{SENTINEL_SERVICE, TestCluster, TestSentinel, cli, wait_for};

/// Settings for an app on `url`, trusting loopback's X-Forwarded-For, with every decision
/// made by Redis (no leases).
fn settings(url: String, limit: u64) -> Settings {
    let mut s = test_settings(&TestRedis::unstarted());
    s.redis.url = url;
    s.redis.timeout = Duration::from_millis(500);
    s.limiter.write_requests = limit;
    s.limiter.read_requests = 1_000_000;
    s.limiter.lease_ms = 0;
    s.limiter.trusted_proxies = TrustedProxies(vec!["127.0.0.0/8".parse().expect("cidr")]);
    s
}

async fn post_as(app: &TestApp, client: &str) -> u16 {
    app.client
        .post(app.url("/api/metrics"))
        .header("content-type", "application/json")
        .header("x-forwarded-for", client)
        .body(metric("cluster", 1.0).to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn count_key(client: &str) -> String {
    crate::limiter::write_count(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_exactly_its_quota_across_the_shards() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .expect("cluster");
    let app = spawn_app_with(TestRedis::unstarted(), settings(cluster.url(), 5)).await;
    let clients: Vec<String> = (1..=24).map(|i| format!("198.51.100.{i}")).collect();
    let requests = clients.iter().flat_map(|c| (0..8).map(move |_| c.as_str()));
    let app = &app;
    let statuses = join_all(requests.map(|c| async move { (c, post_as(app, c).await) })).await;
    for client in &clients {
        let mine: Vec<u16> = statuses
            .iter()
            .filter(|(c, _)| c == client)
            .map(|&(_, s)| s)
            .collect();
        assert_eq!(
            mine.iter().filter(|&&s| s == 201).count(),
            5,
            "{client}: {mine:?}"
        );
        assert_eq!(
            mine.iter().filter(|&&s| s == 429).count(),
            3,
            "{client}: {mine:?}"
        );
        assert_eq!(
            cluster.get(&count_key(client)),
            "5",
            "{client} counted in the cluster"
        );
    }
    let stats = app.state.limiter.as_ref().expect("limiter").stats();
    assert_eq!(stats.by_backend.redis, 24 * 8, "{stats:?}");
    let spread = cluster.keys_per_primary();
    assert!(
        spread.iter().filter(|&&n| n > 0).count() >= 2,
        "keys on one shard only: {spread:?}"
    );
}

/// The summary of `cluster` from `app`: its `X-Cache` and `Cache-Status`.
async fn look(app: &TestApp) -> (String, String) {
    let resp = app.get("/api/metrics/summary?type=cluster").await;
    assert_eq!(resp.status(), 200);
    (header(&resp, "x-cache"), header(&resp, "cache-status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_computed_by_one_instance_is_a_cluster_hit_on_another() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .expect("cluster");
    let first = spawn_app_with(TestRedis::unstarted(), settings(cluster.url(), 1_000)).await;
    let second = spawn_app_with(TestRedis::unstarted(), settings(cluster.url(), 1_000)).await;
    assert_eq!(post_as(&first, "198.51.100.1").await, 201);
    assert_eq!(look(&first).await.0, "MISS");
    // The Redis write happens behind the response.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (x, cs) = look(&second).await;
        if x == "HIT" {
            assert!(cs.ends_with("detail=redis"), "{cs}");
            break;
        }
        assert!(Instant::now() < deadline, "never a Redis hit: {x} {cs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(second.state.cache.stats().computations, 0);
}

/// Sends `client`'s requests one after another until `until` passes; every status.
async fn steady(app: &TestApp, client: &str, until: Instant) -> Vec<u16> {
    let mut statuses = Vec::new();
    while Instant::now() < until {
        statuses.push(post_as(app, client).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    statuses
}

/// Waits until Redis decides `client`'s requests again after a failover began at `since`:
/// until `count` (the client's count as the topology routes it now; `None` while that
/// node cannot be read) grows past its first readable value. How long that took.
async fn back_on_redis(
    app: &TestApp,
    since: Instant,
    client: &str,
    count: impl Fn() -> Option<u64>,
) -> Duration {
    let deadline = since + Duration::from_secs(30);
    let mut first = None;
    loop {
        assert_eq!(post_as(app, client).await, 201);
        if let Some(now) = count() {
            match first {
                Some(seen) if now > seen => return since.elapsed(),
                None => first = Some(now),
                _ => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "{client}'s decisions never returned to Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `loaded`'s steady requests for 12 s, calls `kill` as they start, checks that every
/// request was answered and waits until Redis decides `probe`'s requests again (`count`
/// reads its count); prints the figures.
async fn failover(
    app: &TestApp,
    name: &str,
    (loaded, probe): (&str, &str),
    kill: impl FnOnce(),
    count: impl Fn() -> Option<u64>,
) {
    let load = steady(app, loaded, Instant::now() + Duration::from_secs(12));
    let killed = Instant::now();
    kill();
    let (statuses, took) = tokio::join!(load, back_on_redis(app, killed, probe, count));
    let limiter = app.state.limiter.as_ref().expect("limiter");
    let local = limiter.stats().by_backend.local;
    let failed = statuses.iter().filter(|&&s| s != 201).count();
    eprintln!(
        "{name} failover: {} requests, {failed} failed; Redis decided again after {took:?}; \
         {local} decisions went local",
        statuses.len()
    );
    assert_eq!(failed, 0, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_failover_fails_no_request() {
    let mut cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .expect("cluster");
    let app = spawn_app_with(TestRedis::unstarted(), settings(cluster.url(), 1_000_000)).await;
    let client = "198.51.100.77";
    assert_eq!(post_as(&app, client).await, 201);
    let primary = cluster.primary_of(&count_key(client));
    // Read through a node that stays up, following the slot's redirect.
    let reader = *cluster
        .ports
        .iter()
        .find(|&&p| p != primary)
        .expect("a node");
    let key = count_key(client);
    let count = move || cli(reader, &["-c", "get", &key]).parse().ok();
    failover(
        &app,
        "cluster",
        ("198.51.100.78", client),
        || cluster.kill(primary),
        count,
    )
    .await;
    assert_ne!(
        cluster.primary_of(&count_key(client)),
        primary,
        "a replica took over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_fails_no_request() {
    let mut redis = tokio::task::spawn_blocking(TestSentinel::start)
        .await
        .expect("sentinel");
    let app = spawn_app_with(TestRedis::unstarted(), settings(redis.url(), 1_000_000)).await;
    let client = "198.51.100.90";
    assert_eq!(post_as(&app, client).await, 201);
    assert_eq!(cli(redis.primary, &["get", &count_key(client)]), "1");
    let (sentinel, key) = (redis.sentinel, count_key("198.51.100.91"));
    let count = move || {
        let named = cli(
            sentinel,
            &["sentinel", "get-master-addr-by-name", SENTINEL_SERVICE],
        );
        let port: u16 = named.lines().nth(1)?.parse().ok()?;
        let n = cli(port, &["get", &key]);
        // A missing key is 0; an unreachable primary answers nothing readable.
        if n.is_empty() {
            cli(port, &["ping"]).eq("PONG").then_some(0)
        } else {
            n.parse().ok()
        }
    };
    failover(
        &app,
        "sentinel",
        (client, "198.51.100.91"),
        || redis.kill_primary(),
        count,
    )
    .await;
    let replica = redis.replica;
    wait_for("the sentinel to promote", Duration::from_secs(10), || {
        redis.current_primary() == replica
    });
    assert_ne!(cli(replica, &["get", &count_key("198.51.100.91")]), "");
}

#[tokio::test]
async fn rediss_verifies_the_server_against_the_configured_ca() {
    let redis = tokio::task::spawn_blocking(TestTlsRedis::start)
        .await
        .expect("tls redis");
    // By name and by address: the certificate holds both.
    for (i, host) in ["localhost", "127.0.0.1"].into_iter().enumerate() {
        let mut s = settings(format!("rediss://{host}:{}", redis.port), 100);
        s.redis.ca_file = Some(redis.ca.clone());
        let app = spawn_app_with(TestRedis::unstarted(), s).await;
        let client = format!("198.51.100.{}", 10 + i);
        assert_eq!(post_as(&app, &client).await, 201);
        assert_eq!(redis.cli(&["get", &count_key(&client)]), "1", "{host}");
        assert!(app.state.redis.is_connected(), "{host}");
    }
    // Without the CA, the system's roots do not vouch for the test's certificate: no
    // connection is made, and the service answers from its local fallback.
    let untrusted = settings(format!("rediss://localhost:{}", redis.port), 100);
    let app = spawn_app_with(TestRedis::unstarted(), untrusted).await;
    assert_eq!(post_as(&app, "198.51.100.200").await, 201);
    assert!(!app.state.redis.is_connected());
    assert_eq!(redis.cli(&["get", &count_key("198.51.100.200")]), "");
    // A CA file that is not one stops startup.
    let bogus = redis.dir().join("not-a-ca.pem");
    std::fs::write(&bogus, "hello").expect("write");
    let mut s = settings(format!("rediss://localhost:{}", redis.port), 100);
    s.redis.ca_file = Some(bogus);
    assert!(tally::startup::Application::build(s).await.is_err());
}
