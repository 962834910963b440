//! The web layer as the transport sees it: how large a body each request may
//! send, the handlers behind the router, and the answers to the connection
//! layer's own refusals. Every answer is finished by `router::finish`, so one
//! place writes error bodies, default headers and the access log.

use crate::app::App;
use crate::error::ApiError;
use crate::transport::{self, Refusal, RequestLine};
use crate::web::router::{self, Line, Route};
use crate::web::{auth, http, multipart};
use rouille::{Request, Response};
use std::sync::Arc;
use std::time::Instant;

/// The body any request may send: far above any valid JSON request, far below
/// anything that could hurt. Only an authenticated multipart profile update
/// may send more (`Service::admit`).
pub const BODY_LIMIT: usize = http::JSON_LIMIT;

/// The most any request may send: a multipart profile update at its largest.
pub fn max_body_limit(max_image_bytes: usize) -> usize {
    multipart::body_limit(max_image_bytes).max(BODY_LIMIT)
}

/// The router, as the connection layer sees it.
pub struct Service(pub Arc<App>);

impl transport::Service for Service {
    /// A multipart profile update may send a picture once its Bearer token is
    /// verified (here, before a byte of the body is read); without a valid
    /// one it is answered at once (401). Every other request gets `BODY_LIMIT`.
    fn admit(&self, request: &Request) -> Result<usize, Response> {
        let started = Instant::now();
        let route = router::resolve(request.method(), &request.url()).map(|m| m.route);
        let upload = matches!(route, Ok(Route::UpdateProfile))
            && multipart::is_multipart(request.header("Content-Type").unwrap_or_default());
        if !upload {
            return Ok(BODY_LIMIT);
        }
        match auth::caller(&self.0, request) {
            Ok(_) => Ok(max_body_limit(self.0.config.max_image_bytes)),
            Err(error) => {
                let line = Line {
                    method: request.method(),
                    target: request.raw_url(),
                    route: Route::UpdateProfile.name(),
                };
                Err(router::finish(&self.0, line, started, Err(error)))
            }
        }
    }

    fn handle(&self, request: &Request) -> Response {
        router::handle(&self.0, request)
    }

    fn refuse(&self, refusal: Refusal, line: Option<RequestLine<'_>>) -> Response {
        let error = match refusal {
            Refusal::BadRequest => ApiError::BadRequest,
            Refusal::HeadersTooLarge => ApiError::HeadersTooLarge,
            Refusal::PayloadTooLarge => ApiError::PayloadTooLarge,
            Refusal::RequestTimeout => ApiError::RequestTimeout,
            Refusal::Overloaded => ApiError::Overloaded,
            Refusal::Internal => ApiError::internal("the request handler failed"),
        };
        let line = line.map_or(Line::UNKNOWN, |line| Line {
            method: line.method,
            target: line.target,
            route: "-",
        });
        router::finish(&self.0, line, Instant::now(), Err(error))
    }
}
