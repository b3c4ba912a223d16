//! The Redis backend: decisions run in `window.lua`, one script call per round
//! trip. Concurrent decisions are gathered into one call (whatever queued while
//! the previous call was in flight: no timer, so no added latency when idle),
//! which keeps Redis and the client from paying a round trip per request under
//! load. The script is loaded on first use and re-loaded on NOSCRIPT (after a
//! Redis restart).

use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface, LuaInterface};
use fred::types::config::Options;
use fred::types::scripts::Script;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Verdict;
use super::batch::{self, Ask, Plan};
use super::identity::ClientKey;
use super::lease::{GiveBack, Leases};
use super::policy::{Policy, PolicyName};
use crate::redis::RedisGate;

const SCRIPT: &str = include_str!("window.lua");
/// Every limiter key starts with this; the version changes with the layout.
pub const KEY_PREFIX: &str = "tally:v2:ratelimit";
/// Most decisions in one script call.
const MAX_BATCH: usize = 256;
/// Decisions waiting for a call; beyond this, callers fall back at once.
const QUEUE: usize = 8_192;

struct Job {
    ask: Ask,
    reply: oneshot::Sender<Result<Verdict, String>>,
}

/// Why a decision has no answer from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// The script call that carried it failed, ran past the timeout or was
    /// not made (the `redis` breaker is open): Redis is down or slow.
    Redis(String),
    /// The caller's own bound ran out first, its decision still queued
    /// behind the call in flight or in a call not yet answered (or the
    /// queue was full). Says nothing certain about Redis: the batching
    /// task's guarded call reports to the breaker.
    Waited(String),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redis(why) | Self::Waited(why) => f.write_str(why),
        }
    }
}

pub struct RedisWindow {
    jobs: mpsc::Sender<Job>,
    timeout: Duration,
}

/// What one batching task needs for its calls.
struct Caller {
    /// Every call goes through the shared `redis` breaker.
    gate: RedisGate,
    script: Script,
    /// ARGV[1..5]: both policies' limits and windows, and the lease duration.
    head: Vec<String>,
    limits: [u64; 2],
    leases: Arc<Leases>,
    timeout: Duration,
}

impl RedisWindow {
    /// Starts the batching task; needs a Tokio runtime. Grants are settled
    /// in `leases`.
    pub fn new(
        gate: RedisGate,
        write: Policy,
        read: Policy,
        leases: Arc<Leases>,
        timeout: Duration,
    ) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        // Both policies travel once per call; each client names its policy.
        let mut head: Vec<String> = [write, read]
            .iter()
            .flat_map(|p| [p.limit.to_string(), p.window.as_micros().to_string()])
            .collect();
        head.push(leases.duration().as_micros().to_string());
        tokio::spawn(preload(gate.client().clone()));
        let caller = Caller {
            gate,
            script: Script::from_lua(SCRIPT),
            head,
            limits: [write.limit, read.limit],
            leases,
            timeout,
        };
        tokio::spawn(caller.run(rx));
        Self { jobs, timeout }
    }

    /// The client's log and its count.
    pub fn keys(policy: PolicyName, client: ClientKey) -> [String; 2] {
        let p = policy.as_str();
        [
            format!("{KEY_PREFIX}:{p}:log:{client}"),
            format!("{KEY_PREFIX}:{p}:count:{client}"),
        ]
    }

    /// One decision (asking for `lease` slots more, giving back what an
    /// ended lease left), within `timeout` or why not.
    pub async fn decide(
        &self,
        policy: &Policy,
        client: ClientKey,
        lease: u32,
        give_back: Option<GiveBack>,
    ) -> Result<Verdict, Unanswered> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            ask: Ask {
                policy: policy.name,
                client,
                lease,
                give_back,
            },
            reply,
        };
        self.jobs
            .try_send(job)
            .map_err(|_| Unanswered::Waited("too many decisions waiting for Redis".into()))?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result.map_err(Unanswered::Redis),
            Ok(Err(_)) => Err(Unanswered::Redis("the Redis batch was dropped".into())),
            Err(_) => Err(Unanswered::Waited(format!(
                "no answer from Redis within {:?}",
                self.timeout
            ))),
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

/// Slots leased to this instance and given back, for `/metrics` (per
/// grant, not per request).
fn count_lease_slots(group: &batch::Group, granted: u32) {
    use crate::telemetry::names;
    let policy = group.policy.as_str();
    if granted > 0 {
        metrics::counter!(names::RATE_LIMIT_LEASE_SLOTS_GRANTED_TOTAL, names::LABEL_POLICY => policy)
            .increment(u64::from(granted));
    }
    if let Some(back) = group.give_back {
        metrics::counter!(names::RATE_LIMIT_LEASE_SLOTS_RETURNED_TOTAL, names::LABEL_POLICY => policy)
            .increment(u64::from(back.unused));
    }
}

impl Caller {
    fn limit(&self, policy: PolicyName) -> u64 {
        match policy {
            PolicyName::Write => self.limits[0],
            PolicyName::Read => self.limits[1],
        }
    }

    /// One script call at a time: while it is in Redis the next batch
    /// gathers, so under load calls get fewer and larger (measured faster
    /// than parallel calls, and one task hop fewer per batch than spawning
    /// each call).
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            // Callers that gave up already fell back; don't count them in Redis
            // (nor their lease asks: those are settled as failed).
            batch.retain(|job: &Job| {
                let waiting = !job.reply.is_closed();
                if !waiting && (job.ask.lease > 0 || job.ask.give_back.is_some()) {
                    self.leases
                        .settle(job.ask.policy, job.ask.client, None, Instant::now());
                }
                waiting
            });
            if batch.is_empty() {
                continue;
            }
            let plan = batch::plan(batch.iter().map(|j| &j.ask));
            let sent = Instant::now();
            // One guarded call per batch: its outcome counts once, however many wait on it.
            let result = self
                .gate
                .call("evalsha", self.timeout, self.call(&plan))
                .await
                .map_err(|why| why.to_string());
            let answers = result.as_deref().ok();
            for (k, group) in plan.groups.iter().enumerate() {
                if group.lease > 0 || group.give_back.is_some() {
                    let grant = answers.and_then(|a| a[k].grant(self.limit(group.policy)));
                    self.leases.settle(group.policy, group.client, grant, sent);
                    if answers.is_some() {
                        count_lease_slots(group, grant.map_or(0, |g| g.slots));
                    }
                }
            }
            match result {
                Ok(answers) => {
                    let verdicts = plan.verdicts(&answers, |p| self.limit(p));
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

    async fn call(&self, plan: &Plan) -> Result<Vec<batch::Answer>, String> {
        let opts = Options {
            fail_fast: true,
            max_attempts: Some(1),
            ..Default::default()
        };
        let scoped = self.gate.client().with_options(&opts);
        let keys: Vec<String> = plan
            .groups
            .iter()
            .flat_map(|g| RedisWindow::keys(g.policy, g.client))
            .collect();
        let mut args = self.head.clone();
        args.extend(plan.groups.iter().flat_map(|g| g.args()));
        let sha = self.script.sha1().clone();
        let reply: Result<Vec<i64>, _> = scoped
            .evalsha(sha.clone(), keys.clone(), args.clone())
            .await;
        let flat = match reply {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                scoped
                    .script_load::<String, _>(SCRIPT)
                    .await
                    .map_err(|e| e.to_string())?;
                scoped.evalsha(sha, keys, args).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        plan.answers(&flat)
    }
}
