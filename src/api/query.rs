//! Reads: the summary of a type, its newest raw points, and the list of types.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use tracing::Instrument;

use super::ApiTags;
use super::ingest::MetricView;
use super::payload::RenderedJson;
use super::problem::FieldError;
use super::responses::ReadError;
use crate::cache::{Lookup, SummaryKey};
use crate::domain::{MetricType, Period, SummaryReport, TimeWindow};
use crate::state::AppState;
use crate::store::StoreError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

pub struct QueryApi;

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
    /// Percentiles, within 1% relative error of the exact values.
    #[oai(nullable)]
    pub p50: Option<f64>,
    #[oai(nullable)]
    pub p90: Option<f64>,
    #[oai(nullable)]
    pub p95: Option<f64>,
    #[oai(nullable)]
    pub p99: Option<f64>,
}

#[derive(Debug, Object)]
pub struct RecentMetrics {
    #[oai(rename = "type")]
    pub metric_type: String,
    /// Newest first.
    pub metrics: Vec<MetricView>,
}

#[derive(Debug, Object)]
pub struct TypeView {
    #[oai(rename = "type")]
    pub metric_type: String,
    /// Points currently stored.
    pub count: u64,
    pub last_timestamp: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct TypeList {
    /// Sorted by name.
    pub types: Vec<TypeView>,
}

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

#[derive(Debug, ApiResponse)]
pub enum RecentResponse {
    #[oai(status = 200)]
    Ok(Json<RecentMetrics>),
}

#[derive(Debug, ApiResponse)]
pub enum TypesResponse {
    #[oai(status = 200)]
    Ok(Json<TypeList>),
}

#[OpenApi(tag = "ApiTags::Query")]
impl QueryApi {
    /// Summarise a metric type
    ///
    /// `period` is `all` (default: everything retained), `hourly` (last hour),
    /// `daily` (last 24 h) or a duration such as `30s`, `15m`, `6h`, `7d`.
    /// Answered through a read-through cache: a summary may be up to
    /// `CACHE_TTL_SECONDS` old (see `Age` and `Cache-Status`).
    #[oai(
        path = "/api/metrics/summary",
        method = "get",
        operation_id = "get_summary"
    )]
    async fn summary(
        &self,
        state: Data<&Arc<AppState>>,
        /// Metric type name.
        #[oai(name = "type")]
        metric_type: Query<String>,
        /// `all`, `hourly`, `daily` or a duration (`30s`, `15m`, `6h`, `7d`).
        period: Query<Option<String>>,
    ) -> Result<SummaryResponse, ReadError> {
        let period_raw = period.0.unwrap_or_else(|| "all".to_owned());
        let (metric_type, period) =
            match (MetricType::parse(&metric_type), Period::parse(&period_raw)) {
                (Ok(t), Ok(p)) => (t, p),
                (t, p) => {
                    let mut errors = Vec::new();
                    if let Err(e) = t {
                        errors.push(FieldError::new("type", e));
                    }
                    if let Err(e) = p {
                        errors.push(FieldError::new("period", e));
                    }
                    return Err(ReadError::invalid(errors));
                }
            };
        let requested = period_raw.clone();
        let lookup = lookup_summary(&state, metric_type, period, period_raw).await?;
        let entry = &lookup.entry;
        // Hits in the entry's own spelling of the period reuse its rendered body.
        let body = if entry.report.period == requested {
            entry
                .rendered
                .get_or_init(|| RenderedJson::render(&summary_view(&entry.report, requested)))
                .clone()
        } else {
            RenderedJson::render(&summary_view(&entry.report, requested))
        };
        Ok(SummaryResponse::Ok(
            RenderedJson::new(body),
            lookup.cache_status(),
            lookup.x_cache().to_owned(),
            lookup.age.as_secs(),
        ))
    }

    /// Newest raw points of a type
    #[oai(path = "/api/metrics", method = "get", operation_id = "list_metrics")]
    async fn recent(
        &self,
        state: Data<&Arc<AppState>>,
        /// Metric type name.
        #[oai(name = "type")]
        metric_type: Query<String>,
        /// How many points, 1 to 1000 (default 100).
        limit: Query<Option<u32>>,
    ) -> Result<RecentResponse, ReadError> {
        let mut errors = Vec::new();
        let metric_type = MetricType::parse(&metric_type)
            .map_err(|e| errors.push(FieldError::new("type", e)))
            .ok();
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let Some(metric_type) = metric_type.filter(|_| errors.is_empty()) else {
            return Err(ReadError::invalid(errors));
        };
        let points = state.store.recent(&metric_type, limit as usize).await?;
        Ok(RecentResponse::Ok(Json(RecentMetrics {
            metric_type: metric_type.as_str().to_owned(),
            metrics: points.into_iter().map(MetricView::from).collect(),
        })))
    }

    /// Every known metric type
    #[oai(
        path = "/api/metrics/types",
        method = "get",
        operation_id = "list_types"
    )]
    async fn types(&self, state: Data<&Arc<AppState>>) -> Result<TypesResponse, ReadError> {
        let types = state.store.types().await?;
        Ok(TypesResponse::Ok(Json(TypeList {
            types: types
                .into_iter()
                .map(|t| TypeView {
                    metric_type: t.metric_type.as_str().to_owned(),
                    count: t.count,
                    last_timestamp: t.last_timestamp,
                })
                .collect(),
        })))
    }
}

/// `period` is the caller's spelling (`hourly` and `1h` share a cache entry).
/// The summary of `metric_type` over `period` through the read-through cache
/// (only the cache calls the store). `period_raw` is the period as requested.
/// Shared by the API and the dashboard, so both show the same numbers.
pub async fn lookup_summary(
    state: &AppState,
    metric_type: MetricType,
    period: Period,
    period_raw: String,
) -> Result<Lookup, StoreError> {
    let key = SummaryKey::new(&metric_type, period);
    let store = Arc::clone(&state.store);
    let (retention, skew) = (state.retention, state.max_future_skew);
    let compute = move || async move {
        let now = Utc::now();
        let span = match period {
            Period::All => retention,
            Period::Last(d) => d.min(retention),
        };
        let from = now - TimeDelta::from_std(span).unwrap_or(TimeDelta::MAX);
        let to = now + TimeDelta::from_std(skew).unwrap_or_default();
        // Validation keeps every stored point at or before `to`: no upper bound needed.
        let window = TimeWindow {
            from: Some(from),
            to: None,
        };
        let aggregates = store
            .summarize(&metric_type, window)
            .instrument(tracing::info_span!("store.summarize", metric.type.len = metric_type.as_str().len()))
            .await?;
        Ok(SummaryReport {
            metric_type: metric_type.as_str().to_owned(),
            period: period_raw,
            from,
            to,
            aggregates,
        })
    };
    let span = tracing::info_span!(
        "cache.lookup",
        cache.tier = tracing::field::Empty,
        cache.result = tracing::field::Empty,
    );
    let lookup = state
        .cache
        .get(&key, compute)
        .instrument(span.clone())
        .await?;
    let (tier, result) = lookup.trace_fields();
    span.record("cache.tier", tier);
    span.record("cache.result", result);
    Ok(lookup)
}

fn summary_view(report: &SummaryReport, period: String) -> Summary {
    let agg = &report.aggregates;
    Summary {
        metric_type: report.metric_type.clone(),
        period,
        from: report.from,
        to: report.to,
        count: agg.count,
        sum: agg.sum,
        average_value: agg.average,
        min_value: agg.min,
        max_value: agg.max,
        latest_value: agg.latest,
        p50: agg.p50,
        p90: agg.p90,
        p95: agg.p95,
        p99: agg.p99,
    }
}
