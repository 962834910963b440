//! Users and sessions: sign up, log in, refresh, log out, log out everywhere.

use crate::app::App;
use crate::clock;
use crate::db::{self, private_tokens, refresh_tokens, sessions, users};
use crate::domain::ids::{self, Secret};
use crate::domain::password::Overloaded;
use crate::domain::token_use::Kind;
use crate::domain::tokens::{self, TokenKind};
use crate::domain::validate;
use crate::error::{ApiError, FieldErrors};
use crate::ops::metrics::Issued;
use crate::web::auth;
use crate::web::handlers::{UserView, checked, mfa};
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct SignUpRequest {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Serialize)]
struct SignUpResponse {
    user: UserView,
}

impl From<Overloaded> for ApiError {
    fn from(_: Overloaded) -> ApiError {
        ApiError::Overloaded
    }
}

/// `POST /signup/`, `POST /api/auth/register`: a new account, no tokens.
pub fn sign_up(app: &App, request: &Request) -> Result<Response, ApiError> {
    let body: SignUpRequest = http::json(request)?;
    let mut fields = FieldErrors::new();
    let email = required(&mut fields, "email", body.email.as_deref(), validate::email);
    let password = required(&mut fields, "password", body.password.as_deref(), |p| {
        validate::new_password(p).map(|()| p.to_string())
    });
    let names = names(&mut fields, body.name, body.first_name, body.last_name);
    let (Some(email), Some(password), Some(names), true) =
        (email, password, names, fields.is_empty())
    else {
        return Err(ApiError::Validation(fields));
    };
    // 409 is the contract's answer anyway, so checking first reveals nothing
    // and saves an argon2 run; the UNIQUE index still decides under races.
    if users::find_by_email_key(&*app.conn()?, &email.key)?.is_some() {
        return Err(ApiError::EmailExists);
    }
    let hash = app.hasher.hash(&password)?;
    let id = ids::uuid();
    let now = clock::now();
    let new = users::NewUser {
        id: &id,
        email: &email.address,
        email_key: &email.key,
        password_hash: &hash,
        names: &names,
        now,
    };
    db::write(&mut *app.conn()?, |tx| users::insert(tx, &new))?
        .map_err(|_| ApiError::EmailExists)?;
    let user =
        users::find(&*app.conn()?, &id)?.ok_or_else(|| ApiError::internal("new user vanished"))?;
    Ok(http::json_response(
        201,
        &SignUpResponse { user: user.into() },
    ))
}

/// Runs `rule` on a present field, or records that it is required.
fn required<T>(
    fields: &mut FieldErrors,
    name: &'static str,
    value: Option<&str>,
    rule: impl FnOnce(&str) -> Result<T, &'static str>,
) -> Option<T> {
    let Some(value) = value else {
        fields.insert(name, "is required");
        return None;
    };
    rule(value)
        .map_err(|problem| fields.insert(name, problem))
        .ok()
}

/// The name fields of a sign-up: `name`, or `first_name` and `last_name`, or
/// all three; `name` defaults to "first last".
fn names(
    fields: &mut FieldErrors,
    name: Option<String>,
    first: Option<String>,
    last: Option<String>,
) -> Option<users::Names> {
    let mut check = |field, value, rule| checked(fields, field, value, rule);
    let (given_name, given_first, given_last) = (name.is_some(), first.is_some(), last.is_some());
    let first_name = check("first_name", first, validate::name_part);
    let last_name = check("last_name", last, validate::name_part);
    let name = check("name", name, validate::full_name);
    if !given_name {
        if !given_first {
            fields.insert("first_name", "is required when name is not given");
        }
        if !given_last {
            fields.insert("last_name", "is required when name is not given");
        }
    }
    let name = match (name, &first_name, &last_name) {
        (Some(name), _, _) => name,
        (None, Some(f), Some(l)) if !given_name => validate::full_name(&format!("{f} {l}"))
            .map_err(|p| fields.insert("name", p))
            .ok()?,
        _ => return None,
    };
    Some(users::Names {
        name,
        first_name,
        last_name,
    })
}

#[derive(Deserialize)]
pub struct LogInRequest {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
struct LogInResponse {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_expires_in: i64,
    session_id: String,
    user: UserView,
}

/// `POST /login/`, `POST /api/auth/login`: opens a session.
pub fn log_in(app: &App, request: &Request) -> Result<Response, ApiError> {
    let body: LogInRequest = http::json(request)?;
    let mut fields = FieldErrors::new();
    let email = required(&mut fields, "email", body.email.as_deref(), |e| {
        Ok(e.to_string())
    });
    let password = required(&mut fields, "password", body.password.as_deref(), |p| {
        Ok(p.to_string())
    });
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(fields));
    };
    // An address that isn't valid can't belong to anyone, but it still costs a
    // (dummy) verification, so timing never tells which emails exist.
    let (key, user) = match validate::email(&email) {
        Ok(email) => {
            let user = users::find_by_email_key(&*app.conn()?, &email.key)?;
            (email.key, user)
        }
        Err(_) => (email.trim().to_lowercase(), None),
    };
    let stored = user.as_ref().map(|u| u.password_hash.as_str());
    let verdict = auth::check_password(app, request, &key, &password, stored)?;
    app.metrics.login(verdict.ok);
    let Some(user) = user.filter(|_| verdict.ok) else {
        return Err(ApiError::InvalidCredentials);
    };
    // New parameters take effect at the next successful login (OWASP); a busy
    // hasher just postpones that.
    let rehash = if verdict.needs_rehash {
        app.hasher.hash(&password).ok()
    } else {
        None
    };
    if let Some(hash) = &rehash {
        db::write(&mut *app.conn()?, |tx| {
            users::update_password_hash(tx, &user.id, hash)
        })?;
    }
    // The factor's second step: no session until it is done.
    mfa::require_second_step(app, request, &user)?;
    open_session(app, request, user)
}

/// Opens a session for `user`, who has just proved who they are: the login answer.
pub fn open_session(app: &App, request: &Request, user: users::User) -> Result<Response, ApiError> {
    let now = clock::now();
    let session_id = ids::uuid();
    let refresh = Secret::generate();
    let refresh_ttl = app.config.refresh_ttl;
    let user_agent = http::user_agent(request);
    db::write(&mut *app.conn()?, |tx| {
        let session = sessions::NewSession {
            id: &session_id,
            user_id: &user.id,
            user_agent: user_agent.as_deref(),
            now,
            expires_at: now + refresh_ttl,
        };
        sessions::insert(tx, &session)?;
        refresh_tokens::insert(tx, &refresh.hash(), &session_id, now, now + refresh_ttl)?;
        Ok::<_, ApiError>(())
    })?;
    let access_token = auth::access_token(app, &user.id, &session_id);
    app.metrics.issued(Issued::Refresh);
    Ok(http::token_response(
        200,
        &LogInResponse {
            access_token,
            refresh_token: refresh.expose().to_string(),
            token_type: "Bearer",
            expires_in: app.config.access_ttl,
            refresh_expires_in: app.config.refresh_ttl,
            session_id,
            user: user.into(),
        },
    ))
}

/// A refresh token in a body: `refresh_token`, or `refresh` as some clients send.
#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
    refresh: Option<String>,
}

impl RefreshRequest {
    fn token(self) -> Result<Secret, ApiError> {
        self.refresh_token
            .or(self.refresh)
            .map(Secret::from_presented)
            .ok_or_else(|| ApiError::field("refresh_token", "is required"))
    }
}

#[derive(Serialize)]
struct RefreshResponse {
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    token_type: &'static str,
    expires_in: i64,
}

/// `POST /refresh/`, `POST /api/auth/refresh`: a new access token for the
/// session. By default the refresh token stays valid and this path only
/// reads the database; with `--rotate-refresh-tokens` it is replaced (see
/// `db::refresh_tokens` for the retry and reuse rules).
pub fn refresh(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = http::json::<RefreshRequest>(request)?.token()?;
    let policy = refresh_tokens::Policy {
        rotate: app.config.rotate_refresh_tokens,
        reuse_interval: app.config.refresh_reuse_interval,
        refresh_ttl: app.config.refresh_ttl,
    };
    let now = clock::now();
    let secret = &app.rotation_secret;
    let outcome = if policy.rotate {
        db::write(&mut *app.conn()?, |tx| {
            refresh_tokens::refresh(tx, &token, secret, policy, now)
        })?
    } else {
        refresh_tokens::refresh(&*app.conn()?, &token, secret, policy, now)?
    };
    let (session_id, user_id, successor) = match outcome {
        refresh_tokens::Refreshed::Kept {
            session_id,
            user_id,
        } => (session_id, user_id, None),
        refresh_tokens::Refreshed::Rotated {
            session_id,
            user_id,
            successor,
        } => {
            app.metrics.issued(Issued::Refresh);
            (session_id, user_id, Some(successor))
        }
        refresh_tokens::Refreshed::Refused => return Err(ApiError::InvalidRefreshToken),
        refresh_tokens::Refreshed::ReuseDetected => {
            log::warn!("a replaced refresh token was reused: its session was ended");
            app.metrics.refresh_reuse();
            return Err(ApiError::InvalidRefreshToken);
        }
    };
    app.activity.record(Kind::Session, &session_id, now);
    Ok(http::token_response(
        200,
        &RefreshResponse {
            access_token: auth::access_token(app, &user_id, &session_id),
            refresh_token: successor.map(|s| s.expose().to_string()),
            token_type: "Bearer",
            expires_in: app.config.access_ttl,
        },
    ))
}

/// `POST /logout/`, `POST /api/auth/logout`: ends the token's session. An
/// unknown token gets the same 204, so the answer reveals nothing.
pub fn log_out(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = http::json::<RefreshRequest>(request)?.token()?;
    db::write(&mut *app.conn()?, |tx| {
        sessions::delete_by_refresh_token(tx, &token.hash())
    })?;
    Ok(http::no_content())
}

/// `POST /logout/all/`: ends every session of the caller.
pub fn log_out_all(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    db::write(&mut *app.conn()?, |tx| {
        sessions::delete_all_of_user(tx, &caller.user_id)
    })?;
    Ok(http::no_content())
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    created_at: String,
    last_used_at: String,
    user_agent: Option<String>,
    current: bool,
}

#[derive(Serialize)]
struct SessionsResponse {
    sessions: Vec<SessionView>,
}

/// `GET /sessions/`: the caller's sessions, newest first.
pub fn list_sessions(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, current) = auth::session_caller(app, request)?;
    let rows = sessions::list_of_user(&*app.conn()?, &caller.user_id, clock::now())?;
    let sessions = rows
        .into_iter()
        .map(|s| {
            let pending = app.activity.pending(Kind::Session, &s.id).unwrap_or(0);
            SessionView {
                current: s.id == current,
                last_used_at: clock::rfc3339(s.last_used_at.max(pending)),
                created_at: clock::rfc3339(s.created_at),
                user_agent: s.user_agent,
                id: s.id,
            }
        })
        .collect();
    Ok(http::json_response(200, &SessionsResponse { sessions }))
}

/// `DELETE /sessions/{id}`: ends one of the caller's sessions.
pub fn delete_session(app: &App, request: &Request, id: &str) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    if !db::write(&mut *app.conn()?, |tx| {
        sessions::delete_of_user(tx, id, &caller.user_id)
    })? {
        return Err(ApiError::NotFound);
    }
    Ok(http::no_content())
}

#[derive(Deserialize)]
pub struct RevokeRequest {
    token: Option<String>,
}

#[derive(Serialize)]
struct Empty {}

/// The body of a revocation: JSON as the contract has it, or the
/// form-encoded `token=…` that RFC 7009 §2.1 clients send.
fn revoke_body(request: &Request) -> Result<RevokeRequest, ApiError> {
    let form = request.header("Content-Type").is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form {
        return http::json(request);
    }
    let body = http::body(request, http::JSON_LIMIT)?;
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    Ok(RevokeRequest { token })
}

/// `POST /revoke` (RFC 7009): anyone holding a refresh or private token may
/// revoke it; the answer is the same whether or not it was valid.
pub fn revoke(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = revoke_body(request)?
        .token
        .ok_or_else(|| ApiError::field("token", "is required"))?;
    let verified = tokens::verify(&app.keys(), &app.expect, &token, clock::now());
    db::write(&mut *app.conn()?, |tx| match verified {
        Ok((TokenKind::Private, claims)) => private_tokens::delete(tx, &claims.jti),
        // An access token is not revocable by itself (it expires soon);
        // anything else may be a refresh token, which ends its session.
        Ok((TokenKind::Access, _)) => Ok(false),
        Err(_) => sessions::delete_by_refresh_token(tx, &Secret::from_presented(token).hash()),
    })?;
    Ok(http::token_response(200, &Empty {}))
}
