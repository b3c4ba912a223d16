//! Turning a batch of decisions into one script call and its reply back into
//! one verdict per decision. Decisions for the same client and policy are
//! grouped, so a burst from one client costs Redis one pass over its log, not
//! one per request; a group asks for the largest lease any of its decisions
//! asks for.

use std::collections::HashMap;
use std::time::Duration;

use super::Verdict;
use super::identity::ClientKey;
use super::lease::{GiveBack, Grant};
use super::policy::PolicyName;

/// One decision to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub policy: PolicyName,
    pub client: ClientKey,
    /// Slots to lease along with the decision (0: none).
    pub lease: u32,
    pub give_back: Option<GiveBack>,
}

/// One client and policy's share of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub policy: PolicyName,
    pub client: ClientKey,
    /// Decisions asking.
    pub want: usize,
    pub lease: u32,
    pub give_back: Option<GiveBack>,
}

/// The script's reply for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub accepted: u64,
    /// Counted in the window after this call, leased slots included.
    pub count: u64,
    /// Until the oldest counted request leaves the window.
    pub reset: Duration,
    pub leased: u32,
    /// The lease's entry in the log.
    pub lease_stamp: i64,
}

/// Values per group in the script's reply.
pub const REPLY_WIDTH: usize = 5;

/// The groups (first-seen order) and, for each decision, its group's index
/// and its rank among that group's decisions.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub groups: Vec<Group>,
    pub slots: Vec<(usize, usize)>,
}

pub fn plan<'a>(asks: impl IntoIterator<Item = &'a Ask>) -> Plan {
    let mut index: HashMap<(PolicyName, ClientKey), usize> = HashMap::new();
    let mut plan = Plan {
        groups: Vec::new(),
        slots: Vec::new(),
    };
    for ask in asks {
        let k = *index.entry((ask.policy, ask.client)).or_insert_with(|| {
            plan.groups.push(Group {
                policy: ask.policy,
                client: ask.client,
                want: 0,
                lease: 0,
                give_back: None,
            });
            plan.groups.len() - 1
        });
        let group = &mut plan.groups[k];
        plan.slots.push((k, group.want));
        group.want += 1;
        group.lease = group.lease.max(ask.lease);
        group.give_back = group.give_back.or(ask.give_back);
    }
    plan
}

impl Group {
    /// The group's ARGV: policy (0 write, 1 read), decisions, lease, and the
    /// give-back's stamp, size and unused slots (zeros for none).
    pub fn args(&self) -> [String; 6] {
        let policy = match self.policy {
            PolicyName::Write => "0",
            PolicyName::Read => "1",
        };
        let back = self.give_back.unwrap_or(GiveBack {
            stamp: 0,
            size: 0,
            unused: 0,
        });
        [
            policy.to_owned(),
            self.want.to_string(),
            self.lease.to_string(),
            back.stamp.to_string(),
            back.size.to_string(),
            back.unused.to_string(),
        ]
    }
}

impl Answer {
    /// The lease that came with the answer, as the lease table keeps it.
    pub fn grant(&self, limit: u64) -> Option<Grant> {
        (self.leased > 0).then(|| Grant {
            slots: self.leased,
            stamp: self.lease_stamp,
            free: limit.saturating_sub(self.count),
            reset: self.reset,
        })
    }
}

impl Plan {
    /// One answer per group from the script's flattened reply.
    pub fn answers(&self, reply: &[i64]) -> Result<Vec<Answer>, String> {
        if reply.len() != self.groups.len() * REPLY_WIDTH {
            return Err(format!(
                "unexpected reply of {} values for {} clients",
                reply.len(),
                self.groups.len()
            ));
        }
        let nonneg = |v: i64| v.max(0) as u64;
        Ok(reply
            .chunks_exact(REPLY_WIDTH)
            .map(|g| Answer {
                accepted: nonneg(g[0]),
                count: nonneg(g[1]),
                reset: Duration::from_micros(nonneg(g[2])),
                leased: u32::try_from(nonneg(g[3])).unwrap_or(u32::MAX),
                lease_stamp: g[4],
            })
            .collect())
    }

    /// One verdict per decision, in order. Within a group the first
    /// `accepted` pass; `remaining` counts the group's lease as the client's
    /// (this instance hands it out next).
    pub fn verdicts(
        &self,
        answers: &[Answer],
        limit_of: impl Fn(PolicyName) -> u64,
    ) -> Vec<Verdict> {
        self.slots
            .iter()
            .map(|&(k, rank)| {
                let a = &answers[k];
                let limit = limit_of(self.groups[k].policy);
                let before = a.count.saturating_sub(a.accepted + u64::from(a.leased));
                let rank = rank as u64;
                // The lease is not in `counted`: its slots are the client's to use.
                let counted = before + (rank + 1).min(a.accepted);
                Verdict {
                    allowed: rank < a.accepted,
                    remaining: limit.saturating_sub(counted),
                    reset: a.reset,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn client(s: &str) -> ClientKey {
        ClientKey::of(s.parse::<IpAddr>().expect("ip"))
    }

    fn ask(c: &str, policy: PolicyName, lease: u32) -> Ask {
        Ask {
            policy,
            client: client(c),
            lease,
            give_back: None,
        }
    }

    fn answer(accepted: u64, count: u64, reset_secs: u64, leased: u32) -> Answer {
        Answer {
            accepted,
            count,
            reset: Duration::from_secs(reset_secs),
            leased,
            lease_stamp: 7,
        }
    }

    #[test]
    fn groups_by_client_and_policy_in_first_seen_order() {
        let back = GiveBack {
            stamp: 5,
            size: 10,
            unused: 4,
        };
        let asks = [
            ask("10.0.0.1", PolicyName::Write, 0),
            ask("10.0.0.2", PolicyName::Read, 0),
            Ask {
                give_back: Some(back),
                ..ask("10.0.0.1", PolicyName::Write, 8)
            },
            ask("10.0.0.1", PolicyName::Read, 0),
            ask("10.0.0.1", PolicyName::Write, 0),
        ];
        let p = plan(&asks);
        let shape: Vec<_> = p.groups.iter().map(|g| (g.want, g.lease)).collect();
        assert_eq!(shape, [(3, 8), (1, 0), (1, 0)]);
        assert_eq!(p.slots, [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2)]);
        assert_eq!(
            p.groups[0].args(),
            ["0", "3", "8", "5", "10", "4"].map(String::from)
        );
        assert_eq!(
            p.groups[1].args(),
            ["1", "1", "0", "0", "0", "0"].map(String::from)
        );
    }

    #[test]
    fn the_first_accepted_of_a_group_pass_and_remaining_counts_down() {
        let asks = [
            ask("10.0.0.1", PolicyName::Write, 0),
            ask("10.0.0.2", PolicyName::Read, 0),
            ask("10.0.0.1", PolicyName::Write, 0),
            ask("10.0.0.1", PolicyName::Write, 0),
        ];
        let p = plan(&asks);
        // First client: 7 counted before, 2 of 3 accepted (limit 9), oldest leaves in 5 s.
        // Second: nothing before, 1 accepted (limit 600).
        let answers = [answer(2, 9, 5, 0), answer(1, 1, 60, 0)];
        let limit = |p| if p == PolicyName::Write { 9 } else { 600 };
        let v = p.verdicts(&answers, limit);
        let summary: Vec<(bool, u64)> = v.iter().map(|v| (v.allowed, v.remaining)).collect();
        assert_eq!(summary, [(true, 1), (true, 599), (true, 0), (false, 0)]);
        assert_eq!(v[3].reset, Duration::from_secs(5));
    }

    #[test]
    fn a_lease_counts_as_the_clients_remaining_quota() {
        let p = plan(&[
            ask("10.0.0.1", PolicyName::Read, 4),
            ask("10.0.0.1", PolicyName::Read, 0),
        ]);
        // 10 before, 2 accepted, 4 leased: 16 counted of 100.
        let a = answer(2, 16, 60, 4);
        let v = p.verdicts(&[a], |_| 100);
        let remaining: Vec<u64> = v.iter().map(|v| v.remaining).collect();
        assert_eq!(remaining, [89, 88], "the lease's 4 are still the client's");
        let g = a.grant(100).expect("a grant");
        assert_eq!((g.slots, g.stamp, g.free), (4, 7, 84));
        assert_eq!(answer(2, 16, 60, 0).grant(100), None);
    }

    #[test]
    fn a_short_reply_is_an_error() {
        let p = plan(&[ask("10.0.0.1", PolicyName::Write, 0)]);
        assert!(p.answers(&[1, 1, 1]).is_err());
        let a = p.answers(&[1, 1, 2_000_000, 0, 0]).expect("answers");
        let expected = Answer {
            lease_stamp: 0,
            ..answer(1, 1, 2, 0)
        };
        assert_eq!(a[0], expected);
    }
}
