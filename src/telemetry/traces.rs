//! The trace pipeline: the OpenTelemetry SDK's tracer provider, its batch span processor
//! and `opentelemetry-otlp`'s OTLP/HTTP exporter (protobuf, https with rustls, gzip), all
//! configured by the standard variables as the SDK and the exporter read them:
//! `OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION}`, `OTEL_BSP_*`,
//! `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_SPAN_*_LIMIT`. Three the HTTP exporter does not read are read here:
//! `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` (a private CA), `OTEL_TRACES_EXPORTER`
//! (`otlp` or `none`) and `OTEL_SDK_DISABLED`. With no endpoint set nothing is exported.

use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

use super::names::{LABEL_OUTCOME, TRACE_SPANS_TOTAL};

/// The exporter's timeout when `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` is not set (the
/// specification's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The signal-specific variable if set (and not empty), else the general one; with its name.
fn var(env: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|name| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(|v| ((*name).to_owned(), v))
    })
}

/// Whether traces are to be exported: an endpoint is set, and neither `OTEL_SDK_DISABLED`
/// nor `OTEL_TRACES_EXPORTER=none` says otherwise. An endpoint that is not an http(s) URL,
/// an exporter other than `otlp` or a protocol other than `http/protobuf` is refused.
pub fn enabled(env: impl Fn(&str) -> Option<String>) -> Result<bool, String> {
    if var(&env, &["OTEL_SDK_DISABLED"]).is_some_and(|(_, v)| v.eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    match var(&env, &["OTEL_TRACES_EXPORTER"]) {
        None => {}
        Some((_, v)) if v == "otlp" => {}
        Some((_, v)) if v == "none" => return Ok(false),
        Some((name, v)) => {
            return Err(format!(
                "{name}={v}: this build exports traces with otlp (or none)"
            ));
        }
    }
    if let Some((name, v)) = var(
        &env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
    ) {
        if v != "http/protobuf" {
            return Err(format!(
                "{name}={v}: this build sends OTLP as http/protobuf only"
            ));
        }
    }
    let Some((name, endpoint)) = var(
        &env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ],
    ) else {
        return Ok(false);
    };
    match poem::http::Uri::try_from(endpoint.as_str()) {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(true)
        }
        _ => Err(format!(
            "{name}={endpoint} must be an http:// or https:// URL"
        )),
    }
}

/// The tracer provider, if traces are to be exported.
pub fn provider() -> Result<Option<SdkTracerProvider>, String> {
    let env = |name: &str| std::env::var(name).ok();
    if !enabled(env)? {
        return Ok(None);
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(client) = client_trusting(&env)? {
        exporter = exporter
            .with_http_client(client.client)
            .with_timeout(client.timeout);
    }
    let exporter = exporter
        .build()
        .map_err(|e| format!("cannot build the OTLP trace exporter: {e}"))?;
    let processor = BatchSpanProcessor::builder(Counted::new(exporter)).build();
    let mut resource = Resource::builder();
    let named = env("OTEL_SERVICE_NAME").is_some_and(|v| !v.trim().is_empty())
        || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("tally");
    }
    Ok(Some(
        SdkTracerProvider::builder()
            .with_resource(resource.build())
            .with_span_processor(processor)
            .build(),
    ))
}

/// An HTTP client trusting only the CA of `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`, with
/// the exporter's timeout (the exporter applies its timeout only to a client it builds).
struct TrustingClient {
    client: reqwest::blocking::Client,
    timeout: Duration,
}

fn client_trusting(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TrustingClient>, String> {
    if let Some((name, _)) = var(
        env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ],
    ) {
        return Err(format!(
            "{name} is set: client certificates (mutual TLS) are not supported by this build; \
             authenticate with OTEL_EXPORTER_OTLP_HEADERS"
        ));
    }
    let Some((name, path)) = var(
        env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        ],
    ) else {
        return Ok(None);
    };
    let pem = std::fs::read(&path).map_err(|e| format!("{name}={path}: cannot read it: {e}"))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| format!("{name}={path}: not a PEM certificate"))?;
    let timeout = match var(
        env,
        &[
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ],
    ) {
        None => DEFAULT_TIMEOUT,
        Some((name, v)) => v
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{name}={v} is not a number of milliseconds"))?,
    };
    // reqwest's blocking client runs a runtime of its own: it must not be built (or
    // dropped) on one of tokio's threads.
    let client = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .tls_certs_only(certs)
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| "building the OTLP HTTP client panicked".to_owned())?
    .map_err(|e| format!("{name}={path}: cannot build the HTTP client: {e}"))?;
    Ok(Some(TrustingClient { client, timeout }))
}

/// The exporter, counting what it sends in `tally_trace_spans_total{outcome}` (`exported`,
/// `export_failed`) and logging once when export starts failing and once when it works again.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    failing: std::sync::atomic::AtomicBool,
}

impl<E> Counted<E> {
    fn new(inner: E) -> Self {
        Self {
            inner,
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        use std::sync::atomic::Ordering::Relaxed;
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        let outcome = match &result {
            Ok(()) => {
                if self.failing.swap(false, Relaxed) {
                    tracing::info!("traces: export works again");
                }
                "exported"
            }
            Err(e) => {
                if !self.failing.swap(true, Relaxed) {
                    tracing::warn!(error = %e, "traces: export failing; spans are dropped until it works again");
                }
                "export_failed"
            }
        };
        metrics::counter!(TRACE_SPANS_TOTAL, LABEL_OUTCOME => outcome).increment(spans);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn an_endpoint_turns_traces_on_and_the_standard_switches_turn_them_off() {
        assert_eq!(enabled(env(&[])), Ok(false));
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")];
        assert_eq!(enabled(env(&on)), Ok(true));
        let traces = [(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces",
        )];
        assert_eq!(enabled(env(&traces)), Ok(true));
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(enabled(env(&[on[0], off])), Ok(false), "{off:?}");
        }
        // Empty counts as unset.
        assert_eq!(
            enabled(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            Ok(false)
        );
    }

    #[test]
    fn what_this_build_cannot_do_is_refused_by_name() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        for (bad, says) in [
            (
                ("OTEL_TRACES_EXPORTER", "zipkin"),
                "OTEL_TRACES_EXPORTER=zipkin",
            ),
            (
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
            ),
            (
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
                "http:// or https://",
            ),
        ] {
            let err = enabled(env(&[bad, on])).expect_err("refused");
            assert!(err.contains(says), "{err}");
        }
        let mtls = [on, ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem")];
        let err = client_trusting(&env(&mtls)).err().expect("refused");
        assert!(err.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"), "{err}");
        let missing = [
            on,
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ];
        let err = client_trusting(&env(&missing)).err().expect("refused");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
