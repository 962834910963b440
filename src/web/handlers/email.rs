//! The email flows' JSON routes: verify an address, resend the link, forget
//! and reset a password, confirm an email change. The rules live in
//! `domain::email`; the link pages (`link_pages`) call the same functions.

use crate::app::App;
use crate::clock;
use crate::db::{self, users};
use crate::domain::throttle::Account;
use crate::domain::validate::{Email, Fields};
use crate::domain::{email, validate};
use crate::error::{ApiError, FieldErrors};
use crate::mail::compose::Details;
use crate::web::auth;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};

/// When, from which address and with which device a request came, for mails.
pub fn details(app: &App, request: &Request, now: i64) -> Details {
    auth::client(app, request).details(now)
}

/// Counts a request that mails someone (per address typed and per client,
/// existing account or not); 429 once either has used up its budget.
fn count_mail_request(
    app: &App,
    request: &Request,
    email_key: &str,
    now: i64,
) -> Result<(), ApiError> {
    let address = auth::client(app, request).address;
    app.mail_requests
        .attempt(Account::Email(email_key), address, now)
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?
        .failed();
    Ok(())
}

#[derive(Deserialize)]
pub struct TokenRequest {
    token: Option<String>,
}

impl TokenRequest {
    /// The link's token; whether it is any good, only spending it tells.
    pub fn validate(self) -> Result<String, FieldErrors> {
        let mut fields = Fields::default();
        let token = fields.required("token", self.token.as_deref(), nonempty);
        fields.finish(token)
    }
}

fn nonempty(value: &str) -> Result<String, &'static str> {
    match value {
        "" => Err("is required"),
        v => Ok(v.to_owned()),
    }
}

/// `POST /email/verify/` `{"token"}` → 204: the address is verified.
pub fn verify_email(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = http::json::<TokenRequest>(request)?.validate()?;
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
    count_mail_request(app, request, &validate::email_key(&user.email), now)?;
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

impl ForgotPasswordRequest {
    pub fn validate(self) -> Result<Email, FieldErrors> {
        let mut fields = Fields::default();
        let email = fields.required("email", self.email.as_deref(), validate::email);
        fields.finish(email)
    }
}

#[derive(Serialize)]
struct Empty {}

fn accepted() -> Response {
    http::json_response(202, &Empty {})
}

/// `POST /password/forgot/` `{"email"}` → 202 `{}`, always: the same answer,
/// the same throttle and the same work (one insert; the sender thread looks
/// the address up later) whether or not the address has an account.
pub fn forgot_password(app: &App, request: &Request) -> Result<Response, ApiError> {
    let checked = http::json::<ForgotPasswordRequest>(request)?.validate()?;
    let now = clock::now();
    count_mail_request(app, request, &checked.key, now)?;
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

impl ResetPasswordRequest {
    /// The token (checked when spent) and a new password by the sign-up rules.
    pub fn validate(self) -> Result<(String, String), FieldErrors> {
        let mut fields = Fields::default();
        let token = fields.required("token", self.token.as_deref(), nonempty);
        let password = fields.required("new_password", self.new_password.as_deref(), |p| {
            validate::new_password(p).map(|()| p.to_owned())
        });
        fields.finish(token.zip(password))
    }
}

/// `POST /password/reset/` `{"token", "new_password"}` → 204.
pub fn reset_password(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (token, password) = http::json::<ResetPasswordRequest>(request)?.validate()?;
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
    let token = http::json::<TokenRequest>(request)?.validate()?;
    let now = clock::now();
    let details = details(app, request, now);
    db::write(&mut *app.conn()?, |tx| {
        email::confirm_change(tx, &token, &details, now)
    })?;
    Ok(http::no_content())
}
