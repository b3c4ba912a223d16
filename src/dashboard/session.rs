//! Operator sessions for the dashboard's controls: an admin token (from
//! `ADMIN_TOKENS`) is exchanged once for a random session id in an HttpOnly,
//! SameSite=Strict cookie; each session has its own CSRF token that every
//! form carries back. Sessions live in memory, bounded and expiring.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use poem::Request;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "tally_session";
/// Sessions held at once; the oldest go first beyond this.
pub const MAX_SESSIONS: u64 = 10_000;

#[derive(Debug)]
pub struct Session {
    /// The admin token's name: who the audit log says acted.
    pub who: String,
    pub csrf: String,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

pub struct Sessions {
    live: Cache<String, Arc<Session>>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self {
            live: Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .time_to_live(ttl)
                .build(),
            ttl,
        }
    }

    /// A new session for `who`: its id (for the cookie) and the session.
    pub fn create(&self, who: &str) -> (String, Arc<Session>) {
        let id = random_token();
        let session = Arc::new(Session {
            who: who.to_owned(),
            csrf: random_token(),
        });
        self.live.insert(id.clone(), Arc::clone(&session));
        (id, session)
    }

    /// The session named by the request's cookie, if it is live.
    pub fn of(&self, req: &Request) -> Option<(String, Arc<Session>)> {
        let id = cookie(req, COOKIE)?;
        self.live.get(id).map(|s| (id.to_owned(), s))
    }

    pub fn end(&self, id: &str) {
        self.live.invalidate(id);
    }

    /// `Set-Cookie` for a new session.
    pub fn set_cookie(&self, id: &str) -> String {
        format!(
            "{COOKIE}={id}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}",
            self.ttl.as_secs()
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_cookie() -> String {
        format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

/// 256 random bits as hex, from the thread's CSPRNG.
fn random_token() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of cookie `name`.
fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A state-changing request must not come from another site: when the
/// browser names an `Origin`, its host must be ours.
pub fn same_origin(req: &Request) -> bool {
    let Some(origin) = req.header(poem::http::header::ORIGIN) else {
        // Not sent by some clients; the CSRF token still has to match.
        return true;
    };
    let Some(host) = req.header(poem::http::header::HOST) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_cookie_and_end() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (id, s) = sessions.create("ops");
        assert_eq!(id.len(), 64);
        assert_ne!(id, s.csrf);
        let req = Request::builder()
            .header("cookie", format!("a=b; {COOKIE}={id}; c=d"))
            .finish();
        let (found_id, found) = sessions.of(&req).expect("session");
        assert_eq!(found_id, id);
        assert_eq!(found.who, "ops");
        assert!(found.csrf_matches(&s.csrf));
        assert!(!found.csrf_matches("nope"));
        assert!(!found.csrf_matches(""));
        sessions.end(&id);
        assert!(sessions.of(&req).is_none());
        let forged = Request::builder()
            .header("cookie", format!("{COOKIE}=00"))
            .finish();
        assert!(sessions.of(&forged).is_none());
    }

    #[test]
    fn origin_must_match_host_when_sent() {
        let req = |origin: Option<&str>| {
            let mut b = Request::builder().header("host", "127.0.0.1:8000");
            if let Some(o) = origin {
                b = b.header("origin", o);
            }
            b.finish()
        };
        assert!(same_origin(&req(None)));
        assert!(same_origin(&req(Some("http://127.0.0.1:8000"))));
        assert!(!same_origin(&req(Some("http://evil.example"))));
        assert!(!same_origin(&req(Some("null"))));
    }
}
