//! Routing and the response edge. `handle` is the only code that turns an
//! error into a response, writes the access log line and catches panics
//! (rouille's own panic page is HTML; ours is the JSON 500).

use crate::app::App;
use crate::error::ApiError;
use crate::handlers::{ops, profile, session};
use crate::http;
use rouille::{Request, Response};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// Every operation of the API; both path families map onto the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    SignUp,
    LogIn,
    Refresh,
    LogOut,
    LogOutAll,
    GetProfile,
    UpdateProfile,
    Jwks,
    Healthz,
}

impl Route {
    /// The name used in logs (and later metrics and OpenAPI operation ids).
    pub fn name(self) -> &'static str {
        match self {
            Route::SignUp => "sign_up",
            Route::LogIn => "log_in",
            Route::Refresh => "refresh",
            Route::LogOut => "log_out",
            Route::LogOutAll => "log_out_all",
            Route::GetProfile => "get_profile",
            Route::UpdateProfile => "update_profile",
            Route::Jwks => "jwks",
            Route::Healthz => "healthz",
        }
    }
}

struct Entry {
    path: &'static str,
    allow: &'static [&'static str],
    routes: &'static [(&'static str, Route)],
}

const fn entry(
    path: &'static str,
    allow: &'static [&'static str],
    routes: &'static [(&'static str, Route)],
) -> Entry {
    Entry {
        path,
        allow,
        routes,
    }
}

const POST: &[&str] = &["POST"];

/// Paths without their trailing slash.
const TABLE: &[Entry] = &[
    entry("/signup", POST, &[("POST", Route::SignUp)]),
    entry("/api/auth/register", POST, &[("POST", Route::SignUp)]),
    entry("/login", POST, &[("POST", Route::LogIn)]),
    entry("/api/auth/login", POST, &[("POST", Route::LogIn)]),
    entry("/refresh", POST, &[("POST", Route::Refresh)]),
    entry("/api/auth/refresh", POST, &[("POST", Route::Refresh)]),
    entry("/logout", POST, &[("POST", Route::LogOut)]),
    entry("/api/auth/logout", POST, &[("POST", Route::LogOut)]),
    entry("/logout/all", POST, &[("POST", Route::LogOutAll)]),
    entry("/api/auth/logout/all", POST, &[("POST", Route::LogOutAll)]),
    entry(
        "/profile",
        &["GET", "PUT", "PATCH"],
        &[
            ("GET", Route::GetProfile),
            ("PUT", Route::UpdateProfile),
            ("PATCH", Route::UpdateProfile),
        ],
    ),
    entry("/.well-known/jwks.json", &["GET"], &[("GET", Route::Jwks)]),
    entry("/healthz", &["GET"], &[("GET", Route::Healthz)]),
];

/// `(method, path)` → the route; 404 for an unknown path, 405 for a known
/// path with another method. The query string is not part of `path`.
pub fn resolve(method: &str, path: &str) -> Result<Route, ApiError> {
    // HEAD is GET without the body, which the connection layer leaves out.
    let method = if method == "HEAD" { "GET" } else { method };
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let entry = TABLE
        .iter()
        .find(|e| e.path == trimmed)
        .ok_or(ApiError::NotFound)?;
    entry
        .routes
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, route)| *route)
        .ok_or(ApiError::MethodNotAllowed(entry.allow))
}

fn dispatch(app: &App, route: Route, request: &Request) -> Result<Response, ApiError> {
    match route {
        Route::SignUp => session::sign_up(app, request),
        Route::LogIn => session::log_in(app, request),
        Route::Refresh => session::refresh(app, request),
        Route::LogOut => session::log_out(app, request),
        Route::LogOutAll => session::log_out_all(app, request),
        Route::GetProfile => profile::get_profile(app, request),
        Route::UpdateProfile => profile::update_profile(app, request),
        Route::Jwks => ops::jwks(app, request),
        Route::Healthz => ops::healthz(app, request),
    }
}

/// Answers one request: route, run the handler inside a panic guard, turn an
/// error into its JSON response, add the default headers, log one line.
pub fn handle(app: &App, request: &Request) -> Response {
    let started = Instant::now();
    let route = resolve(request.method(), &request.url());
    let name = route.as_ref().map_or("-", |r| r.name());
    let outcome = route.and_then(|route| {
        catch_unwind(AssertUnwindSafe(|| dispatch(app, route, request)))
            .unwrap_or_else(|_| Err(ApiError::internal("the handler panicked")))
    });
    let response = match outcome {
        Ok(response) => response,
        Err(e) => error_response(app, &e),
    };
    let response = with_default_headers(response);
    log::info!(
        target: "latchkey::access",
        "{} {} {} {:.1}ms",
        request.method(),
        name,
        response.status_code,
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// The JSON response for an error; the cause of a 500 is logged here, once.
pub fn error_response(app: &App, error: &ApiError) -> Response {
    if let ApiError::Internal(cause) = error {
        log::error!("internal error: {cause}");
    }
    let status = match error {
        ApiError::TokenExpired => app.config.expired_token_status,
        other => other.status(),
    };
    let mut response = http::json_response(status, &error.body());
    for (name, value) in error.headers() {
        response = response.with_unique_header(name, value);
    }
    response
}

/// Responses of an auth server are private unless a handler says otherwise.
fn with_default_headers(response: Response) -> Response {
    let has = |name: &str| {
        response
            .headers
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case(name))
    };
    let response = if has("Cache-Control") {
        response
    } else {
        http::no_store(response)
    };
    response.with_unique_header("X-Content-Type-Options", "nosniff")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_path_families_with_and_without_slash() {
        for path in [
            "/signup",
            "/signup/",
            "/api/auth/register",
            "/api/auth/register/",
        ] {
            assert_eq!(resolve("POST", path).unwrap(), Route::SignUp, "{path}");
        }
        for path in ["/login/", "/api/auth/login"] {
            assert_eq!(resolve("POST", path).unwrap(), Route::LogIn);
        }
        assert_eq!(resolve("PATCH", "/profile/").unwrap(), Route::UpdateProfile);
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
        assert!(matches!(resolve("GET", "/nope"), Err(ApiError::NotFound)));
        assert!(matches!(
            resolve("POST", "/signup//"),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(resolve("GET", "/"), Err(ApiError::NotFound)));
        match resolve("DELETE", "/profile") {
            Err(ApiError::MethodNotAllowed(allow)) => assert_eq!(allow, ["GET", "PUT", "PATCH"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allow_lists_match_the_routes() {
        for e in TABLE {
            let methods: Vec<&str> = e.routes.iter().map(|(m, _)| *m).collect();
            assert_eq!(methods, e.allow, "{}", e.path);
        }
    }
}
