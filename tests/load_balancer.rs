//! Three tally processes behind a real HAProxy (Debian's package), configured by
//! `deploy/haproxy/haproxy.cfg` pointed at loopback, sharing one private redis-server:
//! a client spread over the instances gets exactly its quota, a summary one instance
//! computed is a Redis hit on the others, and a rolling restart under load fails nothing.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

// The API tests' private PostgreSQL (this test uses only part of it).
#[path = "api/postgres.rs"]
#[allow(dead_code)]
mod postgres;

/// What `postgres.rs` expects of the test crate.
mod helpers {
    pub use super::free_port;
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Killed(Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The stack: Redis, three instances, the balancer.
struct Stack {
    redis: u16,
    /// `DATABASE_URL` of every instance, when they share PostgreSQL.
    database: Option<String>,
    ports: [u16; 3],
    instances: Vec<Killed>,
    lb: u16,
    _haproxy: Killed,
    _redis: Killed,
    _dir: tempfile::TempDir,
}

fn start_instance(port: u16, redis: u16, database: Option<&str>) -> Killed {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command.env_clear();
    if let Some(url) = database {
        command.env("DATABASE_URL", url);
    }
    let child = command
        .env("TALLY_ADDR", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", format!("redis://127.0.0.1:{redis}"))
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .env("RATE_LIMIT_REQUESTS", "5")
        .env("RATE_LIMIT_WINDOW_SECONDS", "60")
        .env("RATE_LIMIT_READ_REQUESTS", "1000000")
        // Over the balancer's two failed checks a second apart.
        .env("TALLY_SHUTDOWN_DELAY", "3s")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tally starts");
    Killed(Some(child))
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/ready"))
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "instance on {port} never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `deploy/haproxy/haproxy.cfg` with loopback in place of Docker's DNS.
fn haproxy_config(lb: u16, ports: &[u16]) -> String {
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/haproxy/haproxy.cfg"
    ))
    .expect("deploy/haproxy/haproxy.cfg");
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    server app{} 127.0.0.1:{p} check\n", i + 1))
        .collect();
    let mut out = String::new();
    let mut skipping = false;
    for line in conf.lines() {
        if line.starts_with("resolvers ") {
            skipping = true;
            continue;
        }
        if skipping {
            skipping = !line.trim().is_empty();
            continue;
        }
        if line.trim_start().starts_with("log ") {
            continue;
        }
        if line.trim() == "bind :8000" {
            out.push_str(&format!("    bind 127.0.0.1:{lb}\n"));
        } else if line.trim_start().starts_with("server-template") {
            out.push_str(&servers);
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        out.contains("server app3"),
        "the config's server-template was replaced"
    );
    out
}

impl Stack {
    async fn start(database: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = free_port();
        let redis_child = Command::new("redis-server")
            .args(["--port", &redis.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (install Debian's redis-server)");
        let ports = [free_port(), free_port(), free_port()];
        let instances: Vec<Killed> = ports
            .iter()
            .map(|&p| start_instance(p, redis, database.as_deref()))
            .collect();
        for &p in &ports {
            wait_ready(p).await;
        }
        let lb = free_port();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(lb, &ports)).expect("haproxy.cfg");
        let haproxy = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts (install Debian's haproxy)");
        let stack = Self {
            redis,
            database,
            ports,
            instances,
            lb,
            _haproxy: Killed(Some(haproxy)),
            _redis: Killed(Some(redis_child)),
            _dir: dir,
        };
        // Every server checked up (rise 2, a second apart).
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        wait_ready(lb).await;
        stack
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.lb)
    }

    /// SIGTERM instance `i`, wait for it to exit, start it again, wait until ready.
    async fn restart(&mut self, i: usize) {
        let mut child = self.instances[i].0.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let exited = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join");
        assert!(exited.is_ok_and(|s| s.success()), "instance {i} exit");
        self.instances[i] = start_instance(self.ports[i], self.redis, self.database.as_deref());
        wait_ready(self.ports[i]).await;
    }
}

fn post(client: &reqwest::Client, url: String, from: &str, kind: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-forwarded-for", from)
        .body(format!(
            r#"{{"timestamp":"{}","value":1,"type":"{kind}"}}"#,
            chrono::Utc::now().to_rfc3339()
        ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_haproxy_quotas_are_exact_caches_shared_and_restarts_fail_nothing() {
    let mut stack = Stack::start(None).await;
    let http = reqwest::Client::new();

    // A client spread over the three instances gets exactly its quota, under concurrency.
    let clients: Vec<String> = (1..=6).map(|i| format!("198.51.100.{i}")).collect();
    let sends = clients.iter().flat_map(|c| (0..12).map(move |_| c.clone()));
    let statuses = join_all(sends.map(|c| {
        let req = post(&http, stack.url("/api/metrics"), &c, "lb");
        async move {
            (
                c,
                req.send().await.map(|r| r.status().as_u16()).unwrap_or(0),
            )
        }
    }))
    .await;
    for c in &clients {
        let ok = statuses
            .iter()
            .filter(|(who, s)| who == c && *s == 201)
            .count();
        let limited = statuses
            .iter()
            .filter(|(who, s)| who == c && *s == 429)
            .count();
        assert_eq!((ok, limited), (5, 7), "{c}: {statuses:?}");
    }

    // A summary computed by one instance is a Redis hit on the others.
    let summary = |port: u16| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!(
                    "http://127.0.0.1:{port}/api/metrics/summary?type=lb"
                ))
                .send()
                .await
                .expect("summary");
            let h = |name: &str| {
                r.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            (h("x-cache"), h("cache-status"))
        }
    };
    assert_eq!(summary(stack.ports[0]).await.0, "MISS");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stack.redis_get_keys_like("tally:v2:summary:") {
        assert!(Instant::now() < deadline, "the summary never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for &port in &stack.ports[1..] {
        let (x, cs) = summary(port).await;
        assert_eq!(x, "HIT", "{cs}");
        assert!(cs.ends_with("detail=redis"), "{cs}");
    }

    // A rolling restart under load through the balancer: nothing fails.
    let (answered, failed, _) = rolling_restart(&mut stack, "lb").await;
    assert!(answered > 100, "load ran: {answered}");
    assert_eq!(failed, 0, "{answered} answered");
}

/// Three instances sharing PostgreSQL: a rolling restart under load fails no request, and
/// every write acknowledged with 201 is in the summary afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_haproxy_over_postgresql_a_rolling_restart_loses_no_acknowledged_write() {
    let pg = tokio::task::spawn_blocking(postgres::TestPostgres::start)
        .await
        .expect("postgres");
    let database = pg.database("tally_lb").await;
    let mut stack = Stack::start(Some(database)).await;
    let (answered, failed, stored) = rolling_restart(&mut stack, "lbpg").await;
    assert!(answered > 100, "load ran: {answered}");
    assert_eq!(failed, 0, "{answered} answered");
    // Nothing read `lbpg` during the run: this summary is computed from the database.
    let summary: serde_json::Value = reqwest::get(stack.url("/api/metrics/summary?type=lbpg"))
        .await
        .expect("summary")
        .json()
        .await
        .expect("json");
    assert_eq!(summary["count"], stored, "{summary}");
}

/// Load through the balancer (8 clients, writes of `kind` and summary reads) while each
/// instance in turn is stopped with SIGTERM, started again and waited for; then the
/// requests answered, those failed (non-2xx or no answer), and the writes acknowledged.
async fn rolling_restart(stack: &mut Stack, kind: &str) -> (u64, u64, u64) {
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (http, stop, counters) = (http.clone(), Arc::clone(&stop), Arc::clone(&counters));
            let (ingest, read) = (
                stack.url("/api/metrics"),
                stack.url("/api/metrics/summary?type=lb"),
            );
            let kind = kind.to_owned();
            tokio::spawn(async move {
                let [answered, failed, stored] = &*counters;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // A fresh client per write keeps the quota out of the way.
                    let from = format!("10.{w}.{}.{}", n / 250 % 250, n % 250 + 1);
                    let write = n % 2 == 0;
                    let req = match write {
                        true => post(&http, ingest.clone(), &from, &kind),
                        false => http.get(read.clone()),
                    };
                    match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            if write {
                                stored.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    for i in 0..3 {
        stack.restart(i).await;
        // The balancer's checks see it up again (rise 2) before the next one stops.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    join_all(workers).await;
    let [answered, failed, stored] = counters.each_ref().map(|c| c.load(Ordering::Relaxed));
    eprintln!(
        "rolling restart of 3 instances ({}) in {:?}: {answered} requests answered, {failed} failed",
        if stack.database.is_some() {
            "PostgreSQL"
        } else {
            "embedded stores"
        },
        started.elapsed()
    );
    (answered, failed, stored)
}

impl Stack {
    fn redis_get_keys_like(&self, prefix: &str) -> bool {
        let out = Command::new("redis-cli")
            .args(["-p", &self.redis.to_string(), "--scan", "--pattern"])
            .arg(format!("{prefix}*"))
            .output()
            .expect("redis-cli");
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }
}
