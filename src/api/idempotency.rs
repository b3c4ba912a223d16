//! `Idempotency-Key` on ingest (draft-ietf-httpapi-idempotency-key-header): a write with
//! a key is stored at most once for `IDEMPOTENCY_TTL`. A retry of the same request (same
//! method, path and JSON body) gets the first answer again, marked `Idempotent-Replayed:
//! true`, and stores nothing; the same key with another request is refused (422); while
//! the first is still being stored, a retry gets 409. The store records the key with the
//! rows, in one step (one transaction with PostgreSQL), so a write answered 503 because
//! its outcome was unknown can be retried with its key safely.

use bytes::Bytes;
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::responses::WriteError;
use crate::domain::{IdempotencyKey, MAX_IDEMPOTENCY_KEY_LEN, Metric, MetricType};
use crate::http::problem::{FieldError, Problem};
use crate::state::AppState;
use crate::store::{Idempotent, Recorded};

/// The `Idempotency-Key` header as the spec documents it: a string of 1 to 255 visible
/// ASCII characters, optionally quoted. Declared for the spec only (the handlers read the
/// raw header with `key`): poem-openapi's `pattern` validator compiles its regex on every
/// request, which cost ingest three quarters of its rate.
pub struct KeyHeader;

impl poem_openapi::types::Type for KeyHeader {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "string(idempotency-key)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.min_length = Some(1);
        schema.max_length = Some(MAX_IDEMPOTENCY_KEY_LEN + 2);
        schema.pattern = Some(KEY_PATTERN.into());
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl poem_openapi::types::ParseFromParameter for KeyHeader {
    fn parse_from_parameter(_: &str) -> poem_openapi::types::ParseResult<Self> {
        Ok(Self)
    }
}

/// What `IdempotencyKey::parse` accepts, as a regular expression for the spec.
/// (RFC 8941 sf-string's quotes are optional, but come in pairs.)
const KEY_PATTERN: &str = r#"^([!#-\[\]-~]{1,255}|"[!#-\[\]-~]{1,255}")$"#;

/// The request's key, if it sent one; a malformed one (bytes outside visible ASCII
/// included, which the typed header would read as absent) is a 422 naming the header.
pub fn key(req: &poem::Request) -> Result<Option<IdempotencyKey>, WriteError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    raw.to_str()
        .map_err(|_| "may contain only visible ASCII characters".to_owned())
        .and_then(IdempotencyKey::parse)
        .map(Some)
        .map_err(|e| WriteError::invalid(vec![FieldError::new("Idempotency-Key", e)]))
}

/// A digest of the request: method, path and the JSON body (parsed, so spacing and the
/// order of object fields do not matter).
pub fn fingerprint(path: &str, body: &Value) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"POST ");
    digest.update(path.as_bytes());
    digest.update(b"\n");
    digest.update(serde_json::to_vec(body).unwrap_or_default());
    digest.finalize().into()
}

/// Stores `metrics` once for `key`: `Ok(None)` when stored now, `Ok(Some(answer))` with
/// the first answer when this is a retry of the same request. `find` names the item of a
/// type refused by the type cap, as for a write without a key.
pub async fn store_once(
    state: &AppState,
    key: IdempotencyKey,
    fingerprint: [u8; 32],
    metrics: Vec<Metric>,
    answer: Bytes,
    find: impl Fn(&MetricType) -> Option<usize>,
) -> Result<Option<Bytes>, WriteError> {
    let Some(_holding) = state.idempotency.hold(&key) else {
        return Err(in_use());
    };
    let idem = Idempotent {
        key,
        fingerprint,
        response: answer,
    };
    match state.store.insert_idempotent(metrics, idem).await {
        Ok(Recorded::Stored) => Ok(None),
        Ok(Recorded::Replay(answer)) => Ok(Some(answer)),
        Ok(Recorded::Mismatch) => Err(reused()),
        Err(e) => Err(WriteError::from_store(e, find)),
    }
}

fn in_use() -> WriteError {
    WriteError::Conflict(Json(Problem {
        problem_type: "urn:tally:problem:idempotency-key-in-use".into(),
        title: "Idempotency key in use".into(),
        status: StatusCode::CONFLICT.as_u16(),
        detail: "a request with this Idempotency-Key is still being stored; retry it once \
                 that one has been answered"
            .into(),
        errors: None,
    }))
}

fn reused() -> WriteError {
    WriteError::Unprocessable(Json(Problem {
        problem_type: "urn:tally:problem:idempotency-key-reused".into(),
        title: "Idempotency key reused".into(),
        status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
        detail: "this Idempotency-Key was used with another request (method, path or body); \
                 nothing was stored. Use a new key for a new request"
            .into(),
        errors: Some(vec![FieldError::new(
            "Idempotency-Key",
            "was used with another request",
        )]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's pattern accepts a key exactly when the server's parser does.
    #[test]
    fn the_pattern_accepts_what_the_parser_accepts() {
        let pattern = regex::Regex::new(KEY_PATTERN).unwrap();
        let long = "k".repeat(255);
        let quoted_long = format!("\"{long}\"");
        let too_long = "k".repeat(256);
        for raw in [
            "a",
            "2f1c7a4e-9b0d-4c3e-8a55-0c1d2e3f4a5b",
            "\"quoted\"",
            "\"unbalanced",
            "unbalanced\"",
            "\"\"",
            "\"",
            "",
            "in\"side",
            "back\\slash",
            "with space",
            "tab\t",
            "é",
            "!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
            &long,
            &quoted_long,
            &too_long,
        ] {
            assert_eq!(
                pattern.is_match(raw),
                crate::domain::IdempotencyKey::parse(raw).is_ok(),
                "{raw:?}"
            );
        }
    }
}
