//! Operational endpoints: health and the published signing keys.

use crate::app::App;
use crate::error::ApiError;
use crate::http;
use rouille::{Request, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// `GET /healthz`: 200 when the database answers a query, 503 otherwise.
pub fn healthz(app: &App, _request: &Request) -> Result<Response, ApiError> {
    let answers = app.conn().ok().is_some_and(|conn| {
        conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .is_ok()
    });
    let (status, body) = if answers {
        (200, "ok")
    } else {
        (503, "unavailable")
    };
    Ok(http::json_response(status, &Health { status: body })
        .with_unique_header("Cache-Control", "no-cache"))
}

/// `GET /.well-known/jwks.json`: the public keys that verify latchkey's tokens.
/// Cacheable for five minutes: short enough that a rotated key reaches
/// verifiers well before tokens signed by it circulate widely.
pub fn jwks(app: &App, _request: &Request) -> Result<Response, ApiError> {
    Ok(http::json_response(200, &app.keys().jwks())
        .with_unique_header("Cache-Control", "public, max-age=300"))
}
