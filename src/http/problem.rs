//! RFC 9457 problem details: the one shape every error takes, and where errors that
//! escaped a handler become responses.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::Object;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Problem")]
pub struct Problem {
    /// URI identifying the problem type (`about:blank` for plain HTTP errors).
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// Every input field that broke a rule (validation problems only).
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

/// One invalid field of the request.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct FieldError {
    /// Position of the item in a batch request.
    #[oai(skip_serializing_if_is_none)]
    pub index: Option<usize>,
    /// Name of the field (or query parameter) that broke a rule.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl Problem {
    /// A plain HTTP error: `about:blank` with the status' reason phrase as title.
    pub fn status(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// Well-formed input that breaks a rule (422), naming each bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{} {}", errors[0].field, errors[0].message),
            n => format!("{n} fields are invalid"),
        };
        Self {
            problem_type: "urn:tally:problem:validation-error".into(),
            title: "Invalid input".into(),
            status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
            detail,
            errors: Some(errors),
        }
    }

    /// A dependency could not serve the request (503).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self {
            problem_type: "urn:tally:problem:unavailable".into(),
            ..Self::status(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = poem_openapi::types::ToJSON::to_json_string(&self);
        Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body)
    }
}

/// Turns any error that escaped a handler into problem+json.
///
/// Errors that already carry a response (our own typed API errors) pass
/// through untouched; everything else (poem's 404/405, poem-openapi's
/// 400/415 parse errors, 413 from the body limit) is rendered here. `allow`
/// names the methods a route pattern answers, for the `Allow` header of a 405
/// (the API's come from its spec).
pub fn error_to_response(
    err: poem::Error,
    allow: impl Fn(&str) -> Option<poem::http::HeaderValue>,
) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    // Keep the matched route template for the request metrics.
    let route = err.data::<poem::PathPattern>().cloned();
    let detail = match status {
        StatusCode::NOT_FOUND => "no route matches this path".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept this method".to_string(),
        StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_string(),
        _ => err.to_string(),
    };
    let mut resp = Problem::status(status, detail).into_response();
    if status == StatusCode::UNAUTHORIZED {
        // Only the admin API's missing bearer token gets here (the
        // dashboard's own refusals carry their response): say which scheme
        // to use, as RFC 9110 asks of every 401.
        resp.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static("Bearer realm=\"tally admin\""),
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // What the route does answer (RFC 9110 asks every 405 to say).
        if let Some(allow) = route.as_ref().and_then(|r| allow(&r.0)) {
            resp.headers_mut().insert(poem::http::header::ALLOW, allow);
        }
    }
    if let Some(route) = route {
        resp.set_data(route);
    }
    resp
}
