//! The Redis backend: decisions run in `window.lua`, one script call per round
//! trip. Concurrent decisions are gathered into one call (whatever queued while
//! the previous call was in flight: no timer, so no added latency when idle),
//! which keeps Redis and the client from paying a round trip per request under
//! load. The script is loaded on first use and re-loaded on NOSCRIPT (after a
//! Redis restart).

use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface};
use fred::types::scripts::Script;
use tokio::sync::{mpsc, oneshot};

use super::Verdict;
use super::batch::Ask;
use super::identity::ClientKey;
use super::lease::{GiveBack, Leases};
use super::policy::{Policy, PolicyName};
use crate::redis::RedisGate;

const SCRIPT: &str = include_str!("window.lua");
/// Every limiter key starts with this; the version changes with the layout.
pub const KEY_PREFIX: &str = "tally:v3:ratelimit";
/// Hash tags the clients are spread over. One tag per client would leave a cluster one
/// script call per decision (no two clients share a slot); one tag for all would put every
/// decision on one primary. These six hash to slots near the middle of each sixth of the
/// slot space (1170, 3832, 6527, 9424, 12551, 15207), so a cluster whose slots are split
/// evenly over two, three or six primaries gets an even share on each, and a batch of
/// concurrent decisions still goes in a few calls.
const TAGS: [&str; 6] = ["rl21", "rl4", "rl68", "rl23", "rl17", "rl71"];
/// Most decisions in one script call.
const MAX_BATCH: usize = 256;
/// Decisions waiting for a call; beyond this, callers fall back at once.
const QUEUE: usize = 8_192;

mod caller;

use caller::Caller;

struct Job {
    ask: Ask,
    reply: oneshot::Sender<Result<Verdict, String>>,
}

/// Why a decision has no answer from Redis: its call failed, ran past the timeout or was
/// not made (the `redis` breaker is open), or the caller's own bound ran out while it was
/// queued (or the queue was full). The caller falls back either way; only the lane's
/// guarded call reports to the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered(String);

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct RedisWindow {
    /// One batching lane per hash tag against a Redis Cluster (each tag is one slot, so
    /// each lane's call may hold all its decisions), one lane against one server.
    lanes: Vec<mpsc::Sender<Job>>,
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
        // Both policies travel once per call; each client names its policy.
        let mut head: Vec<String> = [write, read]
            .iter()
            .flat_map(|p| [p.limit.to_string(), p.window.as_micros().to_string()])
            .collect();
        head.push(leases.duration().as_micros().to_string());
        tokio::spawn(preload(gate.client().clone()));
        let count = if gate.client().is_clustered() {
            TAGS.len()
        } else {
            1
        };
        let lanes = (0..count)
            .map(|_| {
                let (jobs, rx) = mpsc::channel(QUEUE / count);
                let caller = Caller {
                    gate: gate.clone(),
                    script: Script::from_lua(SCRIPT),
                    head: head.clone(),
                    limits: [write.limit, read.limit],
                    leases: Arc::clone(&leases),
                    timeout,
                };
                tokio::spawn(caller.run(rx));
                jobs
            })
            .collect();
        Self { lanes, timeout }
    }

    /// Which of `TAGS` a client's keys under a policy carry: the same on every instance.
    fn tag(policy: PolicyName, client: ClientKey) -> (usize, String) {
        let id = format!("{}:{client}", policy.as_str());
        let i = usize::from(fred::util::redis_keyslot(id.as_bytes())) % TAGS.len();
        (i, id)
    }

    /// The client's log and its count, under one of `TAGS` (the same for a client on
    /// every instance), so in a Redis Cluster both keys share a slot and one script call
    /// can decide for every client of that tag.
    pub fn keys(policy: PolicyName, client: ClientKey) -> [String; 2] {
        let (i, id) = Self::tag(policy, client);
        let tag = TAGS[i];
        [
            format!("{KEY_PREFIX}:{{{tag}}}:{id}:log"),
            format!("{KEY_PREFIX}:{{{tag}}}:{id}:count"),
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
        let lane = match self.lanes.len() {
            1 => 0,
            n => Self::tag(policy.name, client).0 % n,
        };
        self.lanes[lane]
            .try_send(job)
            .map_err(|_| Unanswered("too many decisions waiting for Redis".into()))?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result.map_err(Unanswered),
            Ok(Err(_)) => Err(Unanswered("the Redis batch was dropped".into())),
            Err(_) => Err(Unanswered(format!(
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
