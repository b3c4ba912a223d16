//! A JSON request body read with a size limit and kept as a JSON value, so
//! that rule violations become 422 with every bad field named instead of a
//! bare deserialisation error. `T` only documents the schema in the spec.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use poem::IntoResponse;
use poem::http::HeaderValue;
use poem::http::header::RETRY_AFTER;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use poem::error::ReadBodyError;
use poem::{Request, RequestBody, Result};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde_json::Value;

use crate::http::problem::Problem;

/// Largest body a JSON payload may have, how long it may take to arrive, and the bytes
/// of bodies held at once; installed as request data at startup.
#[derive(Debug, Clone)]
pub struct BodyLimit {
    pub bytes: usize,
    pub timeout: std::time::Duration,
    pub in_flight: InFlight,
}

/// Request-body bytes decoded at once (`TALLY_MAX_INFLIGHT_BYTES`), in KiB permits. A
/// parsed JSON body takes about ten times its size until its handler ends, so this is
/// what bounds the memory of many large requests arriving together; past it a read body
/// waits for room (up to `TALLY_BODY_TIMEOUT`, then 503). Room is taken once the body is
/// read, so a slow sender holds none while it sends.
#[derive(Debug, Clone)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    total: u32,
}

impl InFlight {
    pub fn new(bytes: usize) -> Self {
        let total = kib(bytes).clamp(1, Semaphore::MAX_PERMITS as u32);
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Room for a body of `bytes` (a body larger than the whole budget takes all of it).
    async fn room(&self, bytes: usize, wait: Duration) -> Result<OwnedSemaphorePermit> {
        let want = kib(bytes).clamp(1, self.total);
        let acquire = Arc::clone(&self.permits).acquire_many_owned(want);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                let mut resp = Problem::unavailable(
                    "too many request bodies are being read at once \
                     (TALLY_MAX_INFLIGHT_BYTES); retry shortly",
                )
                .into_response();
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                Err(poem::Error::from_response(resp))
            }
        }
    }
}

/// Permits are KiB, rounded up.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

pub struct JsonBody<T> {
    pub value: Value,
    /// The body's share of `TALLY_MAX_INFLIGHT_BYTES`, given back when the handler ends.
    _room: Option<OwnedSemaphorePermit>,
    _schema: PhantomData<fn() -> T>,
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m)
            if m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let settings = request.data::<BodyLimit>();
        let (limit, timeout) =
            settings.map_or((usize::MAX, Duration::MAX), |l| (l.bytes, l.timeout));
        let declared = request
            .header(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ReadBodyError::PayloadTooLarge.into());
        }
        let read = body.take()?.into_bytes_limit(limit);
        let Ok(bytes) = tokio::time::timeout(timeout, read).await else {
            return Err(poem::Error::from_string(
                format!(
                    "the request body did not arrive within {} s (TALLY_BODY_TIMEOUT)",
                    timeout.as_secs()
                ),
                poem::http::StatusCode::REQUEST_TIMEOUT,
            ));
        };
        let bytes = bytes?;
        // Room to decode it, once read (a slow sender holds none while it sends).
        let room = match settings {
            Some(s) => Some(s.in_flight.room(bytes.len(), timeout).await?),
            None => None,
        };
        if bytes.is_empty() {
            return Err(ParseRequestPayloadError {
                reason: "the request body is empty".into(),
            }
            .into());
        }
        let value = serde_json::from_slice(&bytes).map_err(|err| ParseRequestPayloadError {
            reason: format!("malformed JSON: {err}"),
        })?;
        Ok(Self {
            value,
            _room: room,
            _schema: PhantomData,
        })
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type);

/// A JSON response body rendered ahead of time (e.g. kept with a cache
/// entry), documented in the spec as `T`.
#[derive(Debug)]
pub struct RenderedJson<T> {
    body: bytes::Bytes,
    _schema: PhantomData<fn() -> T>,
}

impl<T: poem_openapi::types::ToJSON> RenderedJson<T> {
    pub fn render(value: &T) -> bytes::Bytes {
        bytes::Bytes::from(value.to_json_string())
    }

    pub fn new(body: bytes::Bytes) -> Self {
        Self {
            body,
            _schema: PhantomData,
        }
    }
}

impl<T: Type> Payload for RenderedJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        <JsonBody<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> poem::IntoResponse for RenderedJson<T> {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(<Self as Payload>::CONTENT_TYPE)
            .body(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bodies_wait_for_room_and_give_up_after_the_body_timeout() {
        let room = InFlight::new(4 * 1024);
        let wait = Duration::from_secs(30);
        let first = room.room(3 * 1024, wait).await.expect("room");
        // Larger than what is left: waits, then 503 with Retry-After.
        let refused = match room.room(2 * 1024, wait).await {
            Ok(_) => panic!("room past the budget"),
            Err(e) => e,
        };
        let resp = refused.into_response();
        assert_eq!(resp.status(), poem::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get(RETRY_AFTER).unwrap(), "1");
        // A body larger than the whole budget takes all of it once the rest is free.
        drop(first);
        let all = room.room(100 * 1024, wait).await.expect("all of it");
        assert!(room.room(1, Duration::from_millis(10)).await.is_err());
        drop(all);
        let _free = room.room(1, wait).await.expect("free again");
    }
}
