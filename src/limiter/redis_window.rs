//! The Redis backend: decisions run in `window.lua`, one script call per round
//! trip. Concurrent decisions are gathered into one call (whatever queued while
//! the previous call was in flight: no timer, so no added latency when idle),
//! which keeps Redis and the client from paying a round trip per request under
//! load. The script is loaded on first use and re-loaded on NOSCRIPT (after a
//! Redis restart).

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface, LuaInterface};
use fred::types::config::Options;
use fred::types::scripts::Script;
use tokio::sync::{mpsc, oneshot};

use super::Verdict;
use super::batch::{self, Ask};
use super::policy::{Policy, PolicyName};

const SCRIPT: &str = include_str!("window.lua");
/// Every limiter key starts with this; the version changes with the layout.
pub const KEY_PREFIX: &str = "tally:v1:ratelimit";
/// Most decisions in one script call.
const MAX_BATCH: usize = 256;
/// Decisions waiting for a call; beyond this, callers fall back at once.
const QUEUE: usize = 8_192;

struct Job {
    ask: Ask,
    reply: oneshot::Sender<Result<Verdict, String>>,
}

pub struct RedisWindow {
    jobs: mpsc::Sender<Job>,
    timeout: Duration,
}

impl RedisWindow {
    /// Starts the batching task; needs a Tokio runtime.
    pub fn new(client: Client, write: Policy, read: Policy, timeout: Duration) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        // Both policies travel once per call; each decision names its policy.
        let policies = [write, read]
            .iter()
            .flat_map(|p| [p.limit.to_string(), p.window.as_micros().to_string()])
            .collect();
        tokio::spawn(preload(client.clone()));
        tokio::spawn(run_batches(client, rx, policies, timeout));
        Self { jobs, timeout }
    }

    pub fn key(policy: &Policy, client: &str) -> String {
        format!("{KEY_PREFIX}:{}:{client}", policy.name.as_str())
    }

    /// One decision, within `timeout` or an error.
    pub async fn decide(&self, policy: &Policy, who: &str) -> Result<Verdict, String> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            ask: Ask {
                key: Self::key(policy, who),
                policy: policy.name,
            },
            reply,
        };
        self.jobs
            .try_send(job)
            .map_err(|_| "too many decisions waiting for Redis".to_string())?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the Redis batch was dropped".into()),
            Err(_) => Err(format!("no answer from Redis within {:?}", self.timeout)),
        }
    }
}

/// Loads the script on every (re)connection, so the first decision after a
/// start or a Redis restart doesn't pay for a NOSCRIPT round trip.
async fn preload(client: Client) {
    use tokio::sync::broadcast::error::RecvError;
    let mut connections = client.reconnect_rx();
    let script = Script::from_lua(SCRIPT);
    if client.is_connected() {
        let _ = script.load(&client).await;
    }
    loop {
        match connections.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {
                if let Err(e) = script.load(&client).await {
                    tracing::debug!(error = %e, "could not preload the rate-limit script");
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// One script call at a time: while it is in Redis the next batch gathers, so
/// under load calls get fewer and larger (measured faster than parallel calls,
/// and one task hop fewer per batch than spawning each call).
async fn run_batches(
    client: Client,
    mut rx: mpsc::Receiver<Job>,
    policies: Vec<String>,
    timeout: Duration,
) {
    let script = Script::from_lua(SCRIPT);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Callers that gave up already fell back; don't count them in Redis.
        batch.retain(|job: &Job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(timeout, call(&client, &script, &policies, &batch))
            .await
            .unwrap_or_else(|_| Err(format!("no answer from Redis within {timeout:?}")));
        crate::telemetry::metrics::redis_call("evalsha", started.elapsed(), result.is_ok());
        match result {
            Ok(verdicts) => {
                for (job, verdict) in batch.drain(..).zip(verdicts) {
                    let _ = job.reply.send(Ok(verdict));
                }
            }
            Err(err) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

async fn call(
    client: &Client,
    script: &Script,
    policies: &[String],
    jobs: &[Job],
) -> Result<Vec<Verdict>, String> {
    let opts = Options {
        fail_fast: true,
        max_attempts: Some(1),
        ..Default::default()
    };
    let scoped = client.with_options(&opts);
    let plan = batch::plan(jobs.iter().map(|j| &j.ask));
    let args: Vec<String> = policies.iter().cloned().chain(plan.args()).collect();
    let sha = script.sha1().clone();
    let reply: Result<Vec<i64>, _> = scoped
        .evalsha(sha.clone(), plan.keys.clone(), args.clone())
        .await;
    let flat = match reply {
        Err(e) if e.details().starts_with("NOSCRIPT") => {
            scoped
                .script_load::<String, _>(SCRIPT)
                .await
                .map_err(|e| e.to_string())?;
            scoped.evalsha(sha, plan.keys.clone(), args).await
        }
        other => other,
    }
    .map_err(|e| e.to_string())?;
    let limit = |name| {
        policies
            .get(if name == PolicyName::Write { 0 } else { 2 })
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
    };
    plan.verdicts(&flat, limit)
}
