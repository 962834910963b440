//! The second factor: enrol a TOTP authenticator and confirm it, regenerate
//! recovery codes, turn the factor off — all with a login access token and
//! the password (a private token gets 403) — and the login's second step.

use crate::app::App;
use crate::clock;
use crate::db::{self, mfa_tokens, totp_factors, users};
use crate::domain::ids::Secret;
use crate::domain::mfa::{self, Method, Proof, RecoveryCode, TotpSecret};
use crate::domain::{throttle, validate};
use crate::error::{ApiError, FieldErrors};
use crate::web::auth;
use crate::web::handlers::session;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `{"password", "code"?, "recovery_code"?}`: the bodies of the routes
/// behind the password.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MfaRequest {
    password: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

impl MfaRequest {
    fn proof(&self) -> Option<Proof> {
        match (&self.code, &self.recovery_code) {
            (Some(code), _) => Some(Proof::Code(code.clone())),
            (None, Some(code)) => Some(Proof::RecoveryCode(RecoveryCode::from_presented(code))),
            (None, None) => None,
        }
    }
}

#[derive(Serialize)]
struct EnrolResponse {
    secret: String,
    otpauth_uri: String,
}

/// The caller (a login access token) and their account.
fn account(app: &App, request: &Request) -> Result<users::User, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    users::find(&*app.conn()?, &caller.user_id)?.ok_or(ApiError::TokenNotValid)
}

/// The login throttle's key for this account.
fn throttle_key(user: &users::User) -> String {
    validate::email(&user.email).map_or_else(|_| user.email.to_lowercase(), |e| e.key)
}

/// The client address the throttle counts (after `--trusted-proxy`).
fn client_address(app: &App, request: &Request) -> Option<IpAddr> {
    throttle::client_address(
        Some(request.remote_addr().ip()),
        request.header("X-Forwarded-For"),
        &app.config.trusted_proxies,
    )
}

/// The password of an authenticated request, checked and throttled like a
/// login; wrong or missing is 400 naming `password`.
fn confirm_password(
    app: &App,
    request: &Request,
    user: &users::User,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let password = password.ok_or_else(|| ApiError::field("password", "is required"))?;
    let key = throttle_key(user);
    match auth::check_password(app, request, &key, password, Some(&user.password_hash))?.ok {
        true => Ok(()),
        false => Err(ApiError::field("password", "is incorrect")),
    }
}

/// Runs `f` with the proof spent in the same transaction; a wrong proof
/// counts as a failed login (so a stolen session plus the password still
/// cannot guess codes quickly) and is 400 naming `code`.
fn with_proof<T>(
    app: &App,
    request: &Request,
    user: &users::User,
    proof: &Proof,
    f: impl FnOnce(&db::Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let now = clock::now();
    let key = throttle_key(user);
    let address = client_address(app, request);
    if let Some(retry_after) = app.throttle.check(&key, address, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let outcome = db::write(&mut *app.conn()?, |tx| {
        match mfa::spend(tx, &user.id, proof, now)? {
            Some(_) => f(tx).map(Some),
            None => Ok(None),
        }
    })?;
    outcome.ok_or_else(|| {
        app.throttle.failed(&key, address, now);
        let field = match proof {
            Proof::Code(_) => "code",
            Proof::RecoveryCode(_) => "recovery_code",
        };
        ApiError::field(field, "is incorrect")
    })
}

/// `POST /mfa/totp/`: a new TOTP secret, not yet in force, for the caller's
/// authenticator. While a factor is on, replacing it also takes a current
/// `code` (or `recovery_code`), as turning it off does.
pub fn enrol_totp(app: &App, request: &Request) -> Result<Response, ApiError> {
    let user = account(app, request)?;
    let body: MfaRequest = http::json(request)?;
    confirm_password(app, request, &user, body.password.as_deref())?;
    let secret = TotpSecret::generate();
    let uri = secret
        .otpauth_uri(&app.config.issuer, &user.email)
        .ok_or_else(|| ApiError::internal("the otpauth URI could not be built"))?;
    let now = clock::now();
    let store = |tx: &db::Connection| {
        totp_factors::set_pending(tx, &user.id, secret.bytes(), now)?;
        Ok::<_, ApiError>(())
    };
    if totp_factors::is_on(&*app.conn()?, &user.id)? {
        let proof = body
            .proof()
            .ok_or_else(|| ApiError::field("code", "is required while the second factor is on"))?;
        with_proof(app, request, &user, &proof, store)?;
    } else {
        db::write(&mut *app.conn()?, |tx| store(tx))?;
    }
    Ok(http::token_response(
        200,
        &EnrolResponse {
            secret: secret.base32(),
            otpauth_uri: uri,
        },
    ))
}

#[derive(Deserialize)]
pub struct ConfirmRequest {
    code: Option<String>,
}

#[derive(Serialize)]
struct RecoveryCodesResponse {
    recovery_codes: Vec<String>,
}

fn recovery_codes_response(codes: Vec<RecoveryCode>) -> Response {
    let recovery_codes = codes.iter().map(|c| c.expose().to_string()).collect();
    http::token_response(200, &RecoveryCodesResponse { recovery_codes })
}

/// `POST /mfa/totp/confirm/`: the first code from the authenticator turns
/// the enrolled secret on; the answer holds the recovery codes, shown only here.
pub fn confirm_totp(app: &App, request: &Request) -> Result<Response, ApiError> {
    let user = account(app, request)?;
    let code = http::json::<ConfirmRequest>(request)?
        .code
        .ok_or_else(|| ApiError::field("code", "is required"))?;
    let pending = totp_factors::find(&*app.conn()?, &user.id)?
        .and_then(|f| f.pending)
        .ok_or_else(|| ApiError::field("code", "there is no enrolment to confirm"))?;
    let now = clock::now();
    let step = TotpSecret::from_stored(pending.clone())
        .matching_step(&code, now)
        .ok_or_else(|| ApiError::field("code", "is incorrect"))?;
    let codes = db::write(&mut *app.conn()?, |tx| {
        // The secret checked must still be the pending one (no enrolment
        // restarted meanwhile).
        let still = totp_factors::find(tx, &user.id)?.and_then(|f| f.pending);
        if still.as_deref() != Some(&pending[..])
            || !totp_factors::confirm(tx, &user.id, step, now)?
        {
            return Err(ApiError::field("code", "there is no enrolment to confirm"));
        }
        Ok(mfa::new_recovery_codes(tx, &user.id, now)?)
    })?;
    log::info!("user {} turned a second factor on", user.id);
    Ok(recovery_codes_response(codes))
}

/// `POST /mfa/recovery-codes/`: a new set of recovery codes; the old ones
/// stop working.
pub fn regenerate_recovery_codes(app: &App, request: &Request) -> Result<Response, ApiError> {
    let user = account(app, request)?;
    let body: MfaRequest = http::json(request)?;
    let proof = body
        .proof()
        .ok_or_else(|| ApiError::field("code", "is required"));
    confirm_password(app, request, &user, body.password.as_deref())?;
    let now = clock::now();
    let codes = with_proof(app, request, &user, &proof?, |tx| {
        Ok(mfa::new_recovery_codes(tx, &user.id, now)?)
    })?;
    Ok(recovery_codes_response(codes))
}

/// `DELETE /mfa/totp/`: the factor is off; its recovery codes and any login
/// waiting for a second step are gone.
pub fn delete_totp(app: &App, request: &Request) -> Result<Response, ApiError> {
    let user = account(app, request)?;
    let body: MfaRequest = http::json(request)?;
    let proof = body
        .proof()
        .ok_or_else(|| ApiError::field("code", "is required"));
    confirm_password(app, request, &user, body.password.as_deref())?;
    with_proof(app, request, &user, &proof?, |tx| {
        mfa::turn_off(tx, &user.id)?;
        Ok(())
    })?;
    log::info!("user {} turned their second factor off", user.id);
    Ok(http::no_content())
}

/// How long the second step of a login may take.
const MFA_TOKEN_TTL: i64 = 300;

/// After the right password: if the account has a second factor, a new
/// `mfa_token` bound to the user and the client address, as the 401
/// `mfa_required` answer.
pub fn require_second_step(
    app: &App,
    request: &Request,
    user: &users::User,
) -> Result<(), ApiError> {
    if !totp_factors::is_on(&*app.conn()?, &user.id)? {
        return Ok(());
    }
    let token = Secret::generate();
    let address = client_address(app, request).map(|a| a.to_string());
    let now = clock::now();
    let new = mfa_tokens::NewMfaToken {
        hash: &token.hash(),
        user_id: &user.id,
        address: address.as_deref(),
        device_token_hash: None,
        now,
        expires_at: now + MFA_TOKEN_TTL,
    };
    db::write(&mut *app.conn()?, |tx| mfa_tokens::insert(tx, &new))?;
    Err(ApiError::MfaRequired(token))
}

#[derive(Deserialize)]
pub struct LogInMfaRequest {
    mfa_token: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

/// `POST /login/mfa/`: the second step of a login — the `mfa_token` of the
/// `mfa_required` answer with a TOTP `code` or a `recovery_code` → the login
/// answer, `amr: ["pwd", "otp"]`. A wrong proof counts as a failed login and
/// against the token, which five of them spend.
pub fn log_in_mfa(app: &App, request: &Request) -> Result<Response, ApiError> {
    let body: LogInMfaRequest = http::json(request)?;
    let mut fields = FieldErrors::new();
    if body.mfa_token.is_none() {
        fields.insert("mfa_token", "is required");
    }
    let proof = MfaRequest {
        password: None,
        code: body.code,
        recovery_code: body.recovery_code,
    }
    .proof();
    if proof.is_none() {
        fields.insert("code", "is required (or recovery_code)");
    }
    let (Some(token), Some(proof)) = (body.mfa_token, proof) else {
        return Err(ApiError::Validation(fields));
    };
    let hash = Secret::from_presented(token).hash();
    let now = clock::now();
    let address = client_address(app, request);
    let bound = address.map(|a| a.to_string());
    let pending = mfa_tokens::find(&*app.conn()?, &hash, now)?.filter(|t| t.address == bound);
    let user = match pending {
        Some(p) => users::find(&*app.conn()?, &p.user_id)?,
        None => None,
    };
    let Some(user) = user else {
        app.metrics.login(false);
        return Err(ApiError::InvalidCredentials);
    };
    let key = throttle_key(&user);
    if let Some(retry_after) = app.throttle.check(&key, address, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let method = db::write(&mut *app.conn()?, |tx| {
        // Inside the write lock: the token is still unspent.
        if mfa_tokens::find(tx, &hash, now)?.is_none() {
            return Ok::<_, ApiError>(None);
        }
        let method = mfa::spend(tx, &user.id, &proof, now)?;
        match method {
            Some(_) => mfa_tokens::delete(tx, &hash)?,
            None => {
                mfa_tokens::fail(tx, &hash)?;
                false
            }
        };
        Ok(method)
    })?;
    app.metrics.login(method.is_some());
    let Some(method) = method else {
        app.throttle.failed(&key, address, now);
        return Err(ApiError::InvalidCredentials);
    };
    app.throttle.succeeded(&key);
    if method == Method::RecoveryCode {
        log::info!("user {} logged in with a recovery code", user.id);
    }
    session::open_session(app, request, user)
}
