//! The email flows' JSON routes: verify an address, resend the link, forget
//! and reset a password, confirm an email change. The rules live in
//! `domain::email`; the link pages (`link_pages`) call the same functions.

use crate::app::App;
use crate::clock;
use crate::db::{self, users};
use crate::domain::{email, throttle, validate};
use crate::error::ApiError;
use crate::mail::compose::Details;
use crate::web::auth;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};

/// When, from which address and with which device a request came, for mails.
pub fn details(app: &App, request: &Request, now: i64) -> Details {
    let address = throttle::client_address(
        Some(request.remote_addr().ip()),
        request.header("X-Forwarded-For"),
        &app.config.trusted_proxies,
    );
    Details::new(now, address, http::user_agent(request).as_deref())
}

#[derive(Deserialize)]
pub struct TokenRequest {
    token: Option<String>,
}

fn token(body: TokenRequest) -> Result<String, ApiError> {
    body.token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::field("token", "is required"))
}

/// `POST /email/verify/` `{"token"}` → 204: the address is verified.
pub fn verify_email(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = token(http::json(request)?)?;
    db::write(&mut *app.conn()?, |tx| {
        email::verify(tx, &token, clock::now())
    })?;
    Ok(http::no_content())
}

/// `POST /email/verify/resend/` (a login access token) → 202: a new link to
/// the account's address (nothing is sent when it is verified already).
pub fn resend_verification(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    let now = clock::now();
    let user = users::find(&*app.conn()?, &caller.user_id)?.ok_or(ApiError::TokenNotValid)?;
    let key = email_key(&user.email);
    let address = client(app, request);
    if let Some(retry_after) = app.mail_requests.check(&key, address, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    app.mail_requests.failed(&key, address, now);
    if !user.email_verified {
        let details = details(app, request, now);
        db::write(&mut *app.conn()?, |tx| {
            email::send_verification(tx, &app.links(), &user, &details, now)
        })?;
    }
    Ok(accepted())
}

#[derive(Deserialize)]
pub struct ForgotPasswordRequest {
    email: Option<String>,
}

#[derive(Serialize)]
struct Empty {}

fn accepted() -> Response {
    http::json_response(202, &Empty {})
}

fn client(app: &App, request: &Request) -> Option<std::net::IpAddr> {
    throttle::client_address(
        Some(request.remote_addr().ip()),
        request.header("X-Forwarded-For"),
        &app.config.trusted_proxies,
    )
}

fn email_key(address: &str) -> String {
    validate::email(address).map_or_else(|_| address.trim().to_lowercase(), |e| e.key)
}

/// `POST /password/forgot/` `{"email"}` → 202 `{}`, always: the same answer,
/// the same throttle and the same work (one insert; the sender thread looks
/// the address up later) whether or not the address has an account.
pub fn forgot_password(app: &App, request: &Request) -> Result<Response, ApiError> {
    let body: ForgotPasswordRequest = http::json(request)?;
    let address = body
        .email
        .ok_or_else(|| ApiError::field("email", "is required"))?;
    let checked = validate::email(&address).map_err(|problem| ApiError::field("email", problem))?;
    let now = clock::now();
    let client = client(app, request);
    if let Some(retry_after) = app.mail_requests.check(&checked.key, client, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    app.mail_requests.failed(&checked.key, client, now);
    let details = details(app, request, now);
    db::write(&mut *app.conn()?, |tx| {
        email::forgot(tx, &checked.key, &details, now)
    })?;
    Ok(accepted())
}

#[derive(Deserialize)]
pub struct ResetPasswordRequest {
    token: Option<String>,
    new_password: Option<String>,
}

/// `POST /password/reset/` `{"token", "new_password"}` → 204.
pub fn reset_password(app: &App, request: &Request) -> Result<Response, ApiError> {
    let body: ResetPasswordRequest = http::json(request)?;
    let mut fields = crate::error::FieldErrors::new();
    if body.token.as_deref().is_none_or(str::is_empty) {
        fields.insert("token", "is required");
    }
    match body.new_password.as_deref().map(validate::new_password) {
        None => drop(fields.insert("new_password", "is required")),
        Some(Err(problem)) => drop(fields.insert("new_password", problem)),
        Some(Ok(())) => {}
    }
    let (Some(token), Some(password), true) = (body.token, body.new_password, fields.is_empty())
    else {
        return Err(ApiError::Validation(fields));
    };
    reset_with(app, request, &token, &password)?;
    Ok(http::no_content())
}

/// Hashes first (never inside the transaction), then spends the link.
pub fn reset_with(
    app: &App,
    request: &Request,
    token: &str,
    password: &str,
) -> Result<(), ApiError> {
    let hash = app.hasher.hash(password)?;
    let now = clock::now();
    let details = details(app, request, now);
    db::write(&mut *app.conn()?, |tx| {
        email::reset_password(tx, token, &hash, &details, now)
    })?;
    Ok(())
}

/// `POST /email/confirm/` `{"token"}` → 204: the pending address becomes
/// the account's.
pub fn confirm_email(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = token(http::json(request)?)?;
    let now = clock::now();
    let details = details(app, request, now);
    db::write(&mut *app.conn()?, |tx| {
        email::confirm_change(tx, &token, &details, now)
    })?;
    Ok(http::no_content())
}
