//! The metrics page's chart of one type: the form's type, period and step go through
//! `SeriesQuery::parse` with the service's rules and the series through
//! `state.series.lookup`, the very calls `GET /api/metrics/series` makes, so the chart
//! has the API's limits (`SERIES_MAX_POINTS`, the step rules), its cache and its numbers.
//! What the API would refuse is shown with the API's own messages.
//!
//! The page renders the chart as of its load (complete without JavaScript); its stream
//! re-renders it every `METRICS_REFRESH` for as long as the page is open (`live.rs`).

use askama::Template;

use super::metrics::STORE_TIMEOUT;
use crate::dashboard::format;
use crate::dashboard::live::Page;
use crate::dashboard::render_failed;
use crate::dashboard::series_chart::SeriesChart;
use crate::series::{Refused, SeriesQuery};
use crate::state::AppState;

/// The chart's fields of the metrics form, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesForm {
    pub metric_type: String,
    /// `all` when absent.
    pub period: String,
    /// Empty: the service chooses the step.
    pub step: String,
}

impl SeriesForm {
    pub fn new(metric_type: &str, period: Option<&str>, step: Option<&str>) -> Self {
        Self {
            metric_type: metric_type.to_owned(),
            period: period.unwrap_or("all").to_owned(),
            step: step.unwrap_or_default().to_owned(),
        }
    }

    /// The series query, by the API's rules (an empty step is no step: the form always
    /// sends the field).
    pub fn parse(&self, state: &AppState) -> Result<SeriesQuery, Refused> {
        let step = Some(self.step.as_str()).filter(|s| !s.is_empty());
        SeriesQuery::parse(
            &self.metric_type,
            Some(&self.period),
            step,
            state.series.rules(),
        )
    }

    /// The metrics page's stream with this chart attached, every value URL-encoded.
    pub fn stream_url(&self) -> String {
        let mut pairs = vec![
            ("page", "metrics"),
            ("type", self.metric_type.as_str()),
            ("period", self.period.as_str()),
        ];
        if !self.step.is_empty() {
            pairs.push(("step", self.step.as_str()));
        }
        let query = serde_urlencoded::to_string(pairs).unwrap_or_else(|_| "page=metrics".into());
        format!("/dashboard/stream?{query}")
    }
}

/// Why there is no chart: what the API would answer (400 or 422) and each field's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub fields: Vec<(&'static str, String)>,
}

/// The chart section (the inside of `#series-chart`).
#[derive(Debug, Clone, Default, PartialEq, Template)]
#[template(path = "dashboard/series_chart.html")]
pub struct SeriesView {
    /// The form's values, as typed (escaped when shown).
    pub form: SeriesForm,
    pub chart: Option<SeriesChart>,
    /// The chart told in words: the SVG's title and accessible name.
    pub label: String,
    /// The step in its shortest spelling, and whether the service chose it.
    pub step: String,
    pub step_chosen: bool,
    /// The first step's start and the last one's end.
    pub from: String,
    pub to: String,
    /// Cache-Status of the lookup, as the API would send it.
    pub cache_status: String,
    pub refused: Option<Refusal>,
    /// The store failed or did not answer in time.
    pub error: Option<String>,
}

impl SeriesView {
    fn of(form: &SeriesForm) -> Self {
        Self {
            form: form.clone(),
            ..Self::default()
        }
    }

    /// The chart of what the form asks for (with the query, when the API would accept it).
    pub async fn lookup(state: &AppState, form: &SeriesForm) -> (Self, Option<SeriesQuery>) {
        match form.parse(state) {
            Ok(query) => (Self::refresh(state, form, &query).await, Some(query)),
            Err(refused) => {
                let mut view = Self::of(form);
                view.refused = Some(Refusal {
                    status: if refused.unparseable { 400 } else { 422 },
                    fields: refused.fields,
                });
                (view, None)
            }
        }
    }

    /// The chart of an accepted query, through the series service (and its cache).
    pub async fn refresh(state: &AppState, form: &SeriesForm, query: &SeriesQuery) -> Self {
        let mut view = Self::of(form);
        match tokio::time::timeout(STORE_TIMEOUT, state.series.lookup(query)).await {
            Ok(Ok(lookup)) => match lookup.entry.series() {
                Some(report) => {
                    let chart = SeriesChart::draw(report);
                    view.step = report.step.clone();
                    view.step_chosen = query.step_chosen;
                    view.from = format::time(report.from);
                    view.to = format::time(report.to);
                    view.label = describe(&report.metric_type, &query.period_raw, &view, &chart);
                    view.chart = Some(chart);
                    view.cache_status = lookup.cache_status();
                }
                None => view.error = Some("the cache answered with another kind of entry".into()),
            },
            Ok(Err(e)) => view.error = Some(e.to_string()),
            Err(_) => view.error = Some("the store did not answer in time".to_owned()),
        }
        view
    }

    /// Rendered, or the page's line saying it could not be.
    pub fn html(&self) -> String {
        self.render()
            .unwrap_or_else(|e| render_failed(Page::Metrics, e))
    }
}

/// E.g. "Average of cpu per 5m step over hourly, with the min–max band and p95: 12 steps
/// from … to … UTC, 3 with points, values 1 to 6".
fn describe(metric_type: &str, period: &str, view: &SeriesView, chart: &SeriesChart) -> String {
    let values = match &chart.range {
        Some((lo, hi)) => format!("{} with points, values {lo} to {hi}", chart.filled),
        None => "none with points".to_owned(),
    };
    format!(
        "Average of {metric_type} per {} step over {period}, with the min–max band and p95: \
         {} steps from {} to {}, {values}",
        view.step, chart.steps, view.from, view.to
    )
}
