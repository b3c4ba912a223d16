//! The HTTP API: one file per group of operations, the error shape they share,
//! and the OpenAPI service that documents them.

mod admin;
pub mod auth;
mod breakers;
pub mod external;
mod health;
pub mod idempotency;
mod ingest;
pub mod metric_input;
pub mod payload;
pub mod query;
mod responses;
pub mod series;
pub mod spec;
pub mod summary;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem_openapi::registry::{MetaApi, MetaPath, Registry};
use poem_openapi::{OpenApi, OpenApiService, Tags};

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

/// `T`'s operations with those of one path under one key. poem-openapi writes
/// each API struct's paths on their own, so `/api/metrics` (POST in
/// `IngestApi`, GET in `QueryApi`) was a duplicate key in the document, and
/// JSON readers (Swagger UI, schemathesis) kept only the last: ingest was
/// missing from the docs. Routes and schemas are `T`'s, unchanged.
pub struct OnePathOneKey<T>(pub T);

impl<T: OpenApi> OpenApi for OnePathOneKey<T> {
    fn meta() -> Vec<MetaApi> {
        let mut paths: Vec<MetaPath> = Vec::new();
        for path in T::meta().into_iter().flat_map(|api| api.paths) {
            match paths.iter_mut().find(|p| p.path == path.path) {
                Some(same) => same.operations.extend(path.operations),
                None => paths.push(path),
            }
        }
        vec![MetaApi { paths }]
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(self, route_table: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {
        self.0.add_routes(route_table);
    }
}

/// The documented API. Paths are absolute, so the spec needs no server prefix.
pub fn service() -> OpenApiService<OnePathOneKey<Apis>, ()> {
    OpenApiService::new(
        OnePathOneKey((IngestApi, QueryApi, ExternalApi, HealthApi, AdminApi)),
        "tally",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Real-time analytics API: post metrics (timestamp, value, type) and read \
             aggregated summaries. Every error is RFC 9457 application/problem+json.",
    )
}

/// The OpenAPI document exactly as served at `/openapi.json` (`spec`: poem-openapi's,
/// with the rules it cannot state from the types).
pub fn spec_json() -> String {
    spec::json().to_owned()
}

/// The spec's `paths` (template -> operations), read once for the lookups
/// below.
fn documented_paths() -> &'static serde_json::Map<String, serde_json::Value> {
    static PATHS: OnceLock<serde_json::Map<String, serde_json::Value>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&spec_json()).unwrap_or_default();
        spec["paths"].as_object().cloned().unwrap_or_default()
    })
}

/// The documented route template (`/admin/breakers/{name}`) of a route pattern
/// as poem-openapi registers it (`/admin/breakers/:param0`: it numbers path
/// parameters), for metric labels and span names; `None` for anything else.
pub fn route_template(pattern: &str) -> Option<Arc<str>> {
    static TEMPLATES: OnceLock<HashMap<String, Arc<str>>> = OnceLock::new();
    TEMPLATES
        .get_or_init(|| {
            documented_paths()
                .keys()
                .filter(|path| path.contains('{'))
                .map(|path| (registered_pattern(path), Arc::from(path.as_str())))
                .collect()
        })
        .get(pattern)
        .cloned()
}

/// Any error that escaped an API handler as problem+json, a 405 with the `Allow` its
/// route answers.
pub fn error_to_response(err: poem::Error) -> poem::Response {
    crate::http::problem::error_to_response(err, allowed_methods)
}

/// The `Allow` header of a route pattern as poem-openapi registers it: the
/// methods its operations answer, from the spec (`GET, POST`); `None` for
/// anything the spec does not describe.
pub fn allowed_methods(pattern: &str) -> Option<poem::http::HeaderValue> {
    static ALLOWED: OnceLock<HashMap<String, poem::http::HeaderValue>> = OnceLock::new();
    ALLOWED
        .get_or_init(|| {
            documented_paths()
                .iter()
                .filter_map(|(path, operations)| {
                    let methods: Vec<String> = operations
                        .as_object()?
                        .keys()
                        .map(|m| m.to_ascii_uppercase())
                        .collect();
                    let value = poem::http::HeaderValue::from_str(&methods.join(", ")).ok()?;
                    Some((registered_pattern(path), value))
                })
                .collect()
        })
        .get(pattern)
        .cloned()
}

/// `/a/{x}/b/{y}` as poem-openapi registers it: `/a/:param0/b/:param1`.
fn registered_pattern(template: &str) -> String {
    let mut n = 0;
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                n += 1;
                format!(":param{}", n - 1)
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::{registered_pattern, route_template};

    #[test]
    fn path_parameters_are_numbered_as_poem_openapi_registers_them() {
        assert_eq!(registered_pattern("/a/{x}/b/{y}"), "/a/:param0/b/:param1");
        assert_eq!(registered_pattern("/health"), "/health");
    }

    #[test]
    fn a_registered_pattern_maps_back_to_its_documented_template() {
        assert_eq!(
            route_template("/admin/breakers/:param0").as_deref(),
            Some("/admin/breakers/{name}")
        );
        assert_eq!(route_template("/api/metrics"), None);
    }
}
