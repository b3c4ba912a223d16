//! Admin authentication: `Authorization: Bearer <token>` checked in constant
//! time against the configured `name:token` pairs. No header: 401. Admin off
//! (no tokens configured) or a wrong token: 403. A client with too many wrong
//! tokens lately (`SIGN_IN_MAX_FAILURES` a window): 429 with `Retry-After`,
//! before its token is compared.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::{IntoResponse, Request};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::config::AdminTokens;
use crate::domain::ceil_secs;
use crate::limiter::{SignInRefused, Surface};
use crate::state::AppState;

/// The operator behind a valid admin token (its configured name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(pub String);

/// Bearer token from `ADMIN_TOKENS`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct AdminAuth(pub Operator);

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<Operator> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| forbidden("admin is not available"))?;
    let tokens = &state.admin_tokens;
    if tokens.0.is_empty() {
        return Err(forbidden("admin is off: no ADMIN_TOKENS are configured"));
    }
    let (ip, client) = state.identify.client(req);
    if let Err(refused) = state.sign_ins.check(client, Surface::Admin) {
        return Err(poem::Error::from_response(too_many_failures(refused)));
    }
    match find(tokens, &bearer.token) {
        Some(operator) => {
            state.sign_ins.succeeded(client);
            Ok(operator)
        }
        None => {
            state.sign_ins.failed(client, ip, Surface::Admin);
            Err(forbidden("this token is not allowed to administer"))
        }
    }
}

/// The 429 of a client with too many failed sign-ins.
pub fn too_many_failures(refused: SignInRefused) -> poem::Response {
    let retry = ceil_secs(refused.retry_after);
    let mut resp = Problem {
        problem_type: SIGN_IN_LIMITED_PROBLEM.into(),
        title: "Too Many Requests".into(),
        status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
        detail: format!(
            "{} failed sign-ins from this client in the last {} s; no token is checked \
             from it until the oldest is {} s old: retry in {retry} s",
            refused.failures,
            refused.window.as_secs(),
            refused.window.as_secs()
        ),
        errors: None,
    }
    .into_response();
    if let Ok(v) = poem::http::HeaderValue::from_str(&retry.to_string()) {
        resp.headers_mut()
            .insert(poem::http::header::RETRY_AFTER, v);
    }
    resp
}

/// The problem `type` of a sign-in refused for too many failures.
pub const SIGN_IN_LIMITED_PROBLEM: &str = "urn:tally:problem:sign-in-limited";

/// The name of the token matching `presented`; every token is compared in full.
pub fn find(tokens: &AdminTokens, presented: &str) -> Option<Operator> {
    let mut found = None;
    for (name, token) in &tokens.0 {
        if bool::from(token.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(Operator(name.clone()));
        }
    }
    found
}

fn forbidden(detail: &str) -> poem::Error {
    poem::Error::from_response(Problem::status(StatusCode::FORBIDDEN, detail).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_right_name_only_for_an_exact_token() {
        let tokens = AdminTokens(vec![
            ("alice".into(), "a-very-long-token-1".into()),
            ("bob".into(), "a-very-long-token-2".into()),
        ]);
        assert_eq!(
            find(&tokens, "a-very-long-token-2"),
            Some(Operator("bob".into()))
        );
        assert_eq!(find(&tokens, "a-very-long-token-"), None);
        assert_eq!(find(&tokens, "a-very-long-token-22"), None);
        assert_eq!(find(&tokens, ""), None);
    }
}
