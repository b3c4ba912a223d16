//! Real Redis topologies on loopback for the tests: a Redis Cluster of three primaries and
//! three replicas (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`),
//! and a primary with a replica watched by one Sentinel (`redis-server --sentinel`). Every
//! process lives in the test's temporary directory and is killed when the value drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

/// A free loopback port whose cluster bus port (port + 10000) is valid too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One `redis-server` process with the given extra arguments.
pub(crate) fn spawn(dir: &std::path::Path, port: u16, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts (install Debian's redis-server)")
}

/// `redis-cli -p PORT ARGS…`, its output trimmed.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until `ready` holds, polling every 50 ms, for at most `within`.
pub fn wait_for(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

pub struct TestCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Three primaries, each with a replica; a primary that stops answering for a second
    /// is failed over.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<u16> = (0..6).map(|_| cluster_port()).collect();
        let children = ports
            .iter()
            .map(|&port| {
                let conf = format!("nodes-{port}.conf");
                Some(spawn(
                    dir.path(),
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf,
                        "--cluster-node-timeout",
                        "1000",
                        // A replica may take over however fresh its copy: the test's data
                        // is seconds old, and a failover must not wait on it.
                        "--cluster-replica-validity-factor",
                        "0",
                    ],
                ))
            })
            .collect();
        for &port in &ports {
            wait_for("a cluster node", Duration::from_secs(10), || {
                cli(port, &["ping"]) == "PONG"
            });
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for &port in &cluster.ports {
            wait_for("the cluster to be ok", Duration::from_secs(20), || {
                cli(port, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        cluster
    }

    /// `redis-cluster://` with three of the nodes to start from.
    pub fn url(&self) -> String {
        format!(
            "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
            self.ports[0], self.ports[1], self.ports[2]
        )
    }

    /// A node still running, to ask about the cluster.
    fn any(&self) -> u16 {
        let i = self
            .children
            .iter()
            .position(Option::is_some)
            .expect("a node left");
        self.ports[i]
    }

    /// The port of the primary serving `key`'s slot now.
    pub fn primary_of(&self, key: &str) -> u16 {
        let any = self.any();
        let slot: u16 = cli(any, &["cluster", "keyslot", key])
            .parse()
            .expect("a slot");
        // `cluster shards`' flat text is awkward; `cluster slots` lists ranges with the
        // primary first: start, end, ip, port, …
        let out = cli(any, &["cluster", "slots"]);
        let lines: Vec<&str> = out.lines().collect();
        let mut i = 0;
        while i + 3 < lines.len() {
            let (start, end) = (lines[i].parse::<u16>(), lines[i + 1].parse::<u16>());
            if let (Ok(start), Ok(end)) = (start, end) {
                if (start..=end).contains(&slot) {
                    return lines[i + 3].parse().expect("a port");
                }
            }
            i += 1;
        }
        panic!("no primary for slot {slot}: {out}");
    }

    /// `GET key` on the node that owns it (following the redirect).
    pub fn get(&self, key: &str) -> String {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &self.any().to_string(), "get", key])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Keys held by each primary, for checking that work is spread over the shards.
    pub fn keys_per_primary(&self) -> Vec<u64> {
        self.ports
            .iter()
            .zip(&self.children)
            .filter(|(_, c)| c.is_some())
            .filter(|&(&p, _)| cli(p, &["role"]).starts_with("master"))
            .map(|(&p, _)| cli(p, &["dbsize"]).parse().unwrap_or(0))
            .collect()
    }

    /// Kills the node on `port` (SIGKILL: no goodbye to the cluster).
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).expect("a node");
        kill(&mut self.children[i]);
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.children.iter_mut().for_each(kill);
    }
}

/// A primary, its replica and one Sentinel watching them as `tally`.
pub struct TestSentinel {
    pub primary: u16,
    pub replica: u16,
    pub sentinel: u16,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

pub const SENTINEL_SERVICE: &str = "tally";

impl TestSentinel {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (primary, replica, sentinel) = (free_port(), free_port(), free_port());
        let p = primary.to_string();
        let mut children = vec![
            Some(spawn(dir.path(), primary, &[])),
            Some(spawn(
                dir.path(),
                replica,
                &["--replicaof", "127.0.0.1", &p],
            )),
        ];
        wait_for("the replica to sync", Duration::from_secs(10), || {
            cli(replica, &["info", "replication"]).contains("master_link_status:up")
        });
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary} 1\n\
                 sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                 sentinel failover-timeout {SENTINEL_SERVICE} 5000\n",
                dir.path().display()
            ),
        )
        .expect("sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        children.push(Some(child));
        wait_for(
            "the sentinel to see the replica",
            Duration::from_secs(15),
            || {
                cli(sentinel, &["sentinel", "replicas", SENTINEL_SERVICE])
                    .contains(&replica.to_string())
            },
        );
        Self {
            primary,
            replica,
            sentinel,
            children,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={SENTINEL_SERVICE}",
            self.sentinel
        )
    }

    /// The primary's port as the Sentinel names it now.
    pub fn current_primary(&self) -> u16 {
        let out = cli(
            self.sentinel,
            &["sentinel", "get-master-addr-by-name", SENTINEL_SERVICE],
        );
        out.lines().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    pub fn kill_primary(&mut self) {
        kill(&mut self.children[0]);
    }
}

impl Drop for TestSentinel {
    fn drop(&mut self) {
        self.children.iter_mut().for_each(kill);
    }
}
