//! Liveness (`/health`) and readiness (`/ready`).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::problem::Problem;
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
    pub status: HealthStatus,
    pub redis_connected: bool,
    /// Whether PostgreSQL answers (null with the embedded store).
    #[oai(nullable)]
    pub database_connected: Option<bool>,
    pub version: String,
    pub uptime_seconds: u64,
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
    /// Shutting down, or the database schema is not prepared yet: send traffic elsewhere.
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
        HealthResponse::Ok(Json(Health {
            status: if redis_connected && database_connected != Some(false) {
                HealthStatus::Healthy
            } else {
                HealthStatus::Degraded
            },
            redis_connected,
            database_connected,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: state.lifecycle.started.elapsed().as_secs(),
        }))
    }

    /// Readiness for traffic
    ///
    /// 200 while the service takes traffic; 503 once shutdown has begun, and
    /// with PostgreSQL until its schema is prepared at startup (a later
    /// database outage shows in `/health`, and the service keeps serving).
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if !state.lifecycle.is_accepting() {
            ReadyResponse::NotReady(Json(Problem::unavailable("shutting down")))
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
