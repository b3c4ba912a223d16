//! The operator controls behind the pages' forms: sign in and out, breaker
//! actions and the simulator's settings. Every change needs a live session,
//! a same-origin request and the session's CSRF token; each goes to the
//! audit log under the token's name. Answers are 303 redirects back to the
//! page (post/redirect/get), or problem+json when the request is refused.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Path, Redirect};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Dashboard;
use super::pages::html;
use super::session::{Session, Sessions, same_origin};
use crate::http::problem::Problem;
use crate::limiter::{SignInRefused, Surface};
use crate::upstream::{SimulatorConfig, SimulatorMode};

/// Largest form accepted (they hold a few short fields).
const MAX_FORM_BYTES: usize = 4 * 1024;

fn refuse(status: StatusCode, detail: &str) -> poem::Error {
    poem::Error::from_response(Problem::status(status, detail).into_response())
}

fn see_other(to: &str) -> Response {
    Redirect::see_other(to).into_response()
}

/// Reads an `application/x-www-form-urlencoded` body of at most `MAX_FORM_BYTES`.
async fn form<T: DeserializeOwned>(req: &Request, body: Body) -> poem::Result<T> {
    let is_form = req
        .content_type()
        .and_then(|c| c.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "application/x-www-form-urlencoded");
    if !is_form {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the form as application/x-www-form-urlencoded",
        ));
    }
    let bytes = body
        .into_bytes_limit(MAX_FORM_BYTES)
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, &format!("malformed form: {e}")))
}

/// The operator behind a state-changing form, or the refusal.
fn authorize(
    sessions: &Sessions,
    req: &Request,
    csrf: &str,
) -> poem::Result<(String, Arc<Session>)> {
    let Some((id, session)) = sessions.of(req) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "sign in with an admin token at /dashboard/login first",
        ));
    };
    if !same_origin(req) {
        return Err(refuse(StatusCode::FORBIDDEN, "cross-origin form refused"));
    }
    if !session.csrf_matches(csrf) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "the form's CSRF token does not match this session; reload the page",
        ));
    }
    Ok((id, session))
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

#[handler]
pub async fn login(d: Data<&Arc<Dashboard>>, req: &Request, body: Body) -> poem::Result<Response> {
    if !same_origin(req) {
        return Err(refuse(StatusCode::FORBIDDEN, "cross-origin form refused"));
    }
    let input: LoginForm = form(req, body).await?;
    let tokens = &d.state.admin_tokens;
    let (ip, client) = d.state.identify.client(req);
    if !tokens.0.is_empty()
        && let Err(refused) = d.state.sign_ins.check(client, Surface::Dashboard)
    {
        return Ok(too_many_failures(&d, req, refused).await);
    }
    let operator = (!tokens.0.is_empty())
        .then(|| tokens.find(&input.token))
        .flatten();
    let Some(operator) = operator else {
        if !tokens.0.is_empty() {
            d.state.sign_ins.failed(client, ip, Surface::Dashboard);
        }
        let page = d
            .login_page(req, Some("That token is not allowed to administer."))
            .await;
        return Ok(html(StatusCode::FORBIDDEN, askama::Template::render(&page)));
    };
    d.state.sign_ins.succeeded(client);
    let (id, _) = d.sessions.create(operator);
    tracing::info!(event = "dashboard_login", who = %operator, "operator signed in to the dashboard");
    let mut resp = see_other("/dashboard?done=signed_in");
    if let Ok(v) = d.sessions.set_cookie(&id).parse() {
        resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// A client with too many failed sign-ins: the sign-in page saying so for a browser,
/// problem+json for anything else; 429 with `Retry-After` either way.
async fn too_many_failures(d: &Dashboard, req: &Request, refused: SignInRefused) -> Response {
    let mut resp = refused.into_response();
    let wants_html = req
        .header(poem::http::header::ACCEPT)
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        let page = d
            .login_page(
                req,
                Some("Too many failed sign-ins from here: wait, then try again."),
            )
            .await;
        let retry = resp.headers().get(poem::http::header::RETRY_AFTER).cloned();
        resp = html(
            StatusCode::TOO_MANY_REQUESTS,
            askama::Template::render(&page),
        );
        if let Some(retry) = retry {
            resp.headers_mut()
                .insert(poem::http::header::RETRY_AFTER, retry);
        }
    }
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

#[handler]
pub async fn logout(d: Data<&Arc<Dashboard>>, req: &Request, body: Body) -> poem::Result<Response> {
    let input: CsrfForm = form(req, body).await?;
    let (id, _) = authorize(&d.sessions, req, &input.csrf)?;
    d.sessions.end(&id);
    let mut resp = see_other("/dashboard?done=signed_out");
    if let Ok(v) = Sessions::clear_cookie().parse() {
        resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct BreakerForm {
    csrf: String,
    action: String,
}

#[handler]
pub async fn breaker(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    Path(name): Path<String>,
    body: Body,
) -> poem::Result<Response> {
    let input: BreakerForm = form(req, body).await?;
    let (_, session) = authorize(&d.sessions, req, &input.csrf)?;
    let Some(breaker) = d.state.breakers.get(&name) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "no circuit breaker has this name",
        ));
    };
    match input.action.as_str() {
        "force_open" => breaker.force_open(&session.who),
        "force_closed" => breaker.force_closed(&session.who),
        "reset" => breaker.reset(&session.who),
        _ => {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "action must be force_open, force_closed or reset",
            ));
        }
    };
    Ok(see_other("/dashboard/breakers?done=breaker"))
}

#[derive(Deserialize)]
pub struct SimulatorForm {
    csrf: String,
    failure_rate: String,
    latency_ms: String,
    mode: String,
}

#[handler]
pub async fn simulator(
    d: Data<&Arc<Dashboard>>,
    req: &Request,
    body: Body,
) -> poem::Result<Response> {
    let input: SimulatorForm = form(req, body).await?;
    let (_, session) = authorize(&d.sessions, req, &input.csrf)?;
    let config = match (
        input.failure_rate.trim().parse::<f64>(),
        input.latency_ms.trim().parse::<u64>(),
        SimulatorMode::ALL
            .into_iter()
            .find(|m| m.as_str() == input.mode),
    ) {
        (Ok(failure_rate), Ok(latency_ms), Some(mode)) => SimulatorConfig {
            failure_rate,
            latency_ms,
            mode,
        },
        _ => return Ok(see_other("/dashboard?done=invalid")),
    };
    let simulator = &d.state.upstream.simulator;
    Ok(match simulator.configure_by(config, &session.who) {
        Ok(()) => {
            tracing::info!(event = "simulator_configured", who = %session.who, ?config, "simulator reconfigured from the dashboard");
            see_other("/dashboard?done=simulator")
        }
        Err(_) => see_other("/dashboard?done=invalid"),
    })
}
