//! The embedded ops dashboard: server-rendered pages (askama, under
//! `templates/dashboard/`) for the overview, breakers, cache, limits and
//! metrics, kept live by a server-sent event stream of re-rendered fragments,
//! with operator controls behind an admin-token session and CSRF tokens.
//!
//! Everything is served by the binary (no CDN, works offline) under a strict
//! Content-Security-Policy; charts are inline SVG drawn from an in-process
//! per-second history of the last 15 minutes.

mod actions;
mod assets;
pub mod charts;
pub mod format;
pub mod history;
pub mod live;
mod pages;
pub mod series_chart;
pub mod session;
pub mod snapshot;
pub mod views;

use std::sync::Arc;

use askama::Template;
use parking_lot::Mutex;
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Route, get, post};

use crate::config::{CacheSettings, Settings};
use crate::state::AppState;
use history::History;
use live::{Live, Page};
use session::Sessions;
use snapshot::Snapshot;
use views::{
    breakers::BreakersLive, cache::CacheLive, limits::LimitsLive, metrics::MetricsLive,
    overview::OverviewLive,
};

/// No inline script or style, nothing from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

pub struct Dashboard {
    state: Arc<AppState>,
    cache_settings: CacheSettings,
    /// The upstream is this process' own simulator (no `UPSTREAM_URL`).
    builtin_upstream: bool,
    history: Mutex<History>,
    live: Live,
    sessions: Sessions,
}

impl Dashboard {
    pub fn new(state: Arc<AppState>, settings: &Settings) -> Arc<Self> {
        Arc::new(Self {
            state,
            cache_settings: settings.cache.clone(),
            builtin_upstream: settings.upstream.url.is_none(),
            history: Mutex::new(History::default()),
            live: Live::new(
                settings.dashboard.max_streams,
                settings.dashboard.max_streams_per_client,
            ),
            sessions: Sessions::new(settings.dashboard.session_ttl),
        })
    }

    /// Streams open right now.
    pub fn open_streams(&self) -> usize {
        self.live.open_streams()
    }

    /// The live region of `page`, rendered from `snapshot` and the history; the metrics
    /// page's is the live task's newest (it queries the store: never per request).
    pub async fn render_live(&self, page: Page, snapshot: &Snapshot) -> String {
        let rendered = match page {
            Page::Metrics => return self.live.metrics_fragment().await.to_string(),
            _ => {
                let history = self.history.lock();
                match page {
                    Page::Overview => {
                        OverviewLive::build(snapshot, &history, self.builtin_upstream).render()
                    }
                    Page::Breakers => BreakersLive::build(snapshot, &history).render(),
                    Page::Cache => {
                        CacheLive::build(snapshot, &history, &self.cache_settings).render()
                    }
                    Page::Limits | Page::Metrics => LimitsLive::build(snapshot, &history).render(),
                }
            }
        };
        rendered.unwrap_or_else(|e| render_failed(page, e))
    }

    /// The metrics page's live region, from the store (the live task calls this).
    async fn render_metrics(&self, snapshot: &Snapshot) -> String {
        MetricsLive::gather(&self.state, snapshot)
            .await
            .render()
            .unwrap_or_else(|e| render_failed(Page::Metrics, e))
    }
}

fn render_failed(page: Page, e: askama::Error) -> String {
    tracing::error!(error = %e, page = page.as_str(), "dashboard fragment failed to render");
    "<p class=\"error\">This part of the page could not be rendered; see the service log.</p>"
        .to_owned()
}

/// `/dashboard` and everything under it, with the security headers.
pub fn routes(dashboard: Arc<Dashboard>) -> impl Endpoint + use<> {
    Route::new()
        .at("/", get(pages::overview))
        .at("/breakers", get(pages::breakers))
        .at("/breakers/:name", post(actions::breaker))
        .at("/cache", get(pages::cache))
        .at("/limits", get(pages::limits))
        .at("/metrics", get(pages::metrics))
        .at("/stream", get(pages::stream))
        .at("/login", get(pages::login).post(actions::login))
        .at("/logout", post(actions::logout))
        .at("/simulator", post(actions::simulator))
        .at("/assets/:file", get(assets::serve))
        .data(dashboard)
        // Errors become their problem+json responses here, inside the
        // headers below: `SetHeader` passes an error through untouched, so a
        // 404, 400 or a refused form would otherwise go out without them.
        .catch_all_error(
            |err| async move { crate::http::problem::error_to_response(err, |_| None) },
        )
        .with(
            SetHeader::new()
                .overriding("content-security-policy", CONTENT_SECURITY_POLICY)
                .overriding("x-content-type-options", "nosniff")
                .overriding("x-frame-options", "DENY")
                // Not `no-referrer`: browsers would then send `Origin: null` on our own forms.
                .overriding("referrer-policy", "same-origin")
                .overriding("cross-origin-opener-policy", "same-origin")
                .overriding("cross-origin-resource-policy", "same-origin"),
        )
}

#[cfg(test)]
mod tests;
