//! The HTTP API: one file per group of operations, the error shape they share,
//! and the OpenAPI service that documents them.

mod admin;
pub mod auth;
mod breakers;
pub mod external;
mod health;
mod ingest;
pub mod metric_input;
pub mod payload;
pub mod problem;
pub mod query;
mod responses;

use poem_openapi::{OpenApiService, Tags};

pub use admin::AdminApi;
pub use external::ExternalApi;
pub use health::HealthApi;
pub use ingest::IngestApi;
pub use query::QueryApi;

#[derive(Tags)]
pub enum ApiTags {
    /// Record data points.
    Ingest,
    /// Read aggregates and raw points.
    Query,
    /// The external upstream and its circuit breakers.
    External,
    /// Liveness and readiness.
    Health,
    /// Operator actions (bearer token from `ADMIN_TOKENS`).
    Admin,
}

pub type Apis = (IngestApi, QueryApi, ExternalApi, HealthApi, AdminApi);

/// The documented API. Paths are absolute, so the spec needs no server prefix.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (IngestApi, QueryApi, ExternalApi, HealthApi, AdminApi),
        "tally",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Real-time analytics API: post metrics (timestamp, value, type) and read \
             aggregated summaries. Every error is RFC 9457 application/problem+json.",
    )
}

/// The OpenAPI document exactly as served at `/openapi.json`.
pub fn spec_json() -> String {
    service().spec()
}
