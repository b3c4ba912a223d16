//! `GET /api/metrics/summary`: the lookup (`crate::summary`, shared with the
//! dashboard) and the response. The response is the
//! hottest one the API writes, so it is written by hand (`SummaryReply`):
//! the derived one parses each header name and formats each value on every
//! request.

use std::marker::PhantomData;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::http::header::{AGE, CONTENT_TYPE};
use poem::http::{HeaderName, HeaderValue};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object};

use super::payload::RenderedJson;
use super::responses::ReadError;
use crate::cache::Lookup;
use crate::domain::{Aggregates, SummaryReport};
use crate::http::problem::FieldError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::summary::SummaryQuery;

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Aggregates of one metric type over a window. With no points in the window,
/// `count` is 0 and every aggregate is null.
#[derive(Debug, Object)]
pub struct Summary {
    #[oai(rename = "type")]
    pub metric_type: String,
    /// The requested period (`all`, `hourly`, `daily` or a duration).
    pub period: String,
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window: the server clock plus the allowed future skew, so
    /// points stamped slightly ahead are included.
    pub to: DateTime<Utc>,
    #[oai(flatten)]
    pub aggregates: AggregatesView,
}

/// The aggregates of a window's points: the summary's, and each step's of a series.
/// With no points, `count` is 0 and every other field is null.
#[derive(Debug, Object)]
pub struct AggregatesView {
    pub count: u64,
    /// Sum of values; saturates at ±1.7976931348623157e308 instead of overflowing.
    #[oai(nullable)]
    pub sum: Option<f64>,
    #[oai(nullable)]
    pub average_value: Option<f64>,
    #[oai(nullable)]
    pub min_value: Option<f64>,
    #[oai(nullable)]
    pub max_value: Option<f64>,
    /// Value of the point with the latest timestamp.
    #[oai(nullable)]
    pub latest_value: Option<f64>,
    /// Percentiles from a mergeable quantile sketch (DDSketch, 0.8% relative accuracy) on
    /// both stores: within 1% relative error of the exact values.
    #[oai(nullable)]
    pub p50: Option<f64>,
    #[oai(nullable)]
    pub p90: Option<f64>,
    #[oai(nullable)]
    pub p95: Option<f64>,
    #[oai(nullable)]
    pub p99: Option<f64>,
}

impl From<&Aggregates> for AggregatesView {
    fn from(a: &Aggregates) -> Self {
        Self {
            count: a.count,
            sum: a.sum,
            average_value: a.average,
            min_value: a.min,
            max_value: a.max,
            latest_value: a.latest,
            p50: a.p50,
            p90: a.p90,
            p95: a.p95,
            p99: a.p99,
        }
    }
}

/// The summary's response as the spec documents it (status, body, headers);
/// handlers answer with [`SummaryReply`], which writes the same response.
#[allow(dead_code)]
#[derive(Debug, ApiResponse)]
pub enum SummaryResponse {
    /// The summary; the headers say whether it came from the cache.
    #[oai(status = 200)]
    Ok(
        RenderedJson<Summary>,
        /// RFC 9211 cache status, e.g. `tally; hit; ttl=8; detail=memory`,
        /// `tally; fwd=miss; stored`, `tally; hit; fwd=stale; ttl=-3; detail=redis`.
        #[oai(header = "Cache-Status")]
        String,
        /// `HIT`, `MISS` or `STALE`.
        #[oai(header = "X-Cache")]
        String,
        /// Seconds since the summary was computed.
        #[oai(header = "Age")]
        u64,
    ),
}

/// A summary response: documented as [`SummaryResponse`], written directly.
pub type SummaryReply = CachedReply<SummaryResponse>;

/// A cached answer's response, documented as `D` (status, body, headers) and written
/// directly: the body rendered once per cache entry, then `Cache-Status`, `X-Cache`
/// and `Age`.
#[derive(Debug)]
pub struct CachedReply<D> {
    body: Bytes,
    cache_status: String,
    x_cache: &'static str,
    age_secs: u64,
    _documented: PhantomData<fn() -> D>,
}

impl<D> CachedReply<D> {
    pub fn new(body: Bytes, lookup: &Lookup) -> Self {
        Self {
            body,
            cache_status: lookup.cache_status(),
            x_cache: lookup.x_cache(),
            age_secs: lookup.age.as_secs(),
            _documented: PhantomData,
        }
    }
}

impl<D: ApiResponse + Send> ApiResponse for CachedReply<D> {
    fn meta() -> MetaResponses {
        D::meta()
    }

    fn register(registry: &mut Registry) {
        D::register(registry);
    }
}

impl<D: Send> IntoResponse for CachedReply<D> {
    fn into_response(self) -> Response {
        let mut resp = Response::from(self.body);
        let headers = resp.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(<RenderedJson<Summary> as Payload>::CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(self.cache_status)) {
            headers.insert(CACHE_STATUS, v);
        }
        headers.insert(X_CACHE, HeaderValue::from_static(self.x_cache));
        headers.insert(AGE, HeaderValue::from(self.age_secs));
        resp
    }
}

/// The summary of `metric_type` over `period` (default `all`), or 400/422/503.
pub async fn answer(
    state: &AppState,
    metric_type: &str,
    period: Option<String>,
) -> Result<SummaryReply, ReadError> {
    let query = SummaryQuery::parse(metric_type, period.as_deref()).map_err(|invalid| {
        ReadError::invalid(
            invalid
                .into_iter()
                .map(|(field, e)| FieldError::new(field, e))
                .collect(),
        )
    })?;
    let lookup = state.summaries.lookup(&query).await?;
    let requested = query.period_raw;
    let entry = &lookup.entry;
    let report = entry.summary().ok_or_else(wrong_kind)?;
    // Hits in the entry's own spelling of the period reuse its rendered body.
    let body = if report.period == requested {
        entry
            .rendered
            .get_or_init(|| RenderedJson::render(&summary_view(report, requested)))
            .clone()
    } else {
        RenderedJson::render(&summary_view(report, requested))
    };
    Ok(SummaryReply::new(body, &lookup))
}

/// A cache entry of another kind under a key of this one: a bug, answered as a failure.
pub fn wrong_kind() -> StoreError {
    StoreError::Unavailable("the cache answered with another kind of entry".into())
}

fn summary_view(report: &SummaryReport, period: String) -> Summary {
    Summary {
        metric_type: report.metric_type.clone(),
        period,
        from: report.from,
        to: report.to,
        aggregates: AggregatesView::from(&report.aggregates),
    }
}
