//! Private tokens: long-lived, revocable JWTs (`typ: pt+jwt`) for scripts and
//! servers. Managed only with a login access token; a private token gets 403.

use crate::app::App;
use crate::clock;
use crate::db::{self, private_tokens, users};
use crate::domain::accounts::Client;
use crate::domain::audit::{Entry, Event};
use crate::domain::validate::Fields;
use crate::domain::{email, ids};
use crate::error::{ApiError, FieldErrors};
use crate::web::auth;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::json;

#[derive(Deserialize)]
pub struct CreateTokenRequest {
    name: Option<String>,
    #[serde(flatten)]
    expiry: ExpiryRequest,
}

/// `expires_in` (seconds) or `expires_at` (RFC 3339): exactly one when
/// creating, at most one when rotating.
#[derive(Deserialize)]
pub struct ExpiryRequest {
    expires_in: Option<Value>,
    expires_at: Option<Value>,
}

#[derive(Serialize)]
struct CreatedToken {
    id: String,
    name: String,
    token: String,
    created_at: String,
    expires_at: String,
}

#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
}

#[derive(Serialize)]
struct TokenList {
    tokens: Vec<TokenView>,
}

impl TokenView {
    fn new(app: &App, t: private_tokens::PrivateToken) -> TokenView {
        let pending = app
            .token_use
            .pending(crate::domain::token_use::Kind::PrivateToken, &t.id);
        TokenView {
            last_used_at: t.last_used_at.max(pending).map(clock::rfc3339),
            created_at: clock::rfc3339(t.created_at),
            expires_at: clock::rfc3339(t.expires_at),
            name: t.name,
            id: t.id,
        }
    }
}

/// A `POST /tokens/` that passed the rules.
pub struct NewToken {
    name: String,
    expires_at: i64,
}

impl CreateTokenRequest {
    /// `max_ttl`: `--max-private-token-ttl`.
    pub fn validate(self, now: i64, max_ttl: i64) -> Result<NewToken, FieldErrors> {
        let mut fields = Fields::default();
        let name = fields.required("name", self.name.as_deref(), token_name);
        if self.expiry.is_empty() {
            fields.problem(
                "expires_in",
                "is required (or expires_at): tokens have no default expiry",
            );
        }
        let expires_at = self.expiry.expires_at(&mut fields, now, max_ttl);
        let token = name
            .zip(expires_at)
            .map(|(name, expires_at)| NewToken { name, expires_at });
        fields.finish(token)
    }
}

impl ExpiryRequest {
    fn is_empty(&self) -> bool {
        self.expires_in.is_none() && self.expires_at.is_none()
    }

    /// For a rotation: the expiry asked for, or `None` to keep the lifetime.
    pub fn validate(self, now: i64, max_ttl: i64) -> Result<Option<i64>, FieldErrors> {
        let mut fields = Fields::default();
        let expires_at = self.expires_at(&mut fields, now, max_ttl);
        fields.finish(Some(expires_at))
    }

    /// The expiry asked for as a Unix time; `None` when neither field is
    /// given or the given one fails (recorded in `fields`).
    fn expires_at(self, fields: &mut Fields, now: i64, max_ttl: i64) -> Option<i64> {
        let (field, at) = match (self.expires_in, self.expires_at) {
            (Some(_), Some(_)) => ("expires_in", Err("give expires_in or expires_at, not both")),
            (None, None) => return None,
            (Some(secs), None) => match secs.as_i64() {
                Some(secs) if secs > 0 => ("expires_in", Ok(now.saturating_add(secs))),
                _ => (
                    "expires_in",
                    Err("must be a whole number of seconds above zero"),
                ),
            },
            (None, Some(at)) => match at.as_str().and_then(clock::parse_rfc3339) {
                Some(at) if at > now => ("expires_at", Ok(at)),
                Some(_) => ("expires_at", Err("must be in the future")),
                None => ("expires_at", Err("must be an RFC 3339 date-time")),
            },
        };
        let within = at.and_then(|at| match at > now.saturating_add(max_ttl) {
            true => Err("is longer than the longest lifetime allowed"),
            false => Ok(at),
        });
        fields.check(field, within)
    }
}

fn max_ttl(app: &App) -> i64 {
    app.config.max_private_token_ttl
}

/// A token's name: 1–100 characters after trimming, no control characters.
fn token_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("must be 1 to 100 characters without control characters");
    }
    Ok(name.to_owned())
}

/// Who manages a token: the user, in a login session, from a client.
#[derive(Clone, Copy)]
struct Acting<'a> {
    user_id: &'a str,
    session_id: &'a str,
    client: &'a Client,
}

/// Mints and stores a token for the caller; the secret is shown only here.
fn mint(
    app: &App,
    by: Acting<'_>,
    name: String,
    expires_at: i64,
    replaces: Option<&str>,
) -> Result<Response, ApiError> {
    let user_id = by.user_id;
    let now = clock::now();
    let id = ids::uuid();
    let (token, kid) = auth::private_token(app, user_id, &id, now, expires_at);
    let details = by.client.details(now);
    let row = private_tokens::NewPrivateToken {
        id: &id,
        user_id,
        name: &name,
        kid: &kid,
        now,
        expires_at,
    };
    db::write(&mut *app.conn()?, |tx| {
        if let Some(old) = replaces
            && !private_tokens::delete_of_user(tx, old, user_id)?
        {
            return Err(ApiError::NotFound);
        }
        private_tokens::insert(tx, &row)?;
        let (event, detail) = match replaces {
            None => (Event::PrivateTokenCreated, json!({"name": name})),
            Some(old) => (
                Event::PrivateTokenRotated,
                json!({"name": name, "replaces": old}),
            ),
        };
        let entry = Entry::new(event, now, by.client)
            .user(user_id)
            .session(by.session_id)
            .token(&id)
            .detail(detail);
        app.record(tx, &entry)?;
        // A new token (a rotation makes one too) is told to the account's
        // address: its name and expiry, never the token.
        let user = users::find(tx, user_id)?.ok_or(ApiError::TokenNotValid)?;
        email::notice_token_created(tx, &user, &name, expires_at, &details, now)?;
        Ok(())
    })?;
    let created = CreatedToken {
        id,
        name,
        token,
        created_at: clock::rfc3339(now),
        expires_at: clock::rfc3339(expires_at),
    };
    Ok(http::token_response(201, &created))
}

/// `POST /tokens/`: a new private token; its expiry is required.
pub fn create_token(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, session_id) = auth::session_caller(app, request)?;
    let body: CreateTokenRequest = http::json(request)?;
    let new = body.validate(clock::now(), max_ttl(app))?;
    let client = auth::client(app, request);
    let by = Acting {
        user_id: &caller.user_id,
        session_id: &session_id,
        client: &client,
    };
    mint(app, by, new.name, new.expires_at, None)
}

/// `GET /tokens/`: the caller's tokens, newest first, never the token itself.
pub fn list_tokens(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    let rows = private_tokens::list_of_user(&*app.conn()?, &caller.user_id)?;
    let tokens = rows.into_iter().map(|t| TokenView::new(app, t)).collect();
    Ok(http::json_response(200, &TokenList { tokens }))
}

fn find(app: &App, id: &str, user_id: &str) -> Result<private_tokens::PrivateToken, ApiError> {
    private_tokens::find_of_user(&*app.conn()?, id, user_id)?.ok_or(ApiError::NotFound)
}

/// `GET /tokens/{id}`.
pub fn get_token(app: &App, request: &Request, id: &str) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    let token = find(app, id, &caller.user_id)?;
    Ok(http::json_response(200, &TokenView::new(app, token)))
}

/// `DELETE /tokens/{id}`: revoked at once (its next use is refused).
pub fn delete_token(app: &App, request: &Request, id: &str) -> Result<Response, ApiError> {
    let (caller, session_id) = auth::session_caller(app, request)?;
    let client = auth::client(app, request);
    if !db::write(&mut *app.conn()?, |tx| {
        let deleted = private_tokens::delete_of_user(tx, id, &caller.user_id)?;
        if deleted {
            let entry = Entry::new(Event::PrivateTokenRevoked, clock::now(), &client)
                .user(&caller.user_id)
                .session(&session_id)
                .token(id);
            app.record(tx, &entry)?;
        }
        Ok::<_, db::Error>(deleted)
    })? {
        return Err(ApiError::NotFound);
    }
    Ok(http::no_content())
}

/// `POST /tokens/{id}/rotate`: a new token with the same name, and the old
/// one's lifetime unless a new expiry is given; the old one is revoked.
pub fn rotate_token(app: &App, request: &Request, id: &str) -> Result<Response, ApiError> {
    let (caller, session_id) = auth::session_caller(app, request)?;
    let old = find(app, id, &caller.user_id)?;
    let body: ExpiryRequest = if request.header("Content-Length").is_some_and(|l| l != "0") {
        http::json(request)?
    } else {
        ExpiryRequest {
            expires_in: None,
            expires_at: None,
        }
    };
    let now = clock::now();
    let asked = body.validate(now, max_ttl(app))?;
    let lifetime = (old.expires_at - old.created_at).clamp(1, max_ttl(app));
    let expires_at = asked.unwrap_or(now + lifetime);
    let client = auth::client(app, request);
    let by = Acting {
        user_id: &caller.user_id,
        session_id: &session_id,
        client: &client,
    };
    mint(app, by, old.name, expires_at, Some(&old.id))
}
