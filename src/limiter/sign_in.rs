//! Failed sign-ins per client: the admin API's bearer tokens and the dashboard's sign-in
//! form share one count, so a token cannot be guessed through either faster than
//! `SIGN_IN_MAX_FAILURES` a window. A client over it is refused before its token is even
//! compared, the right token included, until its oldest failure leaves the window; other
//! clients are not affected. Counted per instance, in memory (at most `MAX_CLIENTS` are
//! remembered; the least recently failing go first).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use poem::IntoResponse;
use tokio::time::Instant;

use super::ClientKey;
use crate::domain::ceil_secs;
use crate::http::problem::Problem;
use crate::telemetry::names::{LABEL_SURFACE, SIGN_IN_FAILURES_TOTAL, SIGN_IN_REFUSED_TOTAL};

/// Clients whose failures are remembered at once.
const MAX_CLIENTS: u64 = 100_000;

/// Where the sign-in was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `Authorization: Bearer` on `/admin/*`.
    Admin,
    /// `POST /dashboard/login`.
    Dashboard,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Admin => "admin",
            Surface::Dashboard => "dashboard",
        }
    }

    pub const ALL: [Surface; 2] = [Surface::Admin, Surface::Dashboard];
}

/// A refused attempt: the failures counted and when the next attempt may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInRefused {
    pub failures: usize,
    pub window: Duration,
    pub retry_after: Duration,
}

/// The problem `type` of a sign-in refused for too many failures.
pub const SIGN_IN_LIMITED_PROBLEM: &str = "urn:tally:problem:sign-in-limited";

impl IntoResponse for SignInRefused {
    /// The 429 problem+json with `Retry-After` (admin API and dashboard alike).
    fn into_response(self) -> poem::Response {
        let retry = ceil_secs(self.retry_after);
        let mut resp = Problem {
            problem_type: SIGN_IN_LIMITED_PROBLEM.into(),
            title: "Too Many Requests".into(),
            status: poem::http::StatusCode::TOO_MANY_REQUESTS.as_u16(),
            detail: format!(
                "{} failed sign-ins from this client in the last {} s; no token is checked \
                 from it until the oldest is {} s old: retry in {retry} s",
                self.failures,
                self.window.as_secs(),
                self.window.as_secs()
            ),
            errors: None,
        }
        .into_response();
        resp.headers_mut()
            .insert(poem::http::header::RETRY_AFTER, retry.into());
        resp
    }
}

pub struct SignInGuard {
    max_failures: usize,
    window: Duration,
    /// Each client's failure times within the window, oldest first.
    failures: moka::sync::Cache<ClientKey, Arc<Mutex<VecDeque<Instant>>>>,
}

impl SignInGuard {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        register_metrics();
        Self {
            max_failures,
            window,
            failures: moka::sync::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(window)
                .build(),
        }
    }

    /// Whether `client` may try a token now.
    pub fn check(&self, client: ClientKey, surface: Surface) -> Result<(), SignInRefused> {
        let Some(times) = self.failures.get(&client) else {
            return Ok(());
        };
        let mut times = times.lock();
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.max_failures {
            return Ok(());
        }
        metrics::counter!(SIGN_IN_REFUSED_TOTAL, LABEL_SURFACE => surface.as_str()).increment(1);
        let oldest = times.front().copied().unwrap_or(now);
        Err(SignInRefused {
            failures: times.len(),
            window: self.window,
            retry_after: (oldest + self.window).saturating_duration_since(now),
        })
    }

    /// Records a wrong token from `client` (logged with its address).
    pub fn failed(&self, client: ClientKey, ip: IpAddr, surface: Surface) {
        let times = self.failures.get_with(client, Arc::default);
        let mut times = times.lock();
        times.push_back(Instant::now());
        while times.len() > self.max_failures {
            times.pop_front();
        }
        let failures = times.len();
        drop(times);
        metrics::counter!(SIGN_IN_FAILURES_TOTAL, LABEL_SURFACE => surface.as_str()).increment(1);
        if failures >= self.max_failures {
            tracing::warn!(
                event = "sign_in_locked",
                client = %ip,
                surface = surface.as_str(),
                failures,
                window_seconds = self.window.as_secs(),
                "too many failed sign-ins: this client is refused until the window passes"
            );
        } else {
            tracing::warn!(
                event = "sign_in_failed",
                client = %ip,
                surface = surface.as_str(),
                failures,
                "sign-in with a wrong token"
            );
        }
    }

    /// A right token: the client's failures are forgotten.
    pub fn succeeded(&self, client: ClientKey) {
        self.failures.invalidate(&client);
    }
}

/// Every series at zero, so rates and alerts see them from the first scrape.
fn register_metrics() {
    for surface in Surface::ALL {
        metrics::counter!(SIGN_IN_FAILURES_TOTAL, LABEL_SURFACE => surface.as_str()).increment(0);
        metrics::counter!(SIGN_IN_REFUSED_TOTAL, LABEL_SURFACE => surface.as_str()).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> (ClientKey, IpAddr) {
        let ip: IpAddr = s.parse().unwrap();
        (ClientKey::of(ip), ip)
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_over_the_limit_waits_for_its_oldest_failure_to_leave_the_window() {
        let guard = SignInGuard::new(3, Duration::from_secs(60));
        let (a, ip) = key("203.0.113.5");
        let (b, _) = key("203.0.113.6");
        for _ in 0..3 {
            assert_eq!(guard.check(a, Surface::Admin), Ok(()));
            guard.failed(a, ip, Surface::Admin);
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        let refused = guard.check(a, Surface::Dashboard).unwrap_err();
        assert_eq!(refused.failures, 3);
        assert_eq!(refused.retry_after, Duration::from_secs(30));
        assert_eq!(
            guard.check(b, Surface::Admin),
            Ok(()),
            "others are not affected"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            guard.check(a, Surface::Admin),
            Ok(()),
            "the oldest left the window"
        );
        guard.failed(a, ip, Surface::Admin);
        assert!(guard.check(a, Surface::Admin).is_err());
        guard.succeeded(a);
        assert_eq!(guard.check(a, Surface::Admin), Ok(()));
    }
}
