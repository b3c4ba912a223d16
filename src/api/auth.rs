//! Admin authentication: `Authorization: Bearer <token>` checked in constant
//! time against the configured `name:token` pairs. No header: 401. Admin off
//! (no tokens configured) or a wrong token: 403.

use std::sync::Arc;

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::config::AdminTokens;
use crate::state::AppState;

/// The operator behind a valid admin token (its configured name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(pub String);

/// Bearer token from `ADMIN_TOKENS`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct AdminAuth(pub Operator);

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<Operator> {
    let tokens = req
        .data::<Arc<AppState>>()
        .map(|s| &s.admin_tokens)
        .ok_or_else(|| forbidden("admin is not available"))?;
    if tokens.0.is_empty() {
        return Err(forbidden("admin is off: no ADMIN_TOKENS are configured"));
    }
    find(tokens, &bearer.token).ok_or_else(|| forbidden("this token is not allowed to administer"))
}

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
    poem::Error::from_response(poem::IntoResponse::into_response(Problem::status(
        StatusCode::FORBIDDEN,
        detail,
    )))
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
