//! The built-in exporter's settings, from the standard OpenTelemetry
//! variables (read through a lookup function, so tests pass a map instead of
//! touching the process environment). As the specification says, an empty
//! variable counts as unset and a signal-specific one (`..._TRACES_...`)
//! wins over the general one.

use std::time::Duration;

use poem::http::{HeaderName, HeaderValue};

/// Spans held for export at most; past it new spans are dropped (and
/// counted). The SDK's default is 2,048: one span per request at tens of
/// thousands of requests a second fills that in a few tens of milliseconds.
pub const DEFAULT_QUEUE: usize = 8_192;
/// Spans per export request at most; a full batch is sent at once (the SDK
/// default is 512; larger batches cost the collector less per span).
pub const DEFAULT_BATCH: usize = 2_048;
/// Longest a span waits before it is sent (`OTEL_BSP_SCHEDULE_DELAY`).
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);
/// Bound on one export, retries included (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// The URL spans are POSTed to (`.../v1/traces`).
    pub endpoint: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub delay: Duration,
    pub queue: usize,
    pub batch: usize,
}

/// The first of `names` that is set and not empty.
fn first(var: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        var(n)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(|v| (n.to_string(), v))
    })
}

fn millis(
    var: &impl Fn(&str) -> Option<String>,
    names: &[&str],
    default: Duration,
) -> Result<Duration, String> {
    match first(var, names) {
        None => Ok(default),
        Some((name, v)) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(format!(
                "{name}={v} is not a positive number of milliseconds"
            )),
        },
    }
}

fn count(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: usize,
) -> Result<usize, String> {
    match first(var, &[name]) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
            _ => Err(format!(
                "{name}={v} must be a whole number from 1 to 1000000"
            )),
        },
    }
}

/// `key1=value1,key2=value2`, values percent-encoded (W3C Baggage syntax).
fn headers(name: &str, raw: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{name}: '{}' is not key=value", pair.trim()))?;
            let value = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8()
                .map_err(|_| format!("{name}: the value of '{}' is not UTF-8", k.trim()))?;
            let key = HeaderName::try_from(k.trim())
                .map_err(|_| format!("{name}: '{}' is not a header name", k.trim()))?;
            let value = HeaderValue::try_from(value.as_ref())
                .map_err(|_| format!("{name}: the value of '{key}' is not a header value"))?;
            Ok((key, value))
        })
        .collect()
}

impl ExportConfig {
    /// `None` when no endpoint is configured (nothing is exported).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let endpoint = match (
            first(&var, &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]),
            first(&var, &["OTEL_EXPORTER_OTLP_ENDPOINT"]),
        ) {
            (Some((_, url)), _) => url,
            (None, Some((_, base))) => {
                // The signal's path goes before a query string, if any.
                let (path, query) = base
                    .split_once('?')
                    .map_or((base.as_str(), ""), |(p, q)| (p, q));
                let sep = if query.is_empty() { "" } else { "?" };
                format!("{}/v1/traces{sep}{query}", path.trim_end_matches('/'))
            }
            (None, None) => return Ok(None),
        };
        match poem::http::Uri::try_from(endpoint.as_str()) {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
            Ok(uri) if uri.scheme_str() == Some("https") => {
                return Err(format!(
                    "OTLP endpoint {endpoint}: https is not supported by this build; \
                     send to a local collector over http"
                ));
            }
            _ => return Err(format!("OTLP endpoint {endpoint} is not an http:// URL")),
        }
        if let Some((name, p)) = first(
            &var,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
        ) {
            if p != "http/protobuf" {
                return Err(format!("{name}={p} is not supported; use http/protobuf"));
            }
        }
        if let Some((name, c)) = first(
            &var,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ],
        ) {
            if c != "none" {
                return Err(format!("{name}={c} is not supported; use none"));
            }
        }
        let headers = match first(
            &var,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ],
        ) {
            Some((name, raw)) => headers(&name, &raw)?,
            None => Vec::new(),
        };
        let queue = count(&var, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE)?;
        let batch = count(&var, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_BATCH)?.min(queue);
        Ok(Some(Self {
            endpoint,
            headers,
            timeout: millis(
                &var,
                &[
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                ],
                DEFAULT_TIMEOUT,
            )?,
            delay: millis(&var, &["OTEL_BSP_SCHEDULE_DELAY"], DEFAULT_DELAY)?,
            queue,
            batch,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<ExportConfig>, String> {
        ExportConfig::from_env(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn no_endpoint_means_no_export() {
        assert_eq!(config(&[]), Ok(None));
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]), Ok(None));
    }

    #[test]
    fn the_general_endpoint_gets_the_signal_path_and_the_traces_one_is_used_as_is() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        let c = config(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4318/otlp?tenant=a",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/otlp/v1/traces?tenant=a");
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://other:9999/custom",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://other:9999/custom");
    }

    #[test]
    fn defaults() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.timeout, c.delay, c.queue, c.batch),
            (DEFAULT_TIMEOUT, DEFAULT_DELAY, DEFAULT_QUEUE, DEFAULT_BATCH)
        );
        assert!(c.headers.is_empty());
    }

    #[test]
    fn headers_are_decoded_and_the_traces_ones_win() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "Authorization=Bearer%20abc , x-tenant=a%2Cb",
            ),
        ])
        .unwrap()
        .unwrap();
        let got: Vec<(String, String)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-tenant".to_owned(), "a,b".to_owned())
            ]
        );
    }

    #[test]
    fn timeouts_and_batches() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(700));
        assert_eq!(c.delay, Duration::from_millis(200));
        // A batch never exceeds the queue.
        assert_eq!((c.queue, c.batch), (100, 100));
    }

    #[test]
    fn what_this_build_cannot_do_is_refused_at_startup() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        for (bad, needle) in [
            (("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), "use http/protobuf"),
            (
                ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
                "use none",
            ),
            (("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"), "milliseconds"),
            (("OTEL_EXPORTER_OTLP_TIMEOUT", "0"), "milliseconds"),
            (("OTEL_BSP_MAX_QUEUE_SIZE", "-1"), "whole number"),
            (("OTEL_EXPORTER_OTLP_HEADERS", "novalue"), "key=value"),
            (
                ("OTEL_EXPORTER_OTLP_HEADERS", "bad header=1"),
                "header name",
            ),
            (("OTEL_EXPORTER_OTLP_HEADERS", "x=%0A"), "header value"),
        ] {
            let err = config(&[endpoint, bad]).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
        for url in ["https://collector:4318", "collector:4318", "ftp://x/y"] {
            let err = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", url)]).unwrap_err();
            assert!(err.contains("OTLP endpoint"), "{url}: {err}");
        }
    }
}
