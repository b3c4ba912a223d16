//! The client for the external service: one real HTTP call per request,
//! bounded by the caller (the breaker guard), carrying the W3C traceparent.

use std::time::Duration;

use serde_json::Value;

/// Why a call failed, as the breaker and the API need to know it.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream answered {0}")]
    Status(u16),
    #[error("cannot reach the upstream: {0}")]
    Connect(String),
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream's answer is not JSON: {0}")]
    Body(String),
}

impl UpstreamError {
    /// 4xx is the request's fault, not the upstream's health.
    pub fn is_client_error(&self) -> bool {
        matches!(self, UpstreamError::Status(s) if (400..500).contains(s))
    }
}

#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    url: String,
}

impl UpstreamClient {
    /// `base` is the service's root, e.g. `http://127.0.0.1:8000/simulator`.
    /// `timeout` is a safety net: the breaker guard bounds each call with
    /// the same timeout and usually decides first.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            url: format!("{}/data", base.trim_end_matches('/')),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn fetch(&self, traceparent: Option<&str>) -> Result<Value, UpstreamError> {
        let mut req = self.http.get(&self.url);
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout
            } else {
                UpstreamError::Connect(e.to_string())
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        // The timeout runs on while the body is read: running out then is a
        // timeout (504), not a bad answer (502).
        resp.json::<Value>().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout
            } else {
                UpstreamError::Body(e.to_string())
            }
        })
    }
}
