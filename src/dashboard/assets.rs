//! The dashboard's script, stylesheet and icon, compiled into the binary.

use poem::http::StatusCode;
use poem::web::Path;
use poem::{IntoResponse, Response, handler};

use crate::http::problem::Problem;

const LIVE_JS: &str = include_str!("../../templates/assets/live.js");
const STYLE_CSS: &str = include_str!("../../templates/assets/style.css");
const FAVICON_SVG: &str = include_str!("../../templates/assets/favicon.svg");

#[handler]
pub fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "live.js" => (LIVE_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        "favicon.svg" => (FAVICON_SVG, "image/svg+xml"),
        _ => {
            return Problem::status(StatusCode::NOT_FOUND, "no such dashboard asset")
                .into_response();
        }
    };
    Response::builder()
        .content_type(content_type)
        // Versioned with the binary: revalidate after a short while.
        .header("cache-control", "public, max-age=300")
        .body(body)
}
