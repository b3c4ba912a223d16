//! A rate-limit policy (a quota per window) and the headers that describe it,
//! following draft-ietf-httpapi-ratelimit-headers (RateLimit-Policy / RateLimit).

use std::time::Duration;

use poem::http::HeaderValue;

use crate::domain::ceil_secs;

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
    /// oldest counted request leaves the window (and one more unit of quota
    /// returns). Built without `format!`: it is on every limited response.
    pub fn state_header(&self, remaining: u64, reset: Duration) -> HeaderValue {
        let mut digits = itoa::Buffer::new();
        let mut s = String::with_capacity(48);
        s.push('"');
        s.push_str(self.name.as_str());
        s.push_str("\";r=");
        s.push_str(digits.format(remaining));
        s.push_str(";t=");
        s.push_str(digits.format(ceil_secs(reset)));
        // Quotes, letters, digits and `;=`: always a valid header value.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(s))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
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
        let read = Policy {
            name: PolicyName::Read,
            ..p
        };
        assert_eq!(read.state_header(0, Duration::ZERO), r#""read";r=0;t=1"#);
    }
}
