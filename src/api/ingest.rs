//! Ingest: `POST /api/metrics` and `POST /api/metrics/batch`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::ApiTags;
use super::idempotency;
use super::metric_input::{MetricInput, TimeRules, parse_metric};
use super::payload::{JsonBody, RenderedJson};
use super::responses::WriteError;
use crate::domain::Metric;
use crate::http::problem::FieldError;
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
    /// Stored; the body is the metric as stored. With an `Idempotency-Key` seen before
    /// for the same request: the first answer again, nothing stored.
    #[oai(status = 201)]
    Created(
        RenderedJson<MetricView>,
        /// `true` when this answer is the replay of an earlier request with the same
        /// `Idempotency-Key` (nothing was stored this time).
        #[oai(header = "Idempotent-Replayed")]
        Option<bool>,
    ),
}

#[derive(Debug, ApiResponse)]
pub enum CreatedBatch {
    /// Every metric of the batch was stored. With an `Idempotency-Key` seen before for
    /// the same request: the first answer again, nothing stored.
    #[oai(status = 201)]
    Created(
        RenderedJson<BatchAccepted>,
        /// `true` when this answer is the replay of an earlier request with the same
        /// `Idempotency-Key` (nothing was stored this time).
        #[oai(header = "Idempotent-Replayed")]
        Option<bool>,
    ),
}

#[OpenApi(tag = "ApiTags::Ingest")]
impl IngestApi {
    /// Record one metric
    ///
    /// Answers 201 only once the metric is stored. With an `Idempotency-Key`
    /// (draft-ietf-httpapi-idempotency-key-header) it is stored at most once for
    /// `IDEMPOTENCY_TTL`: a retry of the same request gets the first answer again,
    /// marked `Idempotent-Replayed: true`; the key with another request is a 422; while
    /// the first is still being stored, 409. Retry a 503 with the same key: without one,
    /// a write whose outcome was unknown may have been stored and would be stored twice.
    #[oai(path = "/api/metrics", method = "post", operation_id = "create_metric")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<MetricInput>,
        /// Makes the write idempotent: 1 to 255 visible ASCII characters (a UUID, say),
        /// unique to this request.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<idempotency::KeyHeader>>,
        req: &Request,
    ) -> Result<CreatedMetric, WriteError> {
        // Read raw: the typed header above documents it, but reads unreadable as absent.
        let key = idempotency::key(req)?;
        let metric = parse_metric(&body.value, &rules(&state)).map_err(WriteError::invalid)?;
        let answer = RenderedJson::render(&MetricView::from(metric.clone()));
        let Some(key) = key else {
            if let Err(e) = state.store.insert_batch(vec![metric]).await {
                return Err(WriteError::from_store(e, |_| None));
            }
            state.traffic.ingested(1);
            return Ok(CreatedMetric::Created(RenderedJson::new(answer), None));
        };
        let fingerprint = idempotency::fingerprint("/api/metrics", &body.value);
        let replay = idempotency::store_once(
            &state,
            key,
            fingerprint,
            vec![metric],
            answer.clone(),
            |_| None,
        )
        .await?;
        if replay.is_none() {
            state.traffic.ingested(1);
        }
        let replayed = replay.is_some().then_some(true);
        Ok(CreatedMetric::Created(
            RenderedJson::new(replay.unwrap_or(answer)),
            replayed,
        ))
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
        /// Makes the write idempotent: 1 to 255 visible ASCII characters (a UUID, say),
        /// unique to this request.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<idempotency::KeyHeader>>,
        req: &Request,
    ) -> Result<CreatedBatch, WriteError> {
        let key = idempotency::key(req)?;
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
        let answer = RenderedJson::render(&BatchAccepted { accepted });
        let first = |name: &crate::domain::MetricType| {
            items
                .iter()
                .position(|item| item.get("type").and_then(Value::as_str) == Some(name.as_str()))
        };
        let Some(key) = key else {
            if let Err(e) = state.store.insert_batch(metrics).await {
                return Err(WriteError::from_store(e, first));
            }
            state.traffic.ingested(accepted);
            return Ok(CreatedBatch::Created(RenderedJson::new(answer), None));
        };
        let fingerprint = idempotency::fingerprint("/api/metrics/batch", &body.value);
        let replay =
            idempotency::store_once(&state, key, fingerprint, metrics, answer.clone(), first)
                .await?;
        if replay.is_none() {
            state.traffic.ingested(accepted);
        }
        let replayed = replay.is_some().then_some(true);
        Ok(CreatedBatch::Created(
            RenderedJson::new(replay.unwrap_or(answer)),
            replayed,
        ))
    }
}

fn rules(state: &AppState) -> TimeRules {
    TimeRules {
        now: Utc::now(),
        retention: state.retention,
        max_future_skew: state.max_future_skew,
    }
}
