//! The Redis tier: JSON entries under versioned keys, every call bounded by the
//! cache's Redis timeout and made through the shared `redis` breaker, so it is
//! skipped at once while Redis is known to be down.

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::config::Options;
use fred::types::{Expiration, SetOptions};

use super::entry::Entry;
use super::keys::SummaryKey;
use crate::breaker::{Breaker, Outcome, Permit};
use crate::redis::{Redis, RedisGate};
use crate::telemetry::metrics;

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
    pub fn new(
        redis: Arc<Redis>,
        breaker: Arc<Breaker>,
        timeout: Duration,
        keep: Duration,
    ) -> Self {
        Self {
            gate: RedisGate::new(redis, breaker),
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
        let Some(permit) = self.gate.permit() else {
            return Err(RemoteError::Skipped);
        };
        let client = self.gate.client().with_options(&self.options());
        let started = tokio::time::Instant::now();
        let reply =
            tokio::time::timeout(self.timeout, client.get::<Option<String>, _>(key.as_str())).await;
        metrics::redis_call("get", started.elapsed(), matches!(reply, Ok(Ok(_))));
        match reply {
            Ok(Ok(found)) => {
                permit.record(Outcome::Success);
                // An entry we cannot read (another version's layout) is a miss.
                Ok(found.and_then(|json| serde_json::from_str(&json).ok()))
            }
            Ok(Err(e)) => Err(failed(permit, Outcome::Failure, &e.to_string())),
            Err(_) => Err(failed(permit, Outcome::Timeout, "no answer in time")),
        }
    }

    pub async fn put(&self, key: &SummaryKey, entry: &Entry) -> Result<(), RemoteError> {
        let json = serde_json::to_string(entry).map_err(|_| RemoteError::Failed)?;
        let Some(permit) = self.gate.permit() else {
            return Err(RemoteError::Skipped);
        };
        let client = self.gate.client().with_options(&self.options());
        let expire = Expiration::PX(self.keep.as_millis() as i64);
        let set =
            client.set::<(), _, _>(key.as_str(), json, Some(expire), None::<SetOptions>, false);
        let started = tokio::time::Instant::now();
        let reply = tokio::time::timeout(self.timeout, set).await;
        metrics::redis_call("set", started.elapsed(), matches!(reply, Ok(Ok(()))));
        match reply {
            Ok(Ok(())) => {
                permit.record(Outcome::Success);
                Ok(())
            }
            Ok(Err(e)) => Err(failed(permit, Outcome::Failure, &e.to_string())),
            Err(_) => Err(failed(permit, Outcome::Timeout, "no answer in time")),
        }
    }
}

fn failed(permit: Permit<'_>, outcome: Outcome, reason: &str) -> RemoteError {
    permit.record(outcome);
    tracing::debug!(%reason, "cache call to Redis failed");
    RemoteError::Failed
}
