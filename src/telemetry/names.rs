//! Every metric and label name, in one place. Units in the name, `_total` on counters.

pub const RATE_LIMIT_DECISIONS_TOTAL: &str = "tally_rate_limit_decisions_total";
pub const RATE_LIMIT_BACKEND_SWITCHES_TOTAL: &str = "tally_rate_limit_backend_switches_total";

pub const LABEL_POLICY: &str = "policy";
pub const LABEL_DECISION: &str = "decision";
pub const LABEL_BACKEND: &str = "backend";
