//! Test harness: the real application on port 0, a private `redis-server` per
//! test that the test may stop, pause and restart, and typed request helpers.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use tally::config::Settings;
use tally::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A `redis-server` owned by one test, on a free port, in a temporary directory.
pub struct TestRedis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestRedis {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = Self {
            port: free_port(),
            child: None,
            dir,
        };
        redis.restart().await;
        redis
    }

    /// A port where nothing listens (for "Redis down at startup").
    pub fn unstarted() -> Self {
        Self {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port.
    pub async fn restart(&mut self) {
        let child = Command::new(redis_server())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (install Debian's redis-server)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} redis-server");
        }
    }

    /// Runs one redis-cli command against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// How many times this server has run `command` (lower case, e.g.
    /// `get`, `evalsha`), scripts' own calls included.
    pub fn command_calls(&self, command: &str) -> u64 {
        let prefix = format!("cmdstat_{command}:calls=");
        self.cli(&["info", "commandstats"])
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.resume();
        self.stop();
    }
}

fn redis_server() -> PathBuf {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// The running application and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub state: std::sync::Arc<tally::state::AppState>,
    pub client: Client,
    pub redis: TestRedis,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub const LIMITER_TIMEOUT_MS: u64 = 250;

/// Settings every test starts from: port 0 and the given Redis.
pub fn test_settings(redis: &TestRedis) -> Settings {
    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse().expect("addr");
    settings.redis.url = redis.url();
    settings.redis.timeout = Duration::from_millis(200);
    // No load balancer to wait for: a test's instance drains at once.
    settings.server.shutdown_delay = Duration::ZERO;
    // Generous for a debug build on a busy machine; outage tests bound each
    // request by a multiple of it.
    settings.limiter.redis_timeout_ms = LIMITER_TIMEOUT_MS;
    settings
}

pub async fn spawn_app() -> TestApp {
    let redis = TestRedis::start().await;
    let settings = test_settings(&redis);
    spawn_app_with(redis, settings).await
}

pub async fn spawn_app_with(redis: TestRedis, settings: Settings) -> TestApp {
    let app = Application::build(settings).await.expect("app builds");
    serve(redis, app).await
}

/// The application over a given store (e.g. `FaultyStore`).
pub async fn spawn_app_with_store(
    redis: TestRedis,
    settings: Settings,
    store: std::sync::Arc<dyn tally::store::MetricStore>,
) -> TestApp {
    let app = Application::build_with_store(settings, store)
        .await
        .expect("app builds");
    serve(redis, app).await
}

/// Serves `app` and returns once its first Redis connection has settled (made, or given
/// up for now): what `/ready` waits for, so requests are decided as on a ready instance.
async fn serve(redis: TestRedis, app: Application) -> TestApp {
    let state = app.state();
    let settled = std::sync::Arc::clone(&state);
    let address = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !settled.redis.is_settled() {
        assert!(std::time::Instant::now() < deadline, "redis never settled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    TestApp {
        address,
        state,
        client: Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        redis,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_metric(&self, body: &Value) -> Response {
        self.post_json("/api/metrics", body).await
    }

    pub async fn post_batch(&self, body: &Value) -> Response {
        self.post_json("/api/metrics/batch", body).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path`, its body as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    pub async fn summary(&self, metric_type: &str, period: &str) -> Value {
        let resp = self
            .client
            .get(self.url("/api/metrics/summary"))
            .query(&[("type", metric_type), ("period", period)])
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 200, "summary of {metric_type}/{period}");
        resp.json().await.expect("summary JSON")
    }

    /// Stops accepting, drains, and waits for the server to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid metric stamped now.
pub fn metric(metric_type: &str, value: f64) -> Value {
    json!({"timestamp": now(), "value": value, "type": metric_type})
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A response header as text (empty when absent).
pub fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts an RFC 9457 body with this status and returns it.
pub async fn assert_problem(resp: Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = resp.json().await.expect("problem JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// The `(index, field)` pairs named by a validation problem.
pub fn error_fields(problem: &Value) -> Vec<(Option<u64>, String)> {
    problem["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .map(|e| {
                    (
                        e["index"].as_u64(),
                        e["field"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A TCP proxy on a free port that adds `delay` to each direction (every
/// chunk is forwarded `delay` after it was read, so the added latency does
/// not pile up under pipelining): a Redis that is slow but answers. It can
/// also swallow one connection for good (`swallow_once`): a peer that
/// stops answering mid-conversation while new connections still work.
pub struct DelayProxy {
    pub port: u16,
    swallow: Swallow,
    accept: JoinHandle<()>,
}

/// The bytes whose first sighting from a client makes the proxy forward
/// nothing more on that connection, either way; with `true`, that chunk itself is
/// still delivered (the server acts on it, its answer is lost).
type Swallow = std::sync::Arc<std::sync::Mutex<Option<(Vec<u8>, bool)>>>;

impl DelayProxy {
    pub async fn start(target_port: u16, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy listens");
        let port = listener.local_addr().expect("proxy address").port();
        let swallow = Swallow::default();
        let armed = std::sync::Arc::clone(&swallow);
        let accept = tokio::spawn(async move {
            while let Ok((downstream, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                else {
                    continue;
                };
                let (down_read, down_write) = downstream.into_split();
                let (up_read, up_write) = upstream.into_split();
                let dead = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                tokio::spawn(Self::pipe(
                    down_read,
                    up_write,
                    delay,
                    Some(std::sync::Arc::clone(&armed)),
                    std::sync::Arc::clone(&dead),
                ));
                tokio::spawn(Self::pipe(up_read, down_write, delay, None, dead));
            }
        });
        Self {
            port,
            swallow,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The next connection whose client sends `pattern` gets no answer
    /// again: that chunk and everything after it, both ways, are dropped.
    pub fn swallow_once(&self, pattern: &[u8]) {
        *self.swallow.lock().expect("lock") = Some((pattern.to_vec(), false));
    }

    /// Like `swallow_once`, but the chunk with `pattern` is delivered: the server acts on
    /// it and its answer is lost (a commit whose outcome the client never learns).
    pub fn deliver_then_swallow_once(&self, pattern: &[u8]) {
        *self.swallow.lock().expect("lock") = Some((pattern.to_vec(), true));
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
        swallow: Option<Swallow>,
        dead: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let swallowed = std::sync::Arc::clone(&dead);
        let writer = tokio::spawn(async move {
            while let Some((due, chunk)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            if swallowed.load(Ordering::SeqCst) {
                // Open and silent: the peer waits for an answer, not an end.
                std::future::pending::<()>().await;
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = &buf[..n];
                    let mut deliver = false;
                    if let Some(swallow) = &swallow {
                        let mut armed = swallow.lock().expect("lock");
                        let hit = armed
                            .as_ref()
                            .filter(|(p, _)| chunk.windows(p.len()).any(|w| w == p.as_slice()));
                        if let Some((_, then_deliver)) = hit {
                            deliver = *then_deliver;
                            *armed = None;
                            dead.store(true, Ordering::SeqCst);
                        }
                    }
                    if dead.load(Ordering::SeqCst) && !deliver {
                        continue;
                    }
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, chunk.to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
