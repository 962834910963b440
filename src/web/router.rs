//! Routing and the response edge. `handle` is the only code that turns an
//! error into a response, writes the access log line and catches panics
//! (rouille's own panic page is HTML; ours is the JSON 500).

use crate::app::App;
use crate::db::email_tokens::Purpose;
use crate::domain::ids;
use crate::error::ApiError;
use crate::web::handlers::{
    audit, email, images, link_pages, mfa, ops, private_tokens, profile, session,
};
use crate::web::http;
use rouille::{Request, Response};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// Every operation of the API; both path families map onto the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    SignUp,
    LogIn,
    LogInMfa,
    Refresh,
    LogOut,
    LogOutAll,
    ListSessions,
    DeleteSession,
    Revoke,
    ListTokens,
    CreateToken,
    GetToken,
    DeleteToken,
    RotateToken,
    GetProfile,
    UpdateProfile,
    DeleteProfile,
    DeleteProfileImage,
    ChangePassword,
    EnrolTotp,
    ConfirmTotp,
    DeleteTotp,
    RegenerateRecoveryCodes,
    GetAvatar,
    ListEvents,
    Jwks,
    Healthz,
    Metrics,
    OpenApi,
    VerifyEmail,
    ResendVerification,
    ForgotPassword,
    ResetPassword,
    ConfirmEmail,
    /// GET of a mailed link's page: a form, nothing spent.
    ShowLink(Purpose),
    /// That form's POST: spends the link.
    SubmitLink(Purpose),
}

impl Route {
    /// The name used in logs (and later metrics and OpenAPI operation ids).
    pub fn name(self) -> &'static str {
        match self {
            Route::SignUp => "sign_up",
            Route::LogIn => "log_in",
            Route::LogInMfa => "log_in_mfa",
            Route::Refresh => "refresh",
            Route::LogOut => "log_out",
            Route::LogOutAll => "log_out_all",
            Route::ListSessions => "list_sessions",
            Route::DeleteSession => "delete_session",
            Route::Revoke => "revoke",
            Route::ListTokens => "list_tokens",
            Route::CreateToken => "create_token",
            Route::GetToken => "get_token",
            Route::DeleteToken => "delete_token",
            Route::RotateToken => "rotate_token",
            Route::GetProfile => "get_profile",
            Route::UpdateProfile => "update_profile",
            Route::DeleteProfile => "delete_profile",
            Route::DeleteProfileImage => "delete_profile_image",
            Route::ChangePassword => "change_password",
            Route::EnrolTotp => "enrol_totp",
            Route::ConfirmTotp => "confirm_totp",
            Route::DeleteTotp => "delete_totp",
            Route::RegenerateRecoveryCodes => "regenerate_recovery_codes",
            Route::GetAvatar => "get_avatar",
            Route::ListEvents => "list_events",
            Route::Jwks => "jwks",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::OpenApi => "openapi",
            Route::VerifyEmail => "verify_email",
            Route::ResendVerification => "resend_verification",
            Route::ForgotPassword => "forgot_password",
            Route::ResetPassword => "reset_password",
            Route::ConfirmEmail => "confirm_email",
            Route::ShowLink(Purpose::Verify) => "verify_email_page",
            Route::ShowLink(Purpose::Reset) => "reset_password_page",
            Route::ShowLink(Purpose::Change) => "confirm_email_page",
            Route::SubmitLink(Purpose::Verify) => "verify_email_form",
            Route::SubmitLink(Purpose::Reset) => "reset_password_form",
            Route::SubmitLink(Purpose::Change) => "confirm_email_form",
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
const GET_POST: &[&str] = &["GET", "POST"];

/// Paths without their trailing slash.
const TABLE: &[Entry] = &[
    entry("/signup", POST, &[("POST", Route::SignUp)]),
    entry("/api/auth/register", POST, &[("POST", Route::SignUp)]),
    entry("/login", POST, &[("POST", Route::LogIn)]),
    entry("/api/auth/login", POST, &[("POST", Route::LogIn)]),
    entry("/login/mfa", POST, &[("POST", Route::LogInMfa)]),
    entry("/refresh", POST, &[("POST", Route::Refresh)]),
    entry("/api/auth/refresh", POST, &[("POST", Route::Refresh)]),
    entry("/logout", POST, &[("POST", Route::LogOut)]),
    entry("/api/auth/logout", POST, &[("POST", Route::LogOut)]),
    entry("/logout/all", POST, &[("POST", Route::LogOutAll)]),
    entry("/api/auth/logout/all", POST, &[("POST", Route::LogOutAll)]),
    entry("/sessions", &["GET"], &[("GET", Route::ListSessions)]),
    entry(
        "/sessions/{id}",
        &["DELETE"],
        &[("DELETE", Route::DeleteSession)],
    ),
    entry("/revoke", POST, &[("POST", Route::Revoke)]),
    entry(
        "/tokens",
        &["GET", "POST"],
        &[("GET", Route::ListTokens), ("POST", Route::CreateToken)],
    ),
    entry(
        "/tokens/{id}",
        &["GET", "DELETE"],
        &[("GET", Route::GetToken), ("DELETE", Route::DeleteToken)],
    ),
    entry("/tokens/{id}/rotate", POST, &[("POST", Route::RotateToken)]),
    entry(
        "/profile",
        &["GET", "PUT", "PATCH", "DELETE"],
        &[
            ("GET", Route::GetProfile),
            ("PUT", Route::UpdateProfile),
            ("PATCH", Route::UpdateProfile),
            ("DELETE", Route::DeleteProfile),
        ],
    ),
    entry(
        "/profile/image",
        &["DELETE"],
        &[("DELETE", Route::DeleteProfileImage)],
    ),
    entry("/password", POST, &[("POST", Route::ChangePassword)]),
    entry(
        "/mfa/totp",
        &["POST", "DELETE"],
        &[("POST", Route::EnrolTotp), ("DELETE", Route::DeleteTotp)],
    ),
    entry("/mfa/totp/confirm", POST, &[("POST", Route::ConfirmTotp)]),
    entry(
        "/mfa/recovery-codes",
        POST,
        &[("POST", Route::RegenerateRecoveryCodes)],
    ),
    entry(
        "/media/avatars/{id}",
        &["GET"],
        &[("GET", Route::GetAvatar)],
    ),
    entry("/account/events", &["GET"], &[("GET", Route::ListEvents)]),
    entry("/.well-known/jwks.json", &["GET"], &[("GET", Route::Jwks)]),
    entry("/healthz", &["GET"], &[("GET", Route::Healthz)]),
    entry("/metrics", &["GET"], &[("GET", Route::Metrics)]),
    entry("/openapi.json", &["GET"], &[("GET", Route::OpenApi)]),
    entry("/email/verify", POST, &[("POST", Route::VerifyEmail)]),
    entry(
        "/email/verify/resend",
        POST,
        &[("POST", Route::ResendVerification)],
    ),
    entry("/email/confirm", POST, &[("POST", Route::ConfirmEmail)]),
    entry("/password/forgot", POST, &[("POST", Route::ForgotPassword)]),
    entry("/password/reset", POST, &[("POST", Route::ResetPassword)]),
    entry(
        "/account/verify-email",
        GET_POST,
        &[
            ("GET", Route::ShowLink(Purpose::Verify)),
            ("POST", Route::SubmitLink(Purpose::Verify)),
        ],
    ),
    entry(
        "/account/reset-password",
        GET_POST,
        &[
            ("GET", Route::ShowLink(Purpose::Reset)),
            ("POST", Route::SubmitLink(Purpose::Reset)),
        ],
    ),
    entry(
        "/account/confirm-email",
        GET_POST,
        &[
            ("GET", Route::ShowLink(Purpose::Change)),
            ("POST", Route::SubmitLink(Purpose::Change)),
        ],
    ),
];

/// A resolved request: the route and the id in its path, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    pub id: Option<String>,
}

/// `(method, path)` → the route; 404 for an unknown path (or an `{id}` that
/// is not a UUID), 405 for a known path with another method. The query
/// string is not part of `path`.
pub fn resolve(method: &str, path: &str) -> Result<Matched, ApiError> {
    // HEAD is GET without the body, which the connection layer leaves out.
    let method = if method == "HEAD" { "GET" } else { method };
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let (entry, id) = TABLE
        .iter()
        .find_map(|e| matches(e.path, trimmed).map(|id| (e, id)))
        .ok_or(ApiError::NotFound)?;
    entry
        .routes
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, route)| Matched {
            route: *route,
            id: id.map(str::to_string),
        })
        .ok_or(ApiError::MethodNotAllowed(entry.allow))
}

/// Whether `path` fits `pattern`; `Some(Some(id))` when the pattern has `{id}`.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<Option<&'p str>> {
    let mut id = None;
    let mut segments = path.split('/');
    for want in pattern.split('/') {
        let got = segments.next()?;
        if want == "{id}" && ids::is_uuid(got) {
            id = Some(got);
        } else if want != got {
            return None;
        }
    }
    segments.next().is_none().then_some(id)
}

fn dispatch(app: &App, matched: &Matched, request: &Request) -> Result<Response, ApiError> {
    let id = matched.id.as_deref().unwrap_or_default();
    match matched.route {
        Route::SignUp => session::sign_up(app, request),
        Route::LogIn => session::log_in(app, request),
        Route::LogInMfa => mfa::log_in_mfa(app, request),
        Route::Refresh => session::refresh(app, request),
        Route::LogOut => session::log_out(app, request),
        Route::LogOutAll => session::log_out_all(app, request),
        Route::ListSessions => session::list_sessions(app, request),
        Route::DeleteSession => session::delete_session(app, request, id),
        Route::Revoke => session::revoke(app, request),
        Route::ListTokens => private_tokens::list_tokens(app, request),
        Route::CreateToken => private_tokens::create_token(app, request),
        Route::GetToken => private_tokens::get_token(app, request, id),
        Route::DeleteToken => private_tokens::delete_token(app, request, id),
        Route::RotateToken => private_tokens::rotate_token(app, request, id),
        Route::GetProfile => profile::get_profile(app, request),
        Route::UpdateProfile => profile::update_profile(app, request),
        Route::DeleteProfile => profile::delete_profile(app, request),
        Route::DeleteProfileImage => images::delete_profile_image(app, request),
        Route::ChangePassword => profile::change_password(app, request),
        Route::EnrolTotp => mfa::enrol_totp(app, request),
        Route::ConfirmTotp => mfa::confirm_totp(app, request),
        Route::DeleteTotp => mfa::delete_totp(app, request),
        Route::RegenerateRecoveryCodes => mfa::regenerate_recovery_codes(app, request),
        Route::GetAvatar => images::get_avatar(app, request, id),
        Route::ListEvents => audit::list_events(app, request),
        Route::Jwks => ops::jwks(app, request),
        Route::Healthz => ops::healthz(app, request),
        Route::Metrics => ops::metrics(app, request),
        Route::OpenApi => ops::openapi(app, request),
        Route::VerifyEmail => email::verify_email(app, request),
        Route::ResendVerification => email::resend_verification(app, request),
        Route::ForgotPassword => email::forgot_password(app, request),
        Route::ResetPassword => email::reset_password(app, request),
        Route::ConfirmEmail => email::confirm_email(app, request),
        Route::ShowLink(purpose) => link_pages::show(app, request, purpose),
        Route::SubmitLink(purpose) => link_pages::submit(app, request, purpose),
    }
}

/// Answers one request: route, run the handler inside a panic guard, then
/// `finish` the answer.
pub fn handle(app: &App, request: &Request) -> Response {
    let started = Instant::now();
    let matched = resolve(request.method(), &request.url());
    let name = matched.as_ref().map_or("-", |m| m.route.name());
    let outcome = matched.and_then(|matched| {
        catch_unwind(AssertUnwindSafe(|| dispatch(app, &matched, request)))
            .unwrap_or_else(|_| Err(ApiError::internal("the handler panicked")))
    });
    let line = Line {
        method: request.method(),
        target: request.raw_url(),
        route: name,
    };
    finish(app, line, started, outcome)
}

/// What the access log says about a request: its method, its target (of which
/// only the path is logged) and its route's name; `-` for what is unknown.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub route: &'static str,
}

impl Line<'_> {
    /// For an answer given before the request line was read.
    pub const UNKNOWN: Line<'static> = Line {
        method: "-",
        target: "-",
        route: "-",
    };
}

/// Every answer leaves through here — a handler's, an error of the router or a
/// handler, and the connection layer's refusals: the error body, the default
/// headers, the metrics and the one access-log line.
pub fn finish(
    app: &App,
    line: Line<'_>,
    started: Instant,
    outcome: Result<Response, ApiError>,
) -> Response {
    let response = match outcome {
        Ok(response) => response,
        Err(e) => error_response(app, &e),
    };
    let response = with_default_headers(response);
    let elapsed = started.elapsed().as_secs_f64();
    app.metrics
        .request(line.route, response.status_code, elapsed);
    log::info!(
        target: "latchkey::access",
        "{} {} {} {} {:.1}ms",
        loggable(line.method),
        loggable(path_of(line.target)),
        line.route,
        response.status_code,
        elapsed * 1000.0
    );
    response
}

/// The path of a request target: the query string may carry link tokens, and
/// never reaches the log.
fn path_of(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or_default()
}

/// Request text made safe for one log line: at most 200 characters, anything
/// but printable ASCII escaped, so a request cannot forge or split log lines.
fn loggable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(200));
    for c in text.chars().take(200) {
        if c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    if out.is_empty() { "-".into() } else { out }
}

/// The JSON response for an error — the only writer of an error body; the
/// cause of a 500 is logged here, once.
fn error_response(app: &App, error: &ApiError) -> Response {
    if let ApiError::Internal(cause) = error {
        log::error!("internal error: {cause}");
    }
    let status = match error {
        ApiError::TokenExpired => app.config.expired_token_status,
        other => other.status(),
    };
    let mut response =
        Response::from_data("application/json", error.to_json()).with_status_code(status);
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
            assert_eq!(
                resolve("POST", path).unwrap().route,
                Route::SignUp,
                "{path}"
            );
        }
        for path in ["/login/", "/api/auth/login"] {
            assert_eq!(resolve("POST", path).unwrap().route, Route::LogIn);
        }
        assert_eq!(
            resolve("PATCH", "/profile/").unwrap().route,
            Route::UpdateProfile
        );
        assert_eq!(resolve("HEAD", "/healthz").unwrap().route, Route::Healthz);
    }

    #[test]
    fn ids_in_paths_must_be_uuids() {
        let id = ids::uuid();
        let m = resolve("POST", &format!("/tokens/{id}/rotate/")).unwrap();
        assert_eq!(
            (m.route, m.id.as_deref()),
            (Route::RotateToken, Some(id.as_str()))
        );
        assert_eq!(
            resolve("DELETE", &format!("/sessions/{id}")).unwrap().route,
            Route::DeleteSession
        );
        for bad in [
            "/tokens/1",
            "/tokens/../../etc",
            "/sessions/x' OR 1=1",
            "/tokens/a/rotate",
        ] {
            assert!(
                matches!(resolve("GET", bad), Err(ApiError::NotFound)),
                "{bad}"
            );
        }
        assert!(matches!(
            resolve("PUT", &format!("/tokens/{id}")),
            Err(ApiError::MethodNotAllowed(_))
        ));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
        assert!(matches!(resolve("GET", "/nope"), Err(ApiError::NotFound)));
        assert!(matches!(
            resolve("POST", "/signup//"),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(resolve("GET", "/"), Err(ApiError::NotFound)));
        match resolve("POST", "/profile") {
            Err(ApiError::MethodNotAllowed(allow)) => {
                assert_eq!(allow, ["GET", "PUT", "PATCH", "DELETE"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_log_gets_the_path_alone_and_escaped() {
        assert_eq!(
            path_of("/account/verify-email?token=secret"),
            "/account/verify-email"
        );
        assert_eq!(path_of("/a#frag?x"), "/a");
        assert_eq!(path_of("-"), "-");
        assert_eq!(loggable("/a\nGET /forged"), "/a\\nGET /forged");
        assert_eq!(loggable(""), "-");
        assert_eq!(loggable(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn allow_lists_match_the_routes() {
        for e in TABLE {
            let methods: Vec<&str> = e.routes.iter().map(|(m, _)| *m).collect();
            assert_eq!(methods, e.allow, "{}", e.path);
        }
    }
}
