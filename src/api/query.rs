//! Reads: the summary of a type (answered in `summary`), its newest raw
//! points, and the list of types.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::ingest::MetricView;
use super::responses::ReadError;
use super::series::{self, SeriesReply};
use super::summary::{self, SummaryReply};
use crate::domain::MetricType;
use crate::http::problem::FieldError;
use crate::state::AppState;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

pub struct QueryApi;

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
    /// Sorted by name (byte order), at most `limit` of them.
    pub types: Vec<TypeView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
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
    /// `daily` (last 24 h) or a duration in whole units such as `30s`, `15m`, `6h`,
    /// `7d`, `1h30m`.
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
        /// `all`, `hourly`, `daily` or a duration in whole units (`30s`, `15m`, `6h`,
        /// `7d`, `1h30m`).
        period: Query<Option<String>>,
    ) -> Result<SummaryReply, ReadError> {
        summary::answer(&state, &metric_type, period.0).await
    }

    /// Time series of a metric type
    ///
    /// The last `ceil(period / step)` steps of `step`, ending with the step that holds
    /// now, oldest first, each with the aggregates of its points. Every step is present;
    /// one without points has `count` 0 and null aggregates.
    ///
    /// **Alignment.** Steps start at multiples of `step` since 1970-01-01T00:00:00Z, in
    /// UTC (PostgreSQL's `date_bin` with that origin): `1h` steps start on the hour, `1d`
    /// steps at midnight UTC, `7d` steps on Thursdays. Calls a minute apart share their
    /// full steps. `from` is the first step's start and `to` the last step's end. The
    /// last step is still running and the first may be cut by retention: both say
    /// `partial`.
    ///
    /// **Steps.** Whole seconds: below a minute, a divisor of it (1s, 2s, 3s, 4s, 5s, 6s,
    /// 10s, 12s, 15s, 20s, 30s), where the store reads each step's raw points (exact, at
    /// the cost of the points); from a minute up, whole minutes (`5m`, `1h`, `1d`, up to
    /// `3650d`), where it merges minute buckets and hour and day rollups. Without `step`
    /// the service chooses the longest of 1s, 2s, 5s, 10s, 15s, 30s, 1m, 2m, 5m, 10m,
    /// 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d, 2d, 7d, 28d that gives at least 60 steps, and
    /// says so (`step_chosen`).
    ///
    /// **Limits.** At most `SERIES_MAX_POINTS` steps (default 1,440: a day at `1m`); more
    /// is a 422 naming `step` and the smallest step allowed. A parameter that cannot be
    /// parsed is a 400. Answered through the summary's read-through cache (`Age`,
    /// `Cache-Status`) and limited by the read quota.
    #[oai(
        path = "/api/metrics/series",
        method = "get",
        operation_id = "get_series"
    )]
    async fn series(
        &self,
        state: Data<&Arc<AppState>>,
        /// Metric type name.
        #[oai(name = "type")]
        metric_type: Query<String>,
        /// How far back: `all` (default: everything retained), `hourly`, `daily` or a
        /// duration in whole units (`30s`, `15m`, `6h`, `7d`, `1h30m`).
        period: Query<Option<String>>,
        /// Step length: `1s`…`30s` dividing a minute, or whole minutes (`1m`, `5m`, `1h`,
        /// `1d`). Absent: chosen for 60 to about 210 steps.
        step: Query<Option<String>>,
    ) -> Result<SeriesReply, ReadError> {
        series::answer(&state, &metric_type, period.0.as_deref(), step.0.as_deref()).await
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

    /// Stored metric types, a page at a time
    ///
    /// Sorted by name in byte order, `limit` a page (1 to 1000, default 100). When more
    /// follow, the answer carries `next_cursor`: pass it as `cursor` for the next page.
    /// Treat the cursor as opaque.
    #[oai(
        path = "/api/metrics/types",
        method = "get",
        operation_id = "list_types"
    )]
    async fn types(
        &self,
        state: Data<&Arc<AppState>>,
        /// Types per page, 1 to 1000 (default 100).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the page before; absent for the first page.
        cursor: Query<Option<String>>,
    ) -> Result<TypesResponse, ReadError> {
        let mut errors = Vec::new();
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match cursor.0.as_deref().map(MetricType::parse) {
            Some(Err(_)) => {
                errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor this listing gave out",
                ));
                None
            }
            other => other.and_then(Result::ok),
        };
        if !errors.is_empty() {
            return Err(ReadError::invalid(errors));
        }
        // One more than asked tells whether another page follows.
        let limit = limit as usize;
        let mut types = state.store.types_page(after.as_ref(), limit + 1).await?;
        let next_cursor = (types.len() > limit).then(|| {
            types.truncate(limit);
            types
                .last()
                .map(|t| t.metric_type.as_str().to_owned())
                .unwrap_or_default()
        });
        Ok(TypesResponse::Ok(Json(TypeList {
            types: types
                .into_iter()
                .map(|t| TypeView {
                    metric_type: t.metric_type.as_str().to_owned(),
                    count: t.count,
                    last_timestamp: t.last_timestamp,
                })
                .collect(),
            next_cursor,
        })))
    }
}
