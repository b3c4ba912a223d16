//! A rate-limit policy (a quota per window) and the headers that describe it,
//! following draft-ietf-httpapi-ratelimit-headers (RateLimit-Policy / RateLimit).

use std::time::Duration;

/// Which policy a request falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyName {
    /// POST and other writes.
    Write,
    /// GET and other reads.
    Read,
}

impl PolicyName {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Write => "write",
            PolicyName::Read => "read",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub name: PolicyName,
    /// Requests accepted in any interval of `window`.
    pub limit: u64,
    pub window: Duration,
}

impl Policy {
    /// `RateLimit-Policy: "write";q=100;w=60`
    pub fn policy_header(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            self.name.as_str(),
            self.limit,
            self.window.as_secs()
        )
    }

    /// `RateLimit: "write";r=57;t=12`, where `t` is the whole seconds until the
    /// oldest counted request leaves the window (and one more unit of quota returns).
    pub fn state_header(&self, remaining: u64, reset: Duration) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.name.as_str(),
            remaining,
            ceil_secs(reset)
        )
    }
}

/// Whole seconds, rounded up, at least 1: what `Retry-After` and `t` carry.
pub fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_draft_syntax() {
        let p = Policy {
            name: PolicyName::Write,
            limit: 100,
            window: Duration::from_secs(60),
        };
        assert_eq!(p.policy_header(), r#""write";q=100;w=60"#);
        assert_eq!(
            p.state_header(57, Duration::from_millis(11_200)),
            r#""write";r=57;t=12"#
        );
    }

    #[test]
    fn seconds_round_up_and_never_reach_zero() {
        assert_eq!(ceil_secs(Duration::ZERO), 1);
        assert_eq!(ceil_secs(Duration::from_micros(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
        assert_eq!(ceil_secs(Duration::from_millis(3_001)), 4);
    }
}
