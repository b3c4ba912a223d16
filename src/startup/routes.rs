//! Every route of the service and the middleware around them.

use std::sync::Arc;

use poem::middleware::CatchPanic;
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, IntoResponse, Route};

use crate::api;
use crate::api::payload::{BodyLimit, InFlight};
use crate::config::Settings;
use crate::dashboard::{self, Dashboard};
use crate::http::problem::Problem;
use crate::limiter::RateLimit;
use crate::state::AppState;
use crate::telemetry::{self, RequestLog};
use crate::upstream::simulator;

/// Every route and the middleware around them.
///
/// Order, outermost first: request log (sees the final status) -> error
/// rendering (any error becomes problem+json) -> panic guard -> rate limit
/// (`/api/*` only, before any work is done) -> request data -> routes.
pub fn routes(
    state: Arc<AppState>,
    settings: &Settings,
    dashboard: Option<Arc<Dashboard>>,
) -> impl Endpoint + use<> {
    let api = api::service();
    // The document and Swagger UI as `api::spec` completes them (not poem-openapi's own).
    let docs = poem::endpoint::make_sync(|_| poem::web::Html(api::spec::swagger_html()));
    let spec = poem::endpoint::make_sync(|_| {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(api::spec::json())
    });
    let limiter = state.limiter.clone();
    let simulator = Arc::clone(&state.upstream.simulator);
    let traffic = Arc::clone(&state.traffic);
    let mut route = Route::new()
        .nest("/simulator", simulator::routes(simulator))
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .at("/metrics", poem::get(telemetry::metrics::endpoint))
        .nest("/", api);
    let redirect_root = dashboard.is_some();
    let lifecycle = Arc::clone(&state);
    if let Some(dashboard) = dashboard {
        route = route.nest("/dashboard", dashboard::routes(dashboard));
    }
    route
        // `GET /` opens the dashboard (the API's nest at "/" owns the route table's root).
        .around(move |ep, req| async move {
            if redirect_root && req.uri().path() == "/" && req.method() == poem::http::Method::GET {
                return Ok(Redirect::see_other("/dashboard").into_response());
            }
            ep.call(req).await.map(IntoResponse::into_response)
        })
        // Once shutdown has begun, every answer closes its connection, so clients and
        // balancers move to another instance instead of reusing this one.
        .around(move |ep, req| {
            let stopping = !lifecycle.lifecycle.is_accepting();
            async move {
                let mut resp = ep.call(req).await?.into_response();
                if stopping {
                    resp.headers_mut().insert(
                        poem::http::header::CONNECTION,
                        poem::http::HeaderValue::from_static("close"),
                    );
                }
                Ok(resp)
            }
        })
        .data(state)
        .data(BodyLimit {
            bytes: settings.server.max_body_bytes,
            timeout: settings.server.body_timeout,
            in_flight: InFlight::new(settings.server.max_inflight_bytes),
        })
        .with(RateLimit::new(limiter, api::error_to_response))
        .with(CatchPanic::new().with_handler(|_| {
            Problem::status(
                poem::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )
            .into_response()
        }))
        .catch_all_error(|err| async move { api::error_to_response(err) })
        .with(RequestLog::new(traffic, api::route_template))
}

/// Every counter and gauge whose labels are known registered at zero now, so `rate()` and
/// absent-series alerts work from the first scrape, not from each series' first event.
pub(super) fn register_metrics_at_zero(state: &AppState) {
    if telemetry::metrics::installed().is_none() {
        return;
    }
    telemetry::metrics::register_at_zero();
    state.cache.register_metrics();
    if let Some(limiter) = &state.limiter {
        limiter.register_metrics();
    }
    for breaker in state.breakers.all() {
        breaker.register_metrics();
    }
}
