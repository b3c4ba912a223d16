//! The wire shape of an incoming metric and its validation into a domain
//! `Metric`, collecting every broken rule instead of stopping at the first.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use poem_openapi::Object;
use serde_json::Value;

use crate::domain::{Metric, MetricType};
use crate::http::problem::FieldError;

/// A data point as clients send it.
#[derive(Debug, Object)]
#[oai(rename = "MetricInput", deny_unknown_fields)]
pub struct MetricInput {
    /// RFC 3339 time with an offset, e.g. `2026-11-30T12:00:00Z`; stored in UTC at
    /// millisecond precision. Not before 1970, not older than the retention, and
    /// not further ahead of the server clock than the allowed skew.
    pub timestamp: DateTime<Utc>,
    /// A finite JSON number (strings, booleans and null are rejected).
    pub value: f64,
    /// Metric type name: 1 to 100 of `A-Z a-z 0-9 _ . : -`.
    #[oai(rename = "type", validator(pattern = r"^[A-Za-z0-9_.:-]{1,100}$"))]
    pub metric_type: String,
}

/// The bounds a timestamp must respect, fixed at the moment of the request.
#[derive(Debug, Clone, Copy)]
pub struct TimeRules {
    pub now: DateTime<Utc>,
    pub retention: Duration,
    pub max_future_skew: Duration,
}

const FIELDS: [&str; 3] = ["timestamp", "value", "type"];

/// Validates one JSON metric; on failure returns every problem found.
pub fn parse_metric(raw: &Value, rules: &TimeRules) -> Result<Metric, Vec<FieldError>> {
    let Value::Object(map) = raw else {
        return Err(vec![FieldError::new(
            "",
            "must be an object with timestamp, value and type",
        )]);
    };
    let mut errors = Vec::new();
    for key in map.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(FieldError::new(printable(key), "is not a known field"));
    }
    let timestamp = field(map.get("timestamp"), "timestamp", &mut errors, |v| {
        parse_timestamp(v, rules)
    });
    let value = field(map.get("value"), "value", &mut errors, |v| match v {
        // serde_json never yields NaN or infinity, but keep the rule explicit.
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| "must be a finite number".to_string()),
        _ => Err(format!("must be a finite number, not {}", kind(v))),
    });
    let metric_type = field(map.get("type"), "type", &mut errors, |v| match v {
        Value::String(s) => MetricType::parse(s),
        _ => Err(format!("must be a string, not {}", kind(v))),
    });
    match (timestamp, value, metric_type) {
        (Some(timestamp), Some(value), Some(metric_type)) if errors.is_empty() => Ok(Metric {
            timestamp,
            value,
            metric_type,
        }),
        _ => Err(errors),
    }
}

fn field<T>(
    raw: Option<&Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
    parse: impl FnOnce(&Value) -> Result<T, String>,
) -> Option<T> {
    let Some(raw) = raw else {
        errors.push(FieldError::new(name, "is required"));
        return None;
    };
    parse(raw)
        .map_err(|message| errors.push(FieldError::new(name, message)))
        .ok()
}

fn parse_timestamp(raw: &Value, rules: &TimeRules) -> Result<DateTime<Utc>, String> {
    let Value::String(s) = raw else {
        return Err(format!("must be an RFC 3339 string, not {}", kind(raw)));
    };
    let parsed = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("must be RFC 3339 with an offset, e.g. 2026-11-30T12:00:00Z ({e})"))?
        .with_timezone(&Utc);
    // Stored at millisecond precision; echo back exactly what is stored. A leap second
    // (`23:59:60`) is stored as the next second, so it is normalised here, once: the
    // answer shows the instant stored, never a `:60` many clients cannot parse.
    let ts = DateTime::from_timestamp_millis(parsed.timestamp_millis()).unwrap_or(parsed);
    let ts = ts.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(ts);
    if ts < DateTime::UNIX_EPOCH {
        return Err("must not be before 1970-01-01T00:00:00Z".into());
    }
    let skew = TimeDelta::from_std(rules.max_future_skew).unwrap_or(TimeDelta::MAX);
    if rules
        .now
        .checked_add_signed(skew)
        .is_some_and(|limit| ts > limit)
    {
        return Err(format!(
            "must not be more than {} ahead of the server clock",
            humantime::format_duration(rules.max_future_skew)
        ));
    }
    let retention = TimeDelta::from_std(rules.retention).unwrap_or(TimeDelta::MAX);
    if rules
        .now
        .checked_sub_signed(retention)
        .is_some_and(|horizon| ts < horizon)
    {
        return Err(format!(
            "is older than the retention of {}",
            humantime::format_duration(rules.retention)
        ));
    }
    Ok(ts)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A client-supplied key, shortened and with control characters escaped.
fn printable(key: &str) -> String {
    key.chars()
        .take(64)
        .flat_map(char::escape_default)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> TimeRules {
        TimeRules {
            now: DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default(),
            retention: Duration::from_secs(7 * 86_400),
            max_future_skew: Duration::from_secs(300),
        }
    }

    fn fields(raw: Value) -> Vec<String> {
        parse_metric(&raw, &rules())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn accepts_a_valid_metric_and_normalises_to_utc_millis() {
        let m = parse_metric(
            &json!({"timestamp": "2026-11-30T13:00:00.123456+02:00", "value": 1.5, "type": "cpu.load"}),
            &rules(),
        );
        let m = m.ok().unwrap_or_else(|| panic!("valid metric rejected"));
        assert_eq!(m.timestamp.to_rfc3339(), "2026-11-30T11:00:00.123+00:00");
        assert_eq!(m.value, 1.5);
        assert_eq!(m.metric_type.as_str(), "cpu.load");
    }

    #[test]
    fn names_every_bad_field() {
        assert_eq!(fields(json!({})), ["timestamp", "value", "type"]);
        assert_eq!(
            fields(json!({"timestamp": 5, "value": "1", "type": "<b>"})),
            ["timestamp", "value", "type"]
        );
        assert_eq!(
            fields(json!({"timestamp": "2026-11-30T12:00:00Z", "value": true, "type": "a"})),
            ["value"]
        );
        assert_eq!(
            fields(json!({"timestamp": "2026-11-30T12:00:00Z", "value": null, "type": "a"})),
            ["value"]
        );
        assert_eq!(
            fields(
                json!({"timestamp": "2026-11-30T12:00:00Z", "value": 1, "type": "a", "x\u{7}": 1})
            ),
            ["x\\u{7}"]
        );
        assert_eq!(fields(json!([1])), [""]);
    }

    #[test]
    fn timestamp_rules() {
        for ts in [
            "2026-11-30T12:00:00",  // no offset
            "1969-12-31T23:59:59Z", // before 1970
            "2026-11-30T12:06:00Z", // beyond the skew
            "2026-11-20T12:00:00Z", // older than retention
            "yesterday",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(
                fields(json!({"timestamp": ts, "value": 1, "type": "a"})),
                ["timestamp"],
                "{ts}"
            );
        }
        assert!(
            fields(json!({"timestamp": "2026-11-30T12:04:59Z", "value": 1, "type": "a"}))
                .is_empty()
        );
    }

    #[test]
    fn type_rules() {
        for t in [
            "",
            "a b",
            "<script>",
            "x'; DROP TABLE metrics;--",
            "é",
            &"a".repeat(101),
            "a\u{0}",
        ] {
            assert_eq!(
                fields(json!({"timestamp": "2026-11-30T12:00:00Z", "value": 1, "type": t})),
                ["type"],
                "{t:?}"
            );
        }
    }
}
