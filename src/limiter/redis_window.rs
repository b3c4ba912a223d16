//! The Redis backend: one EVALSHA of `window.lua` per decision, loaded on first
//! use and re-loaded when Redis answers NOSCRIPT (after a restart).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::clients::Client;
use fred::error::Error as RedisError;
use fred::interfaces::{ClientLike, LuaInterface};
use fred::types::config::Options;
use fred::types::scripts::Script;

use super::Verdict;
use super::policy::Policy;

const SCRIPT: &str = include_str!("window.lua");
/// Every limiter key starts with this; the version changes with the layout.
pub const KEY_PREFIX: &str = "tally:v1:ratelimit";

pub struct RedisWindow {
    script: Script,
    /// Makes sorted-set members unique across instances and within a microsecond.
    instance: u64,
    seq: AtomicU64,
}

impl Default for RedisWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisWindow {
    pub fn new() -> Self {
        Self {
            script: Script::from_lua(SCRIPT),
            instance: rand::random(),
            seq: AtomicU64::new(0),
        }
    }

    pub fn key(policy: &Policy, client: &str) -> String {
        format!("{KEY_PREFIX}:{}:{client}", policy.name.as_str())
    }

    /// One decision. Fails at once when not connected and after `timeout` otherwise.
    pub async fn decide(
        &self,
        client: &Client,
        policy: &Policy,
        who: &str,
        timeout: Duration,
    ) -> Result<Verdict, RedisError> {
        let opts = Options {
            fail_fast: true,
            max_attempts: Some(1),
            timeout: Some(timeout),
            ..Default::default()
        };
        let scoped = client.with_options(&opts);
        let key = Self::key(policy, who);
        let member = format!(
            "{:x}-{:x}",
            self.instance,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let args = || -> Vec<String> {
            vec![
                policy.limit.to_string(),
                policy.window.as_micros().to_string(),
                member.clone(),
            ]
        };
        let sha = self.script.sha1().clone();
        let reply: Result<(i64, i64, i64), RedisError> =
            scoped.evalsha(sha.clone(), key.clone(), args()).await;
        let (allowed, remaining, reset) = match reply {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                scoped.script_load::<String, _>(SCRIPT).await?;
                scoped.evalsha(sha, key, args()).await?
            }
            other => other?,
        };
        Ok(Verdict {
            allowed: allowed == 1,
            remaining: remaining.max(0) as u64,
            reset: Duration::from_micros(reset.max(0) as u64),
        })
    }
}
