//! Turning a batch of decisions into one script call and its reply back into
//! one verdict per decision. Decisions for the same key are grouped, so a burst
//! from one client costs Redis one pass over its log, not one per request.

use std::collections::HashMap;
use std::time::Duration;

use super::Verdict;
use super::policy::PolicyName;

/// One decision to make: the client's key and its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub key: String,
    pub policy: PolicyName,
}

/// The script's arguments: unique keys (first-seen order) and, per key, its
/// policy and how many decisions ask under it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub keys: Vec<String>,
    pub per_key: Vec<(PolicyName, usize)>,
    /// For each decision, its key's index and its rank among that key's decisions.
    pub slots: Vec<(usize, usize)>,
}

pub fn plan<'a>(asks: impl IntoIterator<Item = &'a Ask>) -> Plan {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut plan = Plan {
        keys: Vec::new(),
        per_key: Vec::new(),
        slots: Vec::new(),
    };
    for ask in asks {
        let k = *index.entry(&ask.key).or_insert_with(|| {
            plan.keys.push(ask.key.clone());
            plan.per_key.push((ask.policy, 0));
            plan.keys.len() - 1
        });
        plan.slots.push((k, plan.per_key[k].1));
        plan.per_key[k].1 += 1;
    }
    plan
}

impl Plan {
    /// ARGV after the four policy values.
    pub fn args(&self) -> impl Iterator<Item = String> + '_ {
        self.per_key.iter().flat_map(|(policy, n)| {
            let p = match policy {
                PolicyName::Write => "0",
                PolicyName::Read => "1",
            };
            [p.to_owned(), n.to_string()]
        })
    }

    /// One verdict per decision, in order, from the script's flattened reply.
    pub fn verdicts(
        &self,
        reply: &[i64],
        limit_of: impl Fn(PolicyName) -> u64,
    ) -> Result<Vec<Verdict>, String> {
        if reply.len() != self.keys.len() * 3 {
            return Err(format!(
                "unexpected reply of {} values for {} keys",
                reply.len(),
                self.keys.len()
            ));
        }
        let groups: Vec<&[i64]> = reply.chunks_exact(3).collect();
        Ok(self
            .slots
            .iter()
            .map(|&(k, rank)| {
                let (accepted, count_after, reset) = (
                    groups[k][0].max(0) as u64,
                    groups[k][1].max(0) as u64,
                    groups[k][2],
                );
                let limit = limit_of(self.per_key[k].0);
                let before = count_after.saturating_sub(accepted);
                let rank = rank as u64;
                let counted = before + (rank + 1).min(accepted);
                Verdict {
                    allowed: rank < accepted,
                    remaining: limit.saturating_sub(counted),
                    reset: Duration::from_micros(reset.max(0) as u64),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(key: &str, policy: PolicyName) -> Ask {
        Ask {
            key: key.into(),
            policy,
        }
    }

    #[test]
    fn groups_by_key_in_first_seen_order() {
        let asks = [
            ask("a", PolicyName::Write),
            ask("b", PolicyName::Read),
            ask("a", PolicyName::Write),
            ask("a", PolicyName::Write),
        ];
        let p = plan(&asks);
        assert_eq!(p.keys, ["a", "b"]);
        assert_eq!(p.per_key, [(PolicyName::Write, 3), (PolicyName::Read, 1)]);
        assert_eq!(p.slots, [(0, 0), (1, 0), (0, 1), (0, 2)]);
        assert_eq!(p.args().collect::<Vec<_>>(), ["0", "3", "1", "1"]);
    }

    #[test]
    fn the_first_accepted_of_a_key_pass_and_remaining_counts_down() {
        let asks = [
            ask("a", PolicyName::Write),
            ask("b", PolicyName::Read),
            ask("a", PolicyName::Write),
            ask("a", PolicyName::Write),
        ];
        let p = plan(&asks);
        // "a": 7 counted before, 2 of 3 accepted (limit 9), oldest leaves in 5 s.
        // "b": nothing before, 1 accepted (limit 600).
        let reply = [2, 9, 5_000_000, 1, 1, 60_000_000];
        let limit = |p| if p == PolicyName::Write { 9 } else { 600 };
        let v = p.verdicts(&reply, limit).expect("verdicts");
        let summary: Vec<(bool, u64)> = v.iter().map(|v| (v.allowed, v.remaining)).collect();
        assert_eq!(summary, [(true, 1), (true, 599), (true, 0), (false, 0)]);
        assert_eq!(v[3].reset, Duration::from_secs(5));
    }

    #[test]
    fn a_short_reply_is_an_error() {
        let p = plan(&[ask("a", PolicyName::Write)]);
        assert!(p.verdicts(&[1, 1], |_| 1).is_err());
    }
}
