//! Operational endpoints: health, metrics, the OpenAPI document and the
//! published signing keys.

use crate::app::App;
use crate::error::ApiError;
use crate::web::http;
use rouille::{Request, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

/// `GET /healthz`: 200 when the database answers a query; otherwise 503 with
/// an error body (`code`, `detail`) and `Retry-After`, as every 503 has.
pub fn healthz(app: &App, _request: &Request) -> Result<Response, ApiError> {
    let answers = app.conn().is_ok_and(|conn| crate::db::ping(&conn).is_ok());
    let response = if answers {
        http::json_response(
            200,
            &Health {
                status: "ok",
                code: None,
                detail: None,
            },
        )
    } else {
        let body = Health {
            status: "unavailable",
            code: Some("unavailable"),
            detail: Some("The database does not answer."),
        };
        http::json_response(503, &body).with_unique_header("Retry-After", "5")
    };
    Ok(response.with_unique_header("Cache-Control", "no-cache"))
}

/// `GET /.well-known/jwks.json`: the public keys that verify latchkey's tokens.
/// Cacheable for `--jwks-max-age`: a new key is published at least that long
/// before it signs (`key_ring`), so a verifier that honours it never meets an
/// unknown `kid`.
pub fn jwks(app: &App, _request: &Request) -> Result<Response, ApiError> {
    let cache = format!("public, max-age={}", app.config.jwks_max_age);
    Ok(http::json_response(200, &app.keys().jwks()).with_unique_header("Cache-Control", cache))
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text).
pub fn metrics(app: &App, _request: &Request) -> Result<Response, ApiError> {
    let queued = crate::db::outbox::count_waiting(&*app.conn()?)?;
    let text = app.metrics.render(app.hasher.queue_len(), queued);
    Ok(Response::from_data(crate::ops::metrics::CONTENT_TYPE, text)
        .with_unique_header("Cache-Control", "no-cache"))
}

/// The OpenAPI 3.1 document of the whole contract, built into the binary.
const OPENAPI: &str = include_str!("../../../openapi.json");

/// `GET /openapi.json`.
pub fn openapi(_app: &App, _request: &Request) -> Result<Response, ApiError> {
    Ok(Response::from_data("application/json", OPENAPI)
        .with_unique_header("Cache-Control", "no-cache"))
}
