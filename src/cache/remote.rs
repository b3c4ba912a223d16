//! The Redis tier: JSON entries under versioned keys, every call bounded by the
//! cache's Redis timeout and skipped while Redis is known to be down.

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::config::Options;
use fred::types::{Expiration, SetOptions};

use super::entry::Entry;
use super::keys::SummaryKey;
use crate::redis::{Redis, RedisGate};

pub struct RemoteTier {
    gate: RedisGate,
    timeout: Duration,
    /// How long Redis keeps an entry: freshness plus the stale window.
    keep: Duration,
}

/// Why the Redis tier could not answer.
#[derive(Debug)]
pub enum RemoteError {
    /// Redis is known to be down: not asked.
    Skipped,
    Failed,
}

impl RemoteTier {
    pub fn new(redis: Arc<Redis>, timeout: Duration, keep: Duration) -> Self {
        Self {
            gate: RedisGate::new(redis),
            timeout,
            keep,
        }
    }

    fn options(&self) -> Options {
        Options {
            fail_fast: true,
            max_attempts: Some(1),
            timeout: Some(self.timeout),
            ..Default::default()
        }
    }

    pub async fn get(&self, key: &SummaryKey) -> Result<Option<Entry>, RemoteError> {
        if !self.gate.usable() {
            return Err(RemoteError::Skipped);
        }
        let client = self.gate.client().with_options(&self.options());
        let reply =
            tokio::time::timeout(self.timeout, client.get::<Option<String>, _>(key.as_str())).await;
        match reply {
            Ok(Ok(None)) => Ok(None),
            // An entry we cannot read (another version's layout) is a miss.
            Ok(Ok(Some(json))) => Ok(serde_json::from_str(&json).ok()),
            Ok(Err(e)) => Err(self.failed(e.to_string())),
            Err(_) => Err(self.failed(format!("no answer within {:?}", self.timeout))),
        }
    }

    pub async fn put(&self, key: &SummaryKey, entry: &Entry) -> Result<(), RemoteError> {
        if !self.gate.usable() {
            return Err(RemoteError::Skipped);
        }
        let json = serde_json::to_string(entry).map_err(|_| RemoteError::Failed)?;
        let client = self.gate.client().with_options(&self.options());
        let expire = Expiration::PX(self.keep.as_millis() as i64);
        let set =
            client.set::<(), _, _>(key.as_str(), json, Some(expire), None::<SetOptions>, false);
        match tokio::time::timeout(self.timeout, set).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failed(e.to_string())),
            Err(_) => Err(self.failed(format!("no answer within {:?}", self.timeout))),
        }
    }

    fn failed(&self, reason: String) -> RemoteError {
        if self.gate.mark_down() {
            tracing::warn!(event = "cache_redis_failed", %reason, "cache stops asking Redis until it answers a PING");
        }
        RemoteError::Failed
    }
}
