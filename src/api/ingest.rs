//! Ingest: `POST /api/metrics` and `POST /api/metrics/batch`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::ApiTags;
use super::metric_input::{MetricInput, TimeRules, parse_metric};
use super::payload::JsonBody;
use super::problem::FieldError;
use super::responses::WriteError;
use crate::domain::Metric;
use crate::state::AppState;

/// Most metrics accepted in one batch.
pub const MAX_BATCH: usize = 10_000;

pub struct IngestApi;

/// A stored data point, timestamp in UTC.
#[derive(Debug, Object)]
#[oai(rename = "Metric")]
pub struct MetricView {
    pub timestamp: DateTime<Utc>,
    pub value: f64,
    #[oai(rename = "type")]
    pub metric_type: String,
}

impl From<Metric> for MetricView {
    fn from(m: Metric) -> Self {
        Self {
            timestamp: m.timestamp,
            value: m.value,
            metric_type: m.metric_type.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Object)]
pub struct BatchAccepted {
    /// How many metrics were stored (always the whole batch).
    pub accepted: u64,
}

#[derive(Debug, ApiResponse)]
pub enum CreatedMetric {
    /// Stored; the body is the metric as stored.
    #[oai(status = 201)]
    Created(Json<MetricView>),
}

#[derive(Debug, ApiResponse)]
pub enum CreatedBatch {
    /// Every metric of the batch was stored.
    #[oai(status = 201)]
    Created(Json<BatchAccepted>),
}

#[OpenApi(tag = "ApiTags::Ingest")]
impl IngestApi {
    /// Record one metric
    ///
    /// Answers 201 only once the metric is stored.
    #[oai(path = "/api/metrics", method = "post", operation_id = "create_metric")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<MetricInput>,
    ) -> Result<CreatedMetric, WriteError> {
        let metric = parse_metric(&body.value, &rules(&state)).map_err(WriteError::invalid)?;
        if let Err(e) = state.store.insert_batch(vec![metric.clone()]).await {
            return Err(WriteError::from_store(e, |_| None));
        }
        state.traffic.ingested(1);
        Ok(CreatedMetric::Created(Json(metric.into())))
    }

    /// Record up to 10,000 metrics at once
    ///
    /// All or nothing: if any item is invalid, nothing is stored and the 422
    /// names each bad item by `index` and `field`.
    #[oai(
        path = "/api/metrics/batch",
        method = "post",
        operation_id = "create_metrics_batch"
    )]
    async fn create_batch(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<Vec<MetricInput>>,
    ) -> Result<CreatedBatch, WriteError> {
        let Value::Array(items) = &body.value else {
            return Err(WriteError::invalid(vec![FieldError::new(
                "",
                "must be a JSON array of metrics",
            )]));
        };
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(WriteError::invalid(vec![FieldError::new(
                "",
                format!("must hold 1 to {MAX_BATCH} metrics, not {}", items.len()),
            )]));
        }
        let rules = rules(&state);
        let mut metrics = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match parse_metric(item, &rules) {
                Ok(m) => metrics.push(m),
                Err(errs) => errors.extend(errs.into_iter().map(|e| e.at(index))),
            }
        }
        if !errors.is_empty() {
            return Err(WriteError::invalid(errors));
        }
        let accepted = metrics.len() as u64;
        if let Err(e) = state.store.insert_batch(metrics).await {
            let first = |name: &crate::domain::MetricType| {
                items.iter().position(|item| {
                    item.get("type").and_then(Value::as_str) == Some(name.as_str())
                })
            };
            return Err(WriteError::from_store(e, first));
        }
        state.traffic.ingested(accepted);
        Ok(CreatedBatch::Created(Json(BatchAccepted { accepted })))
    }
}

fn rules(state: &AppState) -> TimeRules {
    TimeRules {
        now: Utc::now(),
        retention: state.retention,
        max_future_skew: state.max_future_skew,
    }
}
