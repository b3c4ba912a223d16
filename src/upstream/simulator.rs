//! The built-in stand-in for the external service: served by the same process
//! under `/simulator` (or alone by `tally simulator`), with a failure rate, a
//! latency and a mode that operators change at run time, and a request counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::Settings;

/// How the simulated service behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum SimulatorMode {
    /// Fails with probability `failure_rate`, answers after `latency_ms`.
    Healthy,
    /// Every request fails with 503.
    Failing,
    /// Every request takes `latency_ms` + 1.5 s (past the default upstream timeout).
    Slow,
    /// Alternates 10 s healthy and 10 s failing.
    Flapping,
}

impl SimulatorMode {
    pub const ALL: [SimulatorMode; 4] = [
        SimulatorMode::Healthy,
        SimulatorMode::Failing,
        SimulatorMode::Slow,
        SimulatorMode::Flapping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SimulatorMode::Healthy => "healthy",
            SimulatorMode::Failing => "failing",
            SimulatorMode::Slow => "slow",
            SimulatorMode::Flapping => "flapping",
        }
    }
}

/// The simulator's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Object)]
pub struct SimulatorConfig {
    /// Probability (0..1) that a request fails with 503 in healthy mode.
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub failure_rate: f64,
    /// Added to every answer, in milliseconds (at most 60000).
    #[oai(validator(minimum(value = "0"), maximum(value = "60000")))]
    pub latency_ms: u64,
    pub mode: SimulatorMode,
}

const SLOW_EXTRA: Duration = Duration::from_millis(1500);
const FLAP_PERIOD: Duration = Duration::from_secs(10);

/// One operator change of the simulator, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorChange {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The admin token's name.
    pub who: String,
    pub config: SimulatorConfig,
}

/// Changes kept in the simulator's audit log.
pub const AUDIT_CAPACITY: usize = 100;

pub struct Simulator {
    config: RwLock<SimulatorConfig>,
    audit: parking_lot::Mutex<std::collections::VecDeque<SimulatorChange>>,
    requests: AtomicU64,
    /// The `traceparent` of the latest request (shows the caller's propagation).
    last_traceparent: RwLock<Option<String>>,
    started: Instant,
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Arc<Self> {
        Arc::new(Self {
            config: RwLock::new(config),
            audit: parking_lot::Mutex::default(),
            requests: AtomicU64::new(0),
            last_traceparent: RwLock::new(None),
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> SimulatorConfig {
        *self.config.read()
    }

    /// Rejects out-of-range values; changes nothing on error.
    pub fn configure(&self, config: SimulatorConfig) -> Result<(), String> {
        if !(0.0..=1.0).contains(&config.failure_rate) || !config.failure_rate.is_finite() {
            return Err("failure_rate must be between 0 and 1".into());
        }
        if config.latency_ms > 60_000 {
            return Err("latency_ms must be at most 60000".into());
        }
        *self.config.write() = config;
        tracing::info!(?config, "simulator reconfigured");
        Ok(())
    }

    /// `configure` on behalf of an operator, recorded in the audit log.
    pub fn configure_by(&self, config: SimulatorConfig, who: &str) -> Result<(), String> {
        self.configure(config)?;
        let mut audit = self.audit.lock();
        if audit.len() == AUDIT_CAPACITY {
            audit.pop_back();
        }
        audit.push_front(SimulatorChange {
            at: chrono::Utc::now(),
            who: who.to_owned(),
            config,
        });
        Ok(())
    }

    /// Operator changes, newest first.
    pub fn audit_log(&self) -> Vec<SimulatorChange> {
        self.audit.lock().iter().cloned().collect()
    }

    pub fn last_traceparent(&self) -> Option<String> {
        self.last_traceparent.read().clone()
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// What to do with the next request: how long to wait, and whether to fail.
    fn plan(&self) -> (Duration, bool) {
        let c = self.config();
        let latency = Duration::from_millis(c.latency_ms);
        match c.mode {
            SimulatorMode::Healthy => (latency, rand::random::<f64>() < c.failure_rate),
            SimulatorMode::Failing => (latency, true),
            SimulatorMode::Slow => (latency + SLOW_EXTRA, false),
            SimulatorMode::Flapping => {
                let phase = self.started.elapsed().as_secs() / FLAP_PERIOD.as_secs();
                (latency, phase % 2 == 1)
            }
        }
    }
}

/// `/simulator/data` and `/simulator/stats`, to be nested under `/simulator`.
pub fn routes(simulator: Arc<Simulator>) -> impl poem::Endpoint + use<> {
    Route::new()
        .at("/data", get(data))
        .at("/stats", get(stats))
        .data(simulator)
}

#[handler]
async fn data(sim: Data<&Arc<Simulator>>, req: &poem::Request) -> Response {
    let n = sim.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let traceparent = req.header("traceparent").map(str::to_owned);
    *sim.last_traceparent.write() = traceparent;
    let (wait, fail) = sim.plan();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if fail {
        return (StatusCode::SERVICE_UNAVAILABLE, "simulated failure").into_response();
    }
    Json(serde_json::json!({
        "request": n,
        "value": rand::random::<f64>(),
        "served_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
    .into_response()
}

#[handler]
async fn stats(sim: Data<&Arc<Simulator>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "requests": sim.requests(),
        "config": sim.config(),
        "last_traceparent": sim.last_traceparent(),
    }))
}

/// `tally simulator`: only the upstream simulator (for a separate container),
/// at `/simulator/data`, with `/health` for orchestrators, until `shutdown`.
pub async fn run(
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let simulator = Simulator::new(config_from(settings));
    let app = Route::new()
        .nest("/simulator", routes(simulator))
        .at("/health", poem::get(poem::endpoint::make_sync(|_| "ok")))
        .catch_all_error(
            |err| async move { crate::http::problem::error_to_response(err, |_| None) },
        );
    tracing::info!(addr = %settings.server.addr, "simulator listening");
    Server::new(TcpListener::bind(settings.server.addr))
        .run_with_graceful_shutdown(app, shutdown, Some(settings.server.shutdown_timeout))
        .await
}

/// The simulator's configuration at start.
pub fn config_from(settings: &Settings) -> SimulatorConfig {
    SimulatorConfig {
        failure_rate: settings.upstream.simulator_failure_rate,
        latency_ms: settings.upstream.simulator_latency_ms,
        mode: SimulatorMode::Healthy,
    }
}
