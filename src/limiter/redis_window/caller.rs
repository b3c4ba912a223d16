//! A batching lane: gathers the decisions that queued while its previous call was in
//! flight and sends them to Redis in one script call, through the `redis` breaker's guard.
//! Against one server there is one lane; against a Redis Cluster one per hash tag, so each
//! call holds keys of one slot and the lanes' calls run at once.

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::{ClientLike, LuaInterface};
use fred::types::config::Options;
use fred::types::scripts::Script;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::batch::{self, Plan};
use super::super::lease::Leases;
use super::super::policy::PolicyName;
use super::{Job, MAX_BATCH, RedisWindow, SCRIPT};
use crate::redis::RedisGate;

/// What one batching task needs for its calls.
pub(super) struct Caller {
    /// Every call goes through the shared `redis` breaker.
    pub(super) gate: RedisGate,
    pub(super) script: Script,
    /// ARGV[1..5]: both policies' limits and windows, and the lease duration.
    pub(super) head: Vec<String>,
    pub(super) limits: [u64; 2],
    pub(super) leases: Arc<Leases>,
    pub(super) timeout: Duration,
}

impl Caller {
    fn limit(&self, policy: PolicyName) -> u64 {
        match policy {
            PolicyName::Write => self.limits[0],
            PolicyName::Read => self.limits[1],
        }
    }

    /// One call at a time: while it is in Redis the next batch gathers, so under load
    /// calls get fewer and larger (measured faster than parallel calls, and one task hop
    /// fewer per batch than spawning each call).
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Job>) {
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
            self.send(std::mem::take(&mut batch)).await;
        }
    }

    /// One script call for `jobs`, its answers and lease grants given out.
    async fn send(&self, jobs: Vec<Job>) {
        let plan = batch::plan(jobs.iter().map(|j| &j.ask));
        let sent = Instant::now();
        // One guarded call: its outcome counts once, however many wait on it.
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
                for (job, verdict) in jobs.into_iter().zip(verdicts) {
                    let _ = job.reply.send(Ok(verdict));
                }
            }
            Err(err) => {
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
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
            // A restarted server, or a replica just promoted, has no scripts: load it on
            // every primary (one server's when not clustered) and call again.
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                scoped
                    .script_load_cluster::<String, _>(SCRIPT)
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
