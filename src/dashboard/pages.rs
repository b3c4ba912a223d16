//! The page handlers: each renders a complete page (current numbers included,
//! so it reads fine without JavaScript) around its live fragment, and the
//! event stream that keeps that fragment fresh.

use std::sync::Arc;

use askama::Template;
use poem::http::StatusCode;
use poem::web::sse::SSE;
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::Dashboard;
use super::live::{self, Page, StreamRefused};
use super::snapshot::Snapshot;
use super::views::series::SeriesForm;
use crate::http::problem::Problem;
use crate::upstream::SimulatorMode;

mod metrics_page;
pub use metrics_page::metrics;

/// Keep-alive comments on an idle stream (proxies drop silent connections).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// What every page shares: title, navigation, the operator, the live region.
pub struct Chrome {
    pub title: &'static str,
    /// `overview`, `breakers`, … (navigation).
    pub page: &'static str,
    /// The page's event stream: `/dashboard/stream?page=…`, with the metrics page's
    /// chart query when it shows one (URL-encoded; the template escapes it again).
    pub stream: String,
    pub operator: Option<OperatorView>,
    /// A fixed message after an action (never text from the request).
    pub notice: Option<&'static str>,
    pub version: &'static str,
    /// The live fragment, already rendered (and escaped) by its template.
    pub live: String,
}

pub struct OperatorView {
    pub who: String,
    pub csrf: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    done: Option<String>,
    #[serde(rename = "type")]
    metric_type: Option<String>,
    period: Option<String>,
    step: Option<String>,
}

/// The messages `?done=` may select.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "breaker" => Some("Done: the breaker action is in the audit log."),
        "simulator" => Some("Done: the simulator runs with the new settings."),
        "invalid" => Some("Nothing changed: the settings were not valid."),
        "signed_in" => Some("Signed in: operator controls are on."),
        "signed_out" => Some("Signed out."),
        _ => None,
    }
}

impl Dashboard {
    async fn chrome(
        &self,
        req: &Request,
        page: Page,
        title: &'static str,
        q: &PageQuery,
    ) -> Chrome {
        let snapshot = Snapshot::take(&self.state);
        Chrome {
            title,
            page: page.as_str(),
            stream: format!("/dashboard/stream?page={}", page.as_str()),
            operator: self.sessions.of(req).map(|(_, s)| OperatorView {
                who: s.who.clone(),
                csrf: s.csrf.clone(),
            }),
            notice: notice(q.done.as_deref()),
            version: env!("CARGO_PKG_VERSION"),
            live: self.render_live(page, &snapshot).await,
        }
    }
}

pub fn html(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .header("cache-control", "no-store")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "dashboard page failed to render");
            Problem::status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
            .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    failure_rate: String,
    latency_ms: u64,
    /// (mode, selected)
    modes: Vec<(&'static str, bool)>,
}

#[handler]
pub async fn overview(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Query(q): Query<PageQuery>,
) -> Response {
    let chrome = d.chrome(req, Page::Overview, "Overview", &q).await;
    let sim = d.state.upstream.simulator.config();
    let page = OverviewPage {
        chrome,
        failure_rate: format!("{}", sim.failure_rate),
        latency_ms: sim.latency_ms,
        modes: SimulatorMode::ALL
            .iter()
            .map(|m| (m.as_str(), *m == sim.mode))
            .collect(),
    };
    html(StatusCode::OK, page.render())
}

#[derive(Template)]
#[template(path = "dashboard/breakers.html")]
struct BreakersPage {
    chrome: Chrome,
    names: Vec<String>,
}

#[handler]
pub async fn breakers(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Query(q): Query<PageQuery>,
) -> Response {
    let chrome = d.chrome(req, Page::Breakers, "Circuit breakers", &q).await;
    let mut names: Vec<String> = d
        .state
        .breakers
        .all()
        .iter()
        .map(|b| b.name().to_owned())
        .collect();
    names.sort();
    html(StatusCode::OK, BreakersPage { chrome, names }.render())
}

#[derive(Template)]
#[template(path = "dashboard/plain.html")]
struct PlainPage {
    chrome: Chrome,
}

#[handler]
pub async fn cache(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Query(q): Query<PageQuery>,
) -> Response {
    let chrome = d.chrome(req, Page::Cache, "Summary cache", &q).await;
    html(StatusCode::OK, PlainPage { chrome }.render())
}

#[handler]
pub async fn limits(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Query(q): Query<PageQuery>,
) -> Response {
    let chrome = d.chrome(req, Page::Limits, "Rate limits", &q).await;
    html(StatusCode::OK, PlainPage { chrome }.render())
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub admin_on: bool,
    pub error: Option<&'static str>,
}

impl Dashboard {
    pub async fn login_page(&self, req: &Request, error: Option<&'static str>) -> LoginPage {
        LoginPage {
            chrome: self
                .chrome(req, Page::Overview, "Sign in", &PageQuery::default())
                .await,
            admin_on: !self.state.admin_tokens.0.is_empty(),
            error,
        }
    }
}

#[handler]
pub async fn login(d: Data<&Arc<Dashboard>>, req: &Request) -> Response {
    html(StatusCode::OK, d.login_page(req, None).await.render())
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    page: String,
    /// The metrics page's chart, as its form asked for it.
    #[serde(rename = "type")]
    metric_type: Option<String>,
    period: Option<String>,
    step: Option<String>,
}

/// `GET /dashboard/stream?page=…`: `update` events carrying the page's live
/// fragment, at least once a second. For the metrics page with a chart
/// (`&type=…&period=…&step=…`), also `chart` events with the chart re-rendered every
/// `METRICS_REFRESH`; a query the API would refuse gets no chart events (the page
/// already says why).
#[handler]
pub async fn stream(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Query(q): Query<StreamQuery>,
) -> Response {
    let Some(page) = Page::parse(&q.page) else {
        return Problem::status(
            StatusCode::BAD_REQUEST,
            "page must be one of overview, breakers, cache, limits, metrics",
        )
        .into_response();
    };
    let (_, client) = d.state.identify.client(req);
    let slot = match d.live.open_stream(client) {
        Ok(slot) => slot,
        Err(refused) => {
            let mut resp = match refused {
                StreamRefused::Full => {
                    Problem::unavailable("too many dashboard streams are open").into_response()
                }
                StreamRefused::PerClient => Problem {
                    problem_type: "urn:tally:problem:too-many-streams".into(),
                    title: "Too Many Requests".into(),
                    status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
                    detail: "this client has as many dashboard streams open as it may \
                             (DASHBOARD_MAX_STREAMS_PER_CLIENT); close one first"
                        .into(),
                    errors: None,
                }
                .into_response(),
            };
            resp.headers_mut()
                .insert("retry-after", poem::http::HeaderValue::from_static("5"));
            return resp;
        }
    };
    let first = d.render_live(page, &Snapshot::take(&d.state)).await;
    let chart = match (page, &q.metric_type) {
        (Page::Metrics, Some(t)) => {
            let form = SeriesForm::new(t, q.period.as_deref(), q.step.as_deref());
            form.parse(&d.state).ok().map(|query| (form, query))
        }
        _ => None,
    };
    let events = live::events(Arc::clone(&d), page, first, slot, chart);
    SSE::new(events).keep_alive(KEEP_ALIVE).into_response()
}
