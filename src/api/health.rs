//! Liveness (`/health`) and readiness (`/ready`).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use crate::breaker::BreakerState;
use crate::http::problem::Problem;
use crate::state::AppState;

pub struct HealthApi;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every dependency is reachable.
    Healthy,
    /// Serving, but a dependency (Redis or the database) is unreachable.
    Degraded,
}

#[derive(Debug, Object)]
pub struct Health {
    /// `degraded` when Redis or the database (if configured) is not `up`.
    pub status: HealthStatus,
    pub redis_connected: bool,
    /// Whether PostgreSQL answers (null with the embedded store).
    #[oai(nullable)]
    pub database_connected: Option<bool>,
    /// Every dependency by name with its state: `redis`, `database` (with
    /// `DATABASE_URL`) and `upstream` (its circuit breaker's view; it does not make the
    /// service degraded, only `/api/external` depends on it).
    pub dependencies: Vec<Dependency>,
    pub version: String,
    pub uptime_seconds: u64,
}

#[derive(Debug, Object)]
pub struct Dependency {
    pub name: String,
    pub state: DependencyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum DependencyState {
    /// Answering.
    Up,
    /// Not answering (or its breaker is open).
    Down,
    /// Its breaker is letting a probe through to see whether it is back.
    Probing,
    /// Not connected yet since the service started (the database: its schema is being
    /// prepared).
    Starting,
}

#[derive(Debug, Object)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
}

#[derive(Debug, ApiResponse)]
pub enum HealthResponse {
    /// The process is alive; `status` says whether it is degraded.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

#[derive(Debug, ApiResponse)]
pub enum ReadyResponse {
    /// The service takes traffic.
    #[oai(status = 200)]
    Ready(Json<Ready>),
    /// Starting (Redis connecting, the database schema being prepared) or shutting
    /// down: send traffic elsewhere.
    #[oai(status = 503, content_type = "application/problem+json")]
    NotReady(Json<Problem>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness and dependency status
    ///
    /// Always 200 while the process runs; never waits on a dependency.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, state: Data<&Arc<AppState>>) -> HealthResponse {
        let redis_connected = state.redis.is_connected();
        let database_connected = state.store.database_up();
        let up_or_down = |up: bool| {
            if up {
                DependencyState::Up
            } else {
                DependencyState::Down
            }
        };
        let mut dependencies = vec![Dependency {
            name: "redis".into(),
            state: up_or_down(redis_connected),
        }];
        if let Some(up) = database_connected {
            dependencies.push(Dependency {
                name: "database".into(),
                state: match state.store.prepared() {
                    false => DependencyState::Starting,
                    true => up_or_down(up),
                },
            });
        }
        dependencies.push(Dependency {
            name: "upstream".into(),
            state: match state.upstream.breaker.state() {
                BreakerState::Closed | BreakerState::ForcedClosed => DependencyState::Up,
                BreakerState::HalfOpen => DependencyState::Probing,
                BreakerState::Open | BreakerState::ForcedOpen => DependencyState::Down,
            },
        });
        HealthResponse::Ok(Json(Health {
            status: if redis_connected && database_connected != Some(false) {
                HealthStatus::Healthy
            } else {
                HealthStatus::Degraded
            },
            redis_connected,
            database_connected,
            dependencies,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: state.lifecycle.started.elapsed().as_secs(),
        }))
    }

    /// Readiness for traffic
    ///
    /// 200 while the service takes traffic. 503 at startup until the first Redis
    /// connection is made (or 2 × `REDIS_TIMEOUT` passes without it: then it is ready,
    /// degraded) and, with PostgreSQL, until its schema is prepared; and 503 once
    /// shutdown has begun. A later outage shows in `/health`; the service keeps serving.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if !state.lifecycle.is_accepting() {
            ReadyResponse::NotReady(Json(Problem::unavailable("shutting down")))
        } else if !state.redis.is_settled() {
            ReadyResponse::NotReady(Json(Problem::unavailable(
                "connecting to Redis (up to 2 × REDIS_TIMEOUT at startup)",
            )))
        } else if !state.store.prepared() {
            ReadyResponse::NotReady(Json(Problem::unavailable(
                "the database schema is not prepared yet",
            )))
        } else {
            ReadyResponse::Ready(Json(Ready {
                status: "ready".into(),
            }))
        }
    }
}
