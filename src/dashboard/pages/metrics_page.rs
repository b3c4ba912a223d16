//! `/dashboard/metrics`: the store's page, and with a type, that type's series chart
//! and summary.

use std::sync::Arc;

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};

use super::{Chrome, PageQuery, html};
use crate::dashboard::Dashboard;
use crate::dashboard::live::Page;
use crate::dashboard::views::metrics::SummaryView;
use crate::dashboard::views::series::{SeriesForm, SeriesView};

#[derive(Template)]
#[template(path = "dashboard/metrics.html")]
struct MetricsPage {
    chrome: Chrome,
    /// The form's values, as typed.
    metric_type: String,
    period: String,
    step: String,
    summary: Option<SummaryView>,
    /// The chart section, already rendered (and escaped) by its template.
    chart: Option<String>,
    /// The chart's refusal names the type or the period: the summary, refused by the
    /// same rules, would only repeat it.
    summary_refused_too: bool,
}

/// `GET /dashboard/metrics[?type=…&period=…&step=…]`: with a type, its series chart and
/// its summary (looked up side by side), the stream then refreshing the chart.
#[handler]
pub async fn metrics(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Query(q): Query<PageQuery>,
) -> Response {
    let mut chrome = d.chrome(req, Page::Metrics, "Metrics", &q).await;
    let form = SeriesForm::new(
        q.metric_type.as_deref().unwrap_or_default(),
        q.period.as_deref(),
        q.step.as_deref(),
    );
    let (summary, chart) = match &q.metric_type {
        Some(t) => {
            let (summary, (chart, query)) = tokio::join!(
                SummaryView::lookup(&d.state, t, &form.period),
                SeriesView::lookup(&d.state, &form)
            );
            if query.is_some() {
                chrome.stream = form.stream_url();
            }
            (Some(summary), Some(chart))
        }
        None => (None, None),
    };
    let page = MetricsPage {
        chrome,
        metric_type: form.metric_type,
        period: form.period,
        step: form.step,
        summary,
        summary_refused_too: chart
            .as_ref()
            .and_then(|c| c.refused.as_ref())
            .is_some_and(|r| {
                r.fields
                    .iter()
                    .any(|(f, _)| matches!(*f, "type" | "period"))
            }),
        chart: chart.map(|c| c.html()),
    };
    html(StatusCode::OK, page.render())
}
