//! Operator actions: force or reset a circuit breaker, reconfigure the built-in
//! simulator, read the audit log. Every action names its operator (the token's
//! name) in the breaker's audit log.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::breakers::{AuditView, BreakerStatusView};
use super::payload::JsonBody;
use crate::http::problem::{FieldError, Problem};
use crate::state::AppState;
use crate::upstream::SimulatorConfig;

pub struct AdminApi;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BreakerAction {
    /// Hold the breaker open until the next action.
    ForceOpen,
    /// Hold the breaker closed until the next action.
    ForceClosed,
    /// Back to closed with its counters cleared.
    Reset,
}

#[derive(Debug, Object, serde::Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct BreakerActionInput {
    pub action: BreakerAction,
}

#[derive(Debug, Object)]
pub struct AuditLog {
    /// Newest first.
    pub entries: Vec<AuditView>,
}

/// Errors every admin operation can answer.
#[derive(Debug, ApiResponse)]
pub enum AdminError {
    /// Malformed JSON.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No bearer token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// A token that is not allowed, or admin is off (no `ADMIN_TOKENS`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No breaker has this name.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The `Content-Type` is missing or is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Well-formed input that breaks a rule; nothing changed.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many wrong tokens from this client lately (`SIGN_IN_MAX_FAILURES` per
    /// `SIGN_IN_FAILURE_WINDOW`, counted with the dashboard's sign-ins): no token is
    /// checked from it until `Retry-After` has passed. The problem `type` is
    /// `urn:tally:problem:sign-in-limited`.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyFailures(
        Json<Problem>,
        /// Whole seconds until the client's oldest failure leaves the window.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

#[derive(Debug, ApiResponse)]
pub enum BreakerActionResponse {
    /// Done; the breaker's status after the action.
    #[oai(status = 200)]
    Ok(Json<BreakerStatusView>),
}

#[derive(Debug, ApiResponse)]
pub enum SimulatorResponse {
    /// Applied; the simulator's configuration now.
    #[oai(status = 200)]
    Ok(Json<SimulatorConfig>),
}

#[derive(Debug, ApiResponse)]
pub enum AuditResponse {
    #[oai(status = 200)]
    Ok(Json<AuditLog>),
}

fn invalid(field: &str, message: String) -> AdminError {
    AdminError::Unprocessable(Json(Problem::validation(vec![FieldError::new(
        field, message,
    )])))
}

/// Reads a JSON body as `T`, naming the problem as a 422 when it does not fit.
fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, AdminError> {
    serde_json::from_value(value).map_err(|e| invalid("", e.to_string()))
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Force open, force closed or reset a circuit breaker
    #[oai(
        path = "/admin/breakers/:name",
        method = "post",
        operation_id = "admin_breaker_action"
    )]
    async fn breaker_action(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        /// Breaker name, e.g. `upstream`.
        name: Path<String>,
        body: JsonBody<BreakerActionInput>,
    ) -> Result<BreakerActionResponse, AdminError> {
        let Some(breaker) = state.breakers.get(&name) else {
            return Err(AdminError::NotFound(Json(Problem::status(
                poem::http::StatusCode::NOT_FOUND,
                "no circuit breaker has this name",
            ))));
        };
        let input: BreakerActionInput = parse(body.value)?;
        let who = &auth.0.0;
        match input.action {
            BreakerAction::ForceOpen => breaker.force_open(who),
            BreakerAction::ForceClosed => breaker.force_closed(who),
            BreakerAction::Reset => breaker.reset(who),
        };
        Ok(BreakerActionResponse::Ok(Json(breaker.status().into())))
    }

    /// Reconfigure the built-in upstream simulator
    #[oai(
        path = "/admin/simulator",
        method = "put",
        operation_id = "admin_configure_simulator"
    )]
    async fn simulator(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        body: JsonBody<SimulatorConfig>,
    ) -> Result<SimulatorResponse, AdminError> {
        let config: SimulatorConfig = parse(body.value)?;
        let simulator = &state.upstream.simulator;
        simulator
            .configure_by(config, &auth.0.0)
            .map_err(|message| invalid("", message))?;
        tracing::info!(event = "simulator_configured", who = %auth.0.0, ?config, "simulator reconfigured");
        Ok(SimulatorResponse::Ok(Json(simulator.config())))
    }

    /// Operator actions on every breaker
    #[oai(
        path = "/admin/audit",
        method = "get",
        operation_id = "admin_audit_log"
    )]
    async fn audit(
        &self,
        state: Data<&Arc<AppState>>,
        _auth: AdminAuth,
    ) -> Result<AuditResponse, AdminError> {
        Ok(AuditResponse::Ok(Json(AuditLog {
            entries: state
                .breakers
                .audit_log()
                .iter()
                .map(AuditView::from)
                .collect(),
        })))
    }
}
