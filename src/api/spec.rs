//! The OpenAPI document as served: poem-openapi's, plus the rules the server enforces that
//! poem-openapi cannot state from the types, so generated clients and validators (and
//! schemathesis) know every rule a schema can say.
//!
//! poem-openapi writes no `additionalProperties: false` for `deny_unknown_fields`, and
//! the handlers check query parameters and the batch's length themselves (its validators
//! would compile a regex per request), so those rules are added here, each to a place that
//! must exist (a test fails when one no longer does). Rules no schema can state, such as
//! a timestamp within the retention, are in the operations' descriptions.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::domain::MAX_TYPE_LEN;

/// A metric type name, as `MetricType::parse` accepts it.
const TYPE_PATTERN: &str = "^[A-Za-z0-9_.:-]{1,100}$";
/// humantime's units, longest first where one is the prefix of another.
const UNITS: &str = "nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y";

/// A period, as `Period::parse` reads it: `all`, `hourly`, `daily` or humantime's compact
/// durations (no spaces) of whole numbers up to 9 digits, at least one of them not zero.
fn period_pattern() -> String {
    format!("^(all|hourly|daily|{})$", duration_pattern())
}

/// A series step: a compact duration as in a period (the step rules, whole seconds that
/// divide a minute or whole minutes, are checked by the service: 422).
fn step_pattern() -> String {
    format!("^{}$", duration_pattern())
}

/// Humantime's compact durations of whole numbers, at least one of them not zero.
fn duration_pattern() -> String {
    let any = format!("([0-9]{{1,9}}({UNITS}))");
    // A number of at most 9 digits that is not zero: its first nonzero digit is the
    // first, second, ... or ninth.
    let nonzero = (0..9)
        .map(|zeros| match 8 - zeros {
            0 => format!("{}[1-9]", "0".repeat(zeros)),
            rest => format!("{}[1-9][0-9]{{0,{rest}}}", "0".repeat(zeros)),
        })
        .collect::<Vec<_>>()
        .join("|");
    format!("({any}*({nonzero})({UNITS}){any}*)")
}

/// The served document, computed once.
pub fn json() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        let raw = super::service().spec();
        let mut spec: Value = serde_json::from_str(&raw).unwrap_or_default();
        complete(&mut spec);
        serde_json::to_string_pretty(&Document::from(spec)).unwrap_or(raw)
    })
}

/// The document's top level in the conventional order (`openapi` first, `components`
/// last), as poem-openapi writes it; `Value`'s map sorts keys, which only matters to a
/// reader of the file.
#[derive(serde::Serialize)]
struct Document {
    openapi: Value,
    info: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    servers: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    tags: Value,
    paths: Value,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

impl From<Value> for Document {
    fn from(spec: Value) -> Self {
        let mut rest = match spec {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let mut take = |key: &str| rest.remove(key).unwrap_or(Value::Null);
        Document {
            openapi: take("openapi"),
            info: take("info"),
            servers: take("servers"),
            tags: take("tags"),
            paths: take("paths"),
            rest,
        }
    }
}

/// Swagger UI's page, showing the served document.
pub fn swagger_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        let service = super::service();
        service
            .swagger_ui_html()
            .replacen(&service.spec(), json(), 1)
    })
}

/// Adds the rules; returns the places it could not find (none, unless poem-openapi's
/// output changed shape).
pub fn complete(spec: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    let mut edits: Vec<(String, Value)> = ["MetricInput", "BreakerActionInput"]
        .iter()
        .map(|schema| {
            (
                format!("/components/schemas/{schema}"),
                json!({"additionalProperties": false}),
            )
        })
        .collect();
    edits.push((
        "/paths/~1api~1metrics~1batch/post/requestBody/content/application~1json/schema".into(),
        json!({"minItems": 1, "maxItems": super::ingest::MAX_BATCH}),
    ));
    let type_name = json!({"minLength": 1, "maxLength": MAX_TYPE_LEN, "pattern": TYPE_PATTERN});
    let limit = json!({"minimum": 1, "maximum": super::query::MAX_LIMIT});
    let period = json!({"minLength": 1, "maxLength": 32, "pattern": period_pattern()});
    let step = json!({"minLength": 2, "maxLength": 32, "pattern": step_pattern()});
    for (path, name, rules) in [
        ("/api/metrics", "type", &type_name),
        ("/api/metrics", "limit", &limit),
        ("/api/metrics/summary", "type", &type_name),
        ("/api/metrics/summary", "period", &period),
        ("/api/metrics/series", "type", &type_name),
        ("/api/metrics/series", "period", &period),
        ("/api/metrics/series", "step", &step),
        ("/api/metrics/types", "limit", &limit),
        ("/api/metrics/types", "cursor", &type_name),
    ] {
        match parameter(spec, path, name) {
            Some(pointer) => edits.push((pointer, rules.clone())),
            None => missing.push(format!("{path} ?{name}")),
        }
    }
    for (pointer, rules) in edits {
        match (spec.pointer_mut(&pointer), rules) {
            (Some(Value::Object(schema)), Value::Object(rules)) => schema.extend(rules),
            _ => missing.push(pointer),
        }
    }
    missing
}

/// The JSON pointer of the schema of the GET parameter `name` of `path`.
fn parameter(spec: &Value, path: &str, name: &str) -> Option<String> {
    let escaped = path.replace('/', "~1");
    let parameters = spec.pointer(&format!("/paths/{escaped}/get/parameters"))?;
    let i = parameters
        .as_array()?
        .iter()
        .position(|p| p["name"] == name)?;
    Some(format!("/paths/{escaped}/get/parameters/{i}/schema"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_finds_its_place() {
        let mut spec: Value = serde_json::from_str(&crate::api::service().spec()).unwrap();
        assert_eq!(complete(&mut spec), Vec::<String>::new());
        assert_eq!(
            spec["components"]["schemas"]["MetricInput"]["additionalProperties"],
            false
        );
    }

    /// A value matches a pattern exactly when the server's parser accepts it.
    #[test]
    fn the_patterns_accept_what_the_server_accepts() {
        let period = regex::Regex::new(&period_pattern()).unwrap();
        for (raw, accepted) in [
            ("all", true),
            ("hourly", true),
            ("daily", true),
            ("30s", true),
            ("15m", true),
            ("6h", true),
            ("7d", true),
            ("1h30m", true),
            ("2weeks", true),
            ("", false),
            ("1 h", false),
            ("-1h", false),
            ("h", false),
            ("1.5h", false),
            ("0s1h", true),
            ("0.5m", false),
            ("1s0.00000000000000000000seconds", false),
            ("999999999y", true),
            ("000000001s", true),
            ("0000000001s", false),
            ("1000000000s", false),
            ("000000000s", false),
            ("999999999y999999999y999999999y", true),
            ("999999999y999999999y999999999y1s", true),
            ("999999999y999999999y999999999y12s", false),
            ("1µs1µs1µs1µs1µs1µs1µs1µs1µs1µs1h", true),
            ("0s", false),
            ("0.000seconds", false),
            ("0h0m", false),
            ("1hrs30mins", true),
            ("2months", true),
            (".5h", false),
            ("1.h", false),
            ("1H", false),
            ("1m30", false),
            ("all1h", false),
        ] {
            let schema = period.is_match(raw) && raw.chars().count() <= 32;
            assert_eq!(schema, accepted, "schema, {raw:?}");
            assert_eq!(
                crate::domain::Period::parse(raw).is_ok(),
                accepted,
                "server, {raw:?}"
            );
        }
        let type_name = regex::Regex::new(TYPE_PATTERN).unwrap();
        for raw in [
            "cpu.load",
            "a",
            "A-Z_0:9",
            "",
            " ",
            "x y",
            "é",
            "<b>",
            &"x".repeat(101),
        ] {
            assert_eq!(
                type_name.is_match(raw),
                crate::domain::MetricType::parse(raw).is_ok(),
                "{raw:?}"
            );
        }
    }
}
