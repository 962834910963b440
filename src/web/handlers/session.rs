//! Users and sessions: sign up, log in, refresh, log out, log out everywhere.

use crate::app::App;
use crate::clock;
use crate::db::{self, private_tokens, sessions, users};
use crate::domain::accounts::{self, Credentials, NewAccount};
use crate::domain::audit::{Entry, Event};
use crate::domain::ids::Secret;
use crate::domain::token_use::Kind;
use crate::domain::tokens::{self, TokenKind};
use crate::domain::validate::{self, Fields};
use crate::error::{ApiError, FieldErrors};
use crate::web::auth;
use crate::web::handlers::UserView;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize)]
pub struct SignUpRequest {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

impl SignUpRequest {
    /// Every rule of a sign-up, every failing field named at once.
    pub fn validate(self) -> Result<NewAccount, FieldErrors> {
        let mut fields = Fields::default();
        let email = fields.required("email", self.email.as_deref(), validate::email);
        let password = fields.required("password", self.password.as_deref(), |p| {
            validate::new_password(p).map(|()| p.to_owned())
        });
        let names = names(&mut fields, self.name, self.first_name, self.last_name);
        let account = match (email, password, names) {
            (Some(email), Some(password), Some(names)) => Some(NewAccount {
                email,
                password,
                names,
            }),
            _ => None,
        };
        fields.finish(account)
    }
}

/// The name fields of a sign-up: `name`, or `first_name` and `last_name`, or
/// all three; `name` defaults to "first last".
fn names(
    fields: &mut Fields,
    name: Option<String>,
    first: Option<String>,
    last: Option<String>,
) -> Option<users::Names> {
    let first_name = fields.optional("first_name", first.as_deref(), validate::name_part);
    let last_name = fields.optional("last_name", last.as_deref(), validate::name_part);
    let name = match (name, &first_name, &last_name) {
        (Some(name), _, _) => fields.optional("name", Some(&name), validate::full_name),
        (None, Some(f), Some(l)) => fields.check("name", validate::full_name_of(f, l)),
        (None, _, _) => {
            for (field, value) in [("first_name", &first), ("last_name", &last)] {
                if value.is_none() {
                    fields.problem(field, "is required when name is not given");
                }
            }
            None
        }
    };
    Some(users::Names {
        name: name?,
        first_name,
        last_name,
    })
}

#[derive(Serialize)]
struct SignUpResponse {
    user: UserView,
}

/// `POST /signup/`, `POST /api/auth/register`: a new account, no tokens.
pub fn sign_up(app: &App, request: &Request) -> Result<Response, ApiError> {
    let new = http::json::<SignUpRequest>(request)?.validate()?;
    let user = accounts::sign_up(app, &auth::client(app, request), new)?;
    Ok(http::json_response(
        201,
        &SignUpResponse { user: user.into() },
    ))
}

#[derive(Deserialize)]
pub struct LogInRequest {
    email: Option<String>,
    password: Option<String>,
    device_token: Option<String>,
}

impl LogInRequest {
    /// Only presence: a malformed email simply matches no account.
    pub fn validate(self) -> Result<Credentials, FieldErrors> {
        let mut fields = Fields::default();
        let email = fields.required("email", self.email.as_deref(), validate::present);
        let password = fields.required("password", self.password.as_deref(), validate::present);
        let credentials = match (email, password) {
            (Some(email), Some(password)) => Some(Credentials {
                email,
                password,
                device_token: self.device_token.map(Secret::from_presented),
            }),
            _ => None,
        };
        fields.finish(credentials)
    }
}

#[derive(Serialize)]
struct LogInResponse {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_expires_in: i64,
    session_id: String,
    device_token: String,
    user: UserView,
}

/// `POST /login/`, `POST /api/auth/login`: opens a session.
pub fn log_in(app: &App, request: &Request) -> Result<Response, ApiError> {
    let credentials = http::json::<LogInRequest>(request)?.validate()?;
    let session = accounts::log_in(app, &auth::client(app, request), credentials)?;
    Ok(logged_in(app, session))
}

/// The login answer for a new session (also of `POST /login/mfa/`).
pub fn logged_in(app: &App, session: accounts::LoggedIn) -> Response {
    let access_token = auth::access_token(app, &session.user.id, &session.session_id, &session.amr);
    http::token_response(
        200,
        &LogInResponse {
            access_token,
            refresh_token: session.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: app.config.access_ttl,
            refresh_expires_in: app.config.refresh_ttl,
            session_id: session.session_id,
            device_token: session.device_token.expose().to_owned(),
            user: session.user.into(),
        },
    )
}

/// A refresh token in a body: `refresh_token`, or `refresh` as some clients send.
#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
    refresh: Option<String>,
}

impl RefreshRequest {
    pub fn validate(self) -> Result<Secret, FieldErrors> {
        let mut fields = Fields::default();
        let token = self.refresh_token.or(self.refresh);
        let token = fields.required("refresh_token", token.as_deref(), validate::present);
        fields.finish(token.map(Secret::from_presented))
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
/// session (and with `--rotate-refresh-tokens`, a new refresh token).
pub fn refresh(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = http::json::<RefreshRequest>(request)?.validate()?;
    let renewed = accounts::refresh(app, &auth::client(app, request), &token)?;
    app.token_use
        .record(Kind::Session, &renewed.session_id, clock::now());
    let access_token = auth::access_token(app, &renewed.user_id, &renewed.session_id, &renewed.amr);
    Ok(http::token_response(
        200,
        &RefreshResponse {
            access_token,
            refresh_token: renewed.successor.map(|s| s.expose().to_owned()),
            token_type: "Bearer",
            expires_in: app.config.access_ttl,
        },
    ))
}

/// `POST /logout/`, `POST /api/auth/logout`: ends the token's session. An
/// unknown token gets the same 204, so the answer reveals nothing.
pub fn log_out(app: &App, request: &Request) -> Result<Response, ApiError> {
    let token = http::json::<RefreshRequest>(request)?.validate()?;
    let client = auth::client(app, request);
    db::write(&mut *app.conn()?, |tx| {
        if let Some(ended) = sessions::delete_by_refresh_token(tx, &token.hash())? {
            let entry = Entry::new(Event::LogOut, clock::now(), &client)
                .user(&ended.user_id)
                .session(&ended.session_id);
            app.record(tx, &entry)?;
        }
        Ok::<_, db::Error>(())
    })?;
    Ok(http::no_content())
}

/// `POST /logout/all/`: ends every session of the caller.
pub fn log_out_all(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, current) = auth::session_caller(app, request)?;
    let client = auth::client(app, request);
    db::write(&mut *app.conn()?, |tx| {
        let ended = sessions::delete_all_of_user(tx, &caller.user_id)?;
        let entry = Entry::new(Event::SessionEnded, clock::now(), &client)
            .user(&caller.user_id)
            .session(&current)
            .detail(json!({"reason": "logout_all", "sessions": ended}));
        app.record(tx, &entry)
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
            let pending = app.token_use.pending(Kind::Session, &s.id).unwrap_or(0);
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
    let (caller, current) = auth::session_caller(app, request)?;
    let client = auth::client(app, request);
    if !db::write(&mut *app.conn()?, |tx| {
        let ended = sessions::delete_of_user(tx, id, &caller.user_id)?;
        if ended {
            let entry = Entry::new(Event::SessionEnded, clock::now(), &client)
                .user(&caller.user_id)
                .session(id)
                .detail(json!({"reason": "deleted", "by_session": current}));
            app.record(tx, &entry)?;
        }
        Ok::<_, db::Error>(ended)
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
    let form = request
        .header("Content-Type")
        .is_some_and(|ct| http::is_media_type(ct, "application/x-www-form-urlencoded"));
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
    let now = clock::now();
    let verified = tokens::verify(&app.keys(), &app.expect, &token, now);
    let client = auth::client(app, request);
    let revoked = json!({"reason": "revoked"});
    db::write(&mut *app.conn()?, |tx| match verified {
        Ok((TokenKind::Private, claims)) => {
            if private_tokens::delete(tx, &claims.jti)? {
                let entry = Entry::new(Event::PrivateTokenRevoked, now, &client)
                    .user(&claims.sub)
                    .token(&claims.jti)
                    .detail(revoked);
                app.record(tx, &entry)?;
            }
            Ok(())
        }
        // An access token is not revocable by itself (it expires soon);
        // anything else may be a refresh token, which ends its session.
        Ok((TokenKind::Access, _)) => Ok(()),
        Err(_) => {
            let hash = Secret::from_presented(token).hash();
            if let Some(ended) = sessions::delete_by_refresh_token(tx, &hash)? {
                let entry = Entry::new(Event::SessionEnded, now, &client)
                    .user(&ended.user_id)
                    .session(&ended.session_id)
                    .detail(revoked);
                app.record(tx, &entry)?;
            }
            Ok::<_, db::Error>(())
        }
    })?;
    Ok(http::token_response(200, &Empty {}))
}
