//! What each decision is called in `/metrics`: its label, and the kept
//! handles of `tally_rate_limit_decisions_total`.

use std::sync::OnceLock;

use metrics::Counter;

use super::{Backend, Decision, PolicyName};
use crate::telemetry::names;

/// A decision's label: allowed, limited or unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DecisionLabel {
    Allowed = 0,
    Limited = 1,
    Unavailable = 2,
}

impl DecisionLabel {
    const ALL: [DecisionLabel; 3] = [
        DecisionLabel::Allowed,
        DecisionLabel::Limited,
        DecisionLabel::Unavailable,
    ];

    pub(super) fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Decided { verdict, .. } if verdict.allowed => DecisionLabel::Allowed,
            Decision::Decided { .. } => DecisionLabel::Limited,
            Decision::Open => DecisionLabel::Allowed,
            Decision::Closed => DecisionLabel::Unavailable,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            DecisionLabel::Allowed => "allowed",
            DecisionLabel::Limited => "limited",
            DecisionLabel::Unavailable => "unavailable",
        }
    }
}

/// `tally_rate_limit_decisions_total` by policy, decision and backend,
/// registered on first use (after the recorder is installed) and kept: every
/// `/api` request counts one, and a kept handle is one atomic add instead of
/// a lookup of the series by name and labels.
#[derive(Default)]
pub(super) struct DecisionCounters(OnceLock<[Option<Counter>; 18]>);

const BACKENDS: [Backend; 3] = [Backend::Redis, Backend::Local, Backend::Fallback];

/// The slot of a (policy, decision, backend) triple.
fn decision_slot(policy: PolicyName, outcome: DecisionLabel, backend: Backend) -> usize {
    let p = match policy {
        PolicyName::Write => 0,
        PolicyName::Read => 1,
    };
    let o = outcome as usize;
    let b = backend as usize - 1;
    (p * 3 + o) * 3 + b
}

impl DecisionCounters {
    pub(super) fn count(&self, policy: PolicyName, outcome: DecisionLabel, backend: Backend) {
        if let Some(counter) = &self.all()[decision_slot(policy, outcome, backend)] {
            counter.increment(1);
        }
    }

    /// Every possible series at zero (registering them is enough).
    pub(super) fn register(&self) {
        self.all();
    }

    fn all(&self) -> &[Option<Counter>; 18] {
        self.0.get_or_init(|| {
            let mut all: [Option<Counter>; 18] = Default::default();
            for policy in [PolicyName::Write, PolicyName::Read] {
                for outcome in DecisionLabel::ALL {
                    for backend in BACKENDS {
                        // A window allows or limits; without one it is allowed or unavailable.
                        let possible = match backend {
                            Backend::Fallback => outcome != DecisionLabel::Limited,
                            Backend::Redis | Backend::Local => {
                                outcome != DecisionLabel::Unavailable
                            }
                        };
                        if possible {
                            all[decision_slot(policy, outcome, backend)] = Some(metrics::counter!(
                                names::RATE_LIMIT_DECISIONS_TOTAL,
                                names::LABEL_POLICY => policy.as_str(),
                                names::LABEL_DECISION => outcome.as_str(),
                                names::LABEL_BACKEND => backend.as_str()
                            ));
                        }
                    }
                }
            }
            all
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decision_triple_has_its_own_slot() {
        let mut seen = std::collections::HashSet::new();
        for policy in [PolicyName::Write, PolicyName::Read] {
            for outcome in DecisionLabel::ALL {
                for backend in BACKENDS {
                    let slot = decision_slot(policy, outcome, backend);
                    assert!(
                        slot < 18 && seen.insert(slot),
                        "{policy:?} {outcome:?} {backend:?}"
                    );
                }
            }
        }
    }
}
