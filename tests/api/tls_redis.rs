//! A TLS-only `redis-server` for the tests, its certificate signed by a CA made in the
//! test with `openssl`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::free_port;
use crate::topology::{kill, wait_for};

/// A `redis-server` that speaks only TLS, with a certificate for 127.0.0.1 and localhost
/// signed by a CA made for the test (`openssl`).
pub struct TestTlsRedis {
    pub port: u16,
    pub ca: std::path::PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl TestTlsRedis {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let ok = Command::new("openssl")
                .current_dir(d)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl {args:?} (install openssl)");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=tally test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "req.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "ext",
        ]);
        let port = free_port();
        let path = |f: &str| d.join(f).display().to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                &path("cert.pem"),
                "--tls-key-file",
                &path("key.pem"),
            ])
            .args([
                "--tls-ca-cert-file",
                &path("ca.pem"),
                "--tls-auth-clients",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no", "--dir", &path("")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let redis = Self {
            port,
            ca: d.join("ca.pem"),
            child: Some(child),
            dir,
        };
        wait_for("the TLS redis-server", Duration::from_secs(10), || {
            redis.cli(&["ping"]) == "PONG"
        });
        redis
    }

    /// `redis-cli` over TLS, trusting the test's CA.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(&self.ca)
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestTlsRedis {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
