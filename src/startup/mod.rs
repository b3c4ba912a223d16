//! `Application`: builds the state, the routes and the middleware, binds the
//! listener, and runs until a shutdown signal. `main` and every test start the
//! service through `Application::build`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod routes;
mod tasks;

pub use routes::routes;
pub use tasks::shutdown_signal;

use crate::breaker::Breakers;
use crate::cache::ReadCache;
use crate::config::Settings;
use crate::dashboard::{self, Dashboard};
use crate::limiter::{Identify, RateLimiter, SignInGuard};
use crate::redis::Redis;
use crate::series::{SeriesRules, TimeSeries};
use crate::server::{ConnectionLimits, Deadlines};
use crate::state::{AppState, Lifecycle, Upstream};
use crate::store::{MemoryStore, MemoryStoreConfig, MetricStore, PostgresStore};
use crate::summary::Summaries;
use crate::telemetry::{self};
use crate::upstream::UpstreamClient;
use crate::upstream::simulator::{self, Simulator};
use routes::register_metrics_at_zero;
use tasks::{evict_expired, sample_metrics};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid Redis configuration: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("cannot build the upstream client: {0}")]
    Upstream(String),
    #[error("invalid database configuration: {0}")]
    Database(String),
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    settings: Settings,
    /// `None` when the dashboard is turned off.
    dashboard: Option<Arc<Dashboard>>,
    /// Background tasks, stopped when the server stops.
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// The service as configured: PostgreSQL when `DATABASE_URL` is set,
    /// otherwise the embedded store.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let breakers = Arc::new(Breakers::new());
        if let Some(url) = settings.database.url.clone() {
            let breaker = breakers.get_or_create(
                crate::store::postgres::BREAKER,
                settings.database_breaker.config(),
            );
            let (store, tasks) = PostgresStore::start(
                &settings.database,
                &url,
                settings.store.retention,
                settings.store.idempotency_ttl,
                breaker,
            )
            .map_err(|e| StartupError::Database(e.to_string()))?;
            let mut app = Self::build_with(settings, store, breakers).await?;
            app.tasks.extend(tasks);
            return Ok(app);
        }
        let memory = Arc::new(MemoryStore::new(MemoryStoreConfig {
            retention: settings.store.retention,
            max_points: settings.store.max_points,
            max_bytes: settings.store.max_memory,
            max_types: settings.store.max_types,
            idempotency_ttl: settings.store.idempotency_ttl,
            max_idempotency_keys: settings.store.max_idempotency_keys,
        }));
        let evictor = tokio::spawn(evict_expired(Arc::clone(&memory)));
        let mut app = Self::build_with(settings, memory, breakers).await?;
        app.tasks.push(evictor);
        Ok(app)
    }

    /// The service over a given store (another backend, or a test's fault injector).
    pub async fn build_with_store(
        settings: Settings,
        store: Arc<dyn MetricStore>,
    ) -> Result<Self, StartupError> {
        Self::build_with(settings, store, Arc::new(Breakers::new())).await
    }

    async fn build_with(
        settings: Settings,
        store: Arc<dyn MetricStore>,
        breakers: Arc<Breakers>,
    ) -> Result<Self, StartupError> {
        let (redis, redis_watch) = Redis::start(&settings.redis)?;
        // Before anything records a metric.
        if settings.log.metrics_enabled {
            let _ = telemetry::metrics::handle();
        }
        let redis_breaker =
            breakers.get_or_create(crate::redis::BREAKER, settings.redis_breaker.config());
        let limiter = settings.limiter.enabled.then(|| {
            Arc::new(RateLimiter::new(
                &settings.limiter,
                Arc::clone(&redis),
                Arc::clone(&redis_breaker),
            ))
        });
        let cache = ReadCache::new(&settings.cache, Arc::clone(&redis), redis_breaker);
        let bind = |source| StartupError::Bind {
            addr: settings.server.addr,
            source,
        };
        let listener = TcpListener::bind(settings.server.addr)
            .await
            .map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let upstream = Upstream {
            client: UpstreamClient::new(
                &upstream_url(&settings, addr),
                upstream_timeout(&settings),
            )
            .map_err(StartupError::Upstream)?,
            timeout: upstream_timeout(&settings),
            breaker: breakers.get_or_create(crate::upstream::BREAKER, settings.breaker.config()),
            simulator: Simulator::new(simulator::config_from(&settings)),
        };
        let cache = Arc::new(cache);
        let summaries = Summaries::new(
            Arc::clone(&cache),
            Arc::clone(&store),
            settings.store.retention,
            settings.store.max_future_skew,
        );
        let series = TimeSeries::new(
            Arc::clone(&cache),
            Arc::clone(&store),
            SeriesRules {
                retention: settings.store.retention,
                max_points: settings.store.series_max_points,
            },
        );
        let state = Arc::new(AppState {
            store,
            redis,
            limiter,
            cache,
            summaries,
            series,
            breakers,
            upstream,
            admin_tokens: settings.admin.tokens.clone(),
            identify: Identify {
                trusted: settings.limiter.trusted_proxies.clone(),
                header: settings.limiter.forwarded_header,
            },
            sign_ins: SignInGuard::new(settings.admin.max_failures, settings.admin.failure_window),
            idempotency: Default::default(),
            retention: settings.store.retention,
            max_future_skew: settings.store.max_future_skew,
            lifecycle: Lifecycle::default(),
            traffic: Arc::default(),
        });
        register_metrics_at_zero(&state);
        let sampler = tokio::spawn(sample_metrics(Arc::clone(&state), tasks::SAMPLE_INTERVAL));
        let mut tasks = vec![redis_watch, sampler];
        let dashboard = settings.dashboard.enabled.then(|| {
            let dashboard = Dashboard::new(Arc::clone(&state), &settings);
            tasks.push(tokio::spawn(dashboard::live::run(Arc::clone(&dashboard))));
            dashboard
        });
        Ok(Self {
            listener,
            addr,
            state,
            settings,
            dashboard,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (for the dashboard and for tests reading statistics).
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `signal` resolves, then shuts down as a load balancer needs: `/ready`
    /// answers 503 at once while requests (and new connections) are still served for the
    /// shutdown delay, so health checks take the instance out first; then it stops
    /// accepting and gives in-flight requests up to the shutdown timeout to finish.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let state = Arc::clone(&self.state);
        let app = routes(
            Arc::clone(&self.state),
            &self.settings,
            self.dashboard.clone(),
        );
        tracing::info!(addr = %self.addr, "listening");
        let server = &self.settings.server;
        let delay = server.shutdown_delay;
        let limits = ConnectionLimits {
            deadlines: Deadlines {
                header: server.header_timeout,
                keepalive: server.keepalive_timeout,
                send: server.send_timeout,
            },
            max_connections: server.max_connections,
        };
        metrics::gauge!(crate::telemetry::names::HTTP_CONNECTIONS_MAX)
            .set(limits.max_connections as f64);
        let result = crate::server::serve(
            self.listener,
            app,
            limits,
            async move {
                signal.await;
                state.lifecycle.stop_accepting();
                if !delay.is_zero() {
                    tracing::info!(
                        delay_ms = delay.as_millis() as u64,
                        "shutting down: /ready answers 503; serving until the load balancer stops sending"
                    );
                    tokio::time::sleep(delay).await;
                }
                tracing::info!("shutting down: draining in-flight requests");
            },
            server.shutdown_timeout,
        )
        .await;
        for task in self.tasks {
            task.abort();
        }
        let cache = self.state.cache.stats();
        tracing::info!(
            cache_hit_ratio = cache.hit_ratio(),
            memory_hits = cache.memory.hits,
            memory_stale = cache.memory.stale,
            memory_misses = cache.memory.misses,
            redis_hits = cache.redis.hits,
            redis_misses = cache.redis.misses,
            coalesced = cache.coalesced_waiters,
            computations = cache.computations,
            "stopped"
        );
        result
    }
}

/// `UPSTREAM_URL`, or this process' own simulator.
fn upstream_url(settings: &Settings, bound: SocketAddr) -> String {
    settings.upstream.url.clone().unwrap_or_else(|| {
        // Reach ourselves over loopback when bound to every interface.
        let host = match bound.ip() {
            ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_owned(),
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/simulator", bound.port())
    })
}

fn upstream_timeout(settings: &Settings) -> Duration {
    Duration::from_millis(settings.upstream.timeout_ms)
}
