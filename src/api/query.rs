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
