//! The Redis tier: JSON entries under versioned keys, every call bounded by the
//! cache's Redis timeout and made through the shared `redis` breaker, so it is
//! skipped at once while Redis is known to be down.

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::config::Options;
use fred::types::{Expiration, SetOptions};

use super::entry::Entry;
use super::keys::CacheKey;
use crate::breaker::Breaker;
use crate::redis::{Redis, RedisGate, Unreachable};

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

    pub async fn get(&self, key: &CacheKey) -> Result<Option<Entry>, RemoteError> {
        let client = self.gate.client().with_options(&self.options());
        let found = self
            .gate
            .call(
                "get",
                self.timeout,
                client.get::<Option<String>, _>(key.as_str()),
            )
            .await
            .map_err(failed)?;
        // An entry we cannot read (another version's layout) is a miss.
        Ok(found.and_then(|json| serde_json::from_str(&json).ok()))
    }

    pub async fn put(&self, key: &CacheKey, entry: &Entry) -> Result<(), RemoteError> {
        let json = serde_json::to_string(entry).map_err(|_| RemoteError::Failed)?;
        let client = self.gate.client().with_options(&self.options());
        let expire = Expiration::PX(self.keep.as_millis() as i64);
        let set =
            client.set::<(), _, _>(key.as_str(), json, Some(expire), None::<SetOptions>, false);
        self.gate
            .call("set", self.timeout, set)
            .await
            .map_err(failed)
    }
}

fn failed(why: Unreachable) -> RemoteError {
    match why {
        Unreachable::Skipped => RemoteError::Skipped,
        Unreachable::Failed(reason) => {
            tracing::debug!(%reason, "cache call to Redis failed");
            RemoteError::Failed
        }
    }
}
