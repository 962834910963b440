//! The second factor: enrol a TOTP authenticator and confirm it, regenerate
//! recovery codes, turn the factor off — all with a login access token and
//! the password (a private token gets 403) — and the login's second step.

use crate::app::App;
use crate::clock;
use crate::db::{self, totp_factors, users};
use crate::domain::accounts::{self, Client};
use crate::domain::audit::{Entry, Event};
use crate::domain::email;
use crate::domain::ids::Secret;
use crate::domain::mfa::{self, Proof, RecoveryCode, TotpSecret};
use crate::error::{ApiError, FieldErrors};
use crate::web::auth;
use crate::web::handlers::session;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};

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

/// The caller (a login access token): their account, the client and the session.
fn account(app: &App, request: &Request) -> Result<(users::User, Client, String), ApiError> {
    let (caller, session) = auth::session_caller(app, request)?;
    let user = accounts::user(app, &caller.user_id)?;
    Ok((user, auth::client(app, request), session))
}

/// Records `event` of the caller's in the transaction `tx`.
fn record(
    app: &App,
    tx: &db::Connection,
    event: Event,
    (user, client, session): (&users::User, &Client, &str),
) -> Result<(), ApiError> {
    let entry = Entry::new(event, clock::now(), client)
        .user(&user.id)
        .session(session);
    Ok(app.record(tx, &entry)?)
}

/// The password of an authenticated request, checked and throttled like a
/// login; wrong or missing is 400 naming `password`.
fn confirm_password(
    app: &App,
    client: &Client,
    user: &users::User,
    password: Option<&str>,
) -> Result<(), ApiError> {
    let password = password.ok_or_else(|| ApiError::field("password", "is required"))?;
    accounts::confirm_password(app, client, user, password, "password")
}

/// Runs `f` with the proof spent in the same transaction; a wrong proof
/// counts as a failed login and is 400 naming its field.
fn with_proof<T>(
    app: &App,
    client: &Client,
    user: &users::User,
    proof: &Proof,
    f: impl FnOnce(&db::Connection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    mfa::with_proof(app, client, user, proof, f)?.ok_or_else(|| {
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
    let (user, client, _) = account(app, request)?;
    let body: MfaRequest = http::json(request)?;
    confirm_password(app, &client, &user, body.password.as_deref())?;
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
        with_proof(app, &client, &user, &proof, store)?;
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
    let (user, client, session) = account(app, request)?;
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
        record(app, tx, Event::SecondFactorOn, (&user, &client, &session))?;
        email::notice_second_factor(tx, &user, true, &client.details(now), now)?;
        Ok(mfa::new_recovery_codes(tx, &user.id, now)?)
    })?;
    Ok(recovery_codes_response(codes))
}

/// `POST /mfa/recovery-codes/`: a new set of recovery codes; the old ones
/// stop working.
pub fn regenerate_recovery_codes(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (user, client, session) = account(app, request)?;
    let body: MfaRequest = http::json(request)?;
    let proof = body
        .proof()
        .ok_or_else(|| ApiError::field("code", "is required"));
    confirm_password(app, &client, &user, body.password.as_deref())?;
    let now = clock::now();
    let codes = with_proof(app, &client, &user, &proof?, |tx| {
        record(
            app,
            tx,
            Event::RecoveryCodesRegenerated,
            (&user, &client, &session),
        )?;
        Ok(mfa::new_recovery_codes(tx, &user.id, now)?)
    })?;
    Ok(recovery_codes_response(codes))
}

/// `DELETE /mfa/totp/`: the factor is off; its recovery codes and any login
/// waiting for a second step are gone.
pub fn delete_totp(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (user, client, session) = account(app, request)?;
    let body: MfaRequest = http::json(request)?;
    let proof = body
        .proof()
        .ok_or_else(|| ApiError::field("code", "is required"));
    confirm_password(app, &client, &user, body.password.as_deref())?;
    with_proof(app, &client, &user, &proof?, |tx| {
        mfa::turn_off(tx, &user.id)?;
        let now = clock::now();
        email::notice_second_factor(tx, &user, false, &client.details(now), now)?;
        record(app, tx, Event::SecondFactorOff, (&user, &client, &session))
    })?;
    Ok(http::no_content())
}

#[derive(Deserialize)]
pub struct LogInMfaRequest {
    mfa_token: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

impl LogInMfaRequest {
    fn validate(self) -> Result<(Secret, Proof), FieldErrors> {
        let mut fields = FieldErrors::new();
        if self.mfa_token.is_none() {
            fields.insert("mfa_token", "is required");
        }
        let proof = MfaRequest {
            password: None,
            code: self.code,
            recovery_code: self.recovery_code,
        }
        .proof();
        if proof.is_none() {
            fields.insert("code", "is required (or recovery_code)");
        }
        match (self.mfa_token, proof) {
            (Some(token), Some(proof)) => Ok((Secret::from_presented(token), proof)),
            _ => Err(fields),
        }
    }
}

/// `POST /login/mfa/`: the second step of a login — the `mfa_token` of the
/// `mfa_required` answer with a TOTP `code` or a `recovery_code` → the login
/// answer, `amr: ["pwd", "otp"]` (see `mfa::complete_login`).
pub fn log_in_mfa(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (token, proof) = http::json::<LogInMfaRequest>(request)?
        .validate()
        .map_err(ApiError::Validation)?;
    let session = mfa::complete_login(app, &auth::client(app, request), &token, &proof)?;
    Ok(session::logged_in(app, session))
}
