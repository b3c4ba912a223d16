//! `GET /api/metrics/series`: the lookup (`crate::series`, shared with the dashboard's
//! chart) and the response, written like the summary's (`CachedReply`): rendered once per
//! cache entry, with `Cache-Status`, `X-Cache` and `Age`.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object};

use super::payload::RenderedJson;
use super::responses::ReadError;
use super::summary::{AggregatesView, CachedReply, wrong_kind};
use crate::domain::{SeriesPoint, SeriesReport};
use crate::http::problem::FieldError;
use crate::series::SeriesQuery;
use crate::state::AppState;

/// One metric type's window cut into steps, oldest first. Steps are aligned to multiples
/// of `step` since 1970-01-01T00:00:00Z (as PostgreSQL's `date_bin` with that origin), so
/// calls a minute apart share their full steps.
#[derive(Debug, Object)]
pub struct Series {
    #[oai(rename = "type")]
    pub metric_type: String,
    /// The requested period (`all`, `hourly`, `daily` or a duration).
    pub period: String,
    /// The step, in its shortest spelling (`5m`, `1h`, `90m`, `1d`).
    pub step: String,
    /// `true` when no `step` was asked for and the service chose it (60 to about 210 steps).
    pub step_chosen: bool,
    /// Start of the first step (inclusive).
    pub from: DateTime<Utc>,
    /// End of the last step (exclusive): the step holding the time of the answer ends here.
    pub to: DateTime<Utc>,
    /// Every step of the window, oldest first, `ceil(period / step)` of them (at most
    /// `SERIES_MAX_POINTS`); a step without points is present with `count` 0.
    pub points: Vec<SeriesPointView>,
}

/// One step: `[start, start + step)`, and the aggregates of its points; each equals
/// what `GET /api/metrics/summary` answers for exactly that interval.
#[derive(Debug, Object)]
pub struct SeriesPointView {
    /// Start of the step (inclusive), a multiple of `step` since the epoch.
    pub start: DateTime<Utc>,
    /// The window covers only part of this step: the last step is still running (its end
    /// is after the answer was computed), and the first one is cut when retention reaches
    /// into it. Its numbers cover the part inside the window.
    pub partial: bool,
    /// The step's aggregates; each equals the summary of exactly its interval.
    #[oai(flatten)]
    pub aggregates: AggregatesView,
}

/// The series' response as the spec documents it; handlers answer with [`SeriesReply`].
#[allow(dead_code)]
#[derive(Debug, ApiResponse)]
pub enum SeriesResponse {
    /// The series; the headers say whether it came from the cache.
    #[oai(status = 200)]
    Ok(
        RenderedJson<Series>,
        /// RFC 9211 cache status, e.g. `tally; hit; ttl=8; detail=memory`,
        /// `tally; fwd=miss; stored`.
        #[oai(header = "Cache-Status")]
        String,
        /// `HIT`, `MISS` or `STALE`.
        #[oai(header = "X-Cache")]
        String,
        /// Seconds since the series was computed.
        #[oai(header = "Age")]
        u64,
    ),
}

pub type SeriesReply = CachedReply<SeriesResponse>;

/// The series of `metric_type` over `period` (default `all`) at `step` (default chosen),
/// or 400/422/503.
pub async fn answer(
    state: &AppState,
    metric_type: &str,
    period: Option<&str>,
    step: Option<&str>,
) -> Result<SeriesReply, ReadError> {
    let query =
        SeriesQuery::parse(metric_type, period, step, state.series.rules()).map_err(|refused| {
            let errors = refused
                .fields
                .into_iter()
                .map(|(field, e)| FieldError::new(field, e))
                .collect();
            match refused.unparseable {
                true => ReadError::unparseable(errors),
                false => ReadError::invalid(errors),
            }
        })?;
    let lookup = state.series.lookup(&query).await?;
    let entry = &lookup.entry;
    let report = entry.series().ok_or_else(wrong_kind)?;
    let render = || RenderedJson::render(&series_view(report, &query));
    // Hits asked the way the entry was computed reuse its rendered body.
    let body = if report.period == query.period_raw && report.step_chosen == query.step_chosen {
        entry.rendered.get_or_init(render).clone()
    } else {
        render()
    };
    Ok(SeriesReply::new(body, &lookup))
}

fn series_view(report: &SeriesReport, query: &SeriesQuery) -> Series {
    Series {
        metric_type: report.metric_type.clone(),
        period: query.period_raw.clone(),
        step: report.step.clone(),
        step_chosen: query.step_chosen,
        from: report.from,
        to: report.to,
        points: report.points.iter().map(point_view).collect(),
    }
}

fn point_view(p: &SeriesPoint) -> SeriesPointView {
    SeriesPointView {
        start: p.start,
        partial: p.partial,
        aggregates: AggregatesView::from(&p.aggregates),
    }
}
