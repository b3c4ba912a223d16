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

use crate::http::problem::Problem;
use crate::limiter::Surface;
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
        return Err(poem::Error::from_response(refused.into_response()));
    }
    match tokens.find(&bearer.token) {
        Some(name) => {
            state.sign_ins.succeeded(client);
            Ok(Operator(name.to_owned()))
        }
        None => {
            state.sign_ins.failed(client, ip, Surface::Admin);
            Err(forbidden("this token is not allowed to administer"))
        }
    }
}

fn forbidden(detail: &str) -> poem::Error {
    poem::Error::from_response(Problem::status(StatusCode::FORBIDDEN, detail).into_response())
}
