//! Private tokens: long-lived, revocable JWTs (`typ: pt+jwt`) for scripts and
//! servers. Managed only with a login access token; a private token gets 403.

use crate::app::App;
use crate::clock;
use crate::db::{self, private_tokens};
use crate::domain::ids;
use crate::error::{ApiError, FieldErrors};
use crate::web::auth;
use crate::web::http;
use rouille::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
            .activity
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

/// The expiry asked for, as a Unix time: `Ok(None)` when neither field is
/// given (allowed only for rotation).
fn expiry(app: &App, req: ExpiryRequest, now: i64, fields: &mut FieldErrors) -> Option<i64> {
    let max = now.saturating_add(app.config.max_private_token_ttl);
    let (field, at) = match (req.expires_in, req.expires_at) {
        (Some(_), Some(_)) => {
            fields.insert("expires_in", "give expires_in or expires_at, not both");
            return None;
        }
        (None, None) => return None,
        (Some(secs), None) => match secs.as_i64() {
            Some(secs) if secs > 0 => ("expires_in", now.saturating_add(secs)),
            _ => {
                fields.insert("expires_in", "must be a whole number of seconds above zero");
                return None;
            }
        },
        (None, Some(at)) => match at.as_str().and_then(clock::parse_rfc3339) {
            Some(at) if at > now => ("expires_at", at),
            Some(_) => {
                fields.insert("expires_at", "must be in the future");
                return None;
            }
            None => {
                fields.insert("expires_at", "must be an RFC 3339 date-time");
                return None;
            }
        },
    };
    if at > max {
        fields.insert(field, "is longer than the longest lifetime allowed");
        return None;
    }
    Some(at)
}

fn token_name(raw: Option<String>, fields: &mut FieldErrors) -> Option<String> {
    let Some(raw) = raw else {
        fields.insert("name", "is required");
        return None;
    };
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        fields.insert(
            "name",
            "must be 1 to 100 characters without control characters",
        );
        return None;
    }
    Some(name.to_string())
}

/// Mints and stores a token for the caller; the secret is shown only here.
fn mint(
    app: &App,
    user_id: &str,
    name: String,
    expires_at: i64,
    replaces: Option<&str>,
) -> Result<Response, ApiError> {
    let now = clock::now();
    let id = ids::uuid();
    let (token, kid) = auth::private_token(app, user_id, &id, now, expires_at);
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
    let (caller, _) = auth::session_caller(app, request)?;
    let body: CreateTokenRequest = http::json(request)?;
    let mut fields = FieldErrors::new();
    let name = token_name(body.name, &mut fields);
    let none_given = body.expiry.expires_in.is_none() && body.expiry.expires_at.is_none();
    let expires_at = expiry(app, body.expiry, clock::now(), &mut fields);
    if none_given {
        fields.insert(
            "expires_in",
            "is required (or expires_at): tokens have no default expiry",
        );
    }
    let (Some(name), Some(expires_at), true) = (name, expires_at, fields.is_empty()) else {
        return Err(ApiError::Validation(fields));
    };
    mint(app, &caller.user_id, name, expires_at, None)
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
    let (caller, _) = auth::session_caller(app, request)?;
    if !db::write(&mut *app.conn()?, |tx| {
        private_tokens::delete_of_user(tx, id, &caller.user_id)
    })? {
        return Err(ApiError::NotFound);
    }
    Ok(http::no_content())
}

/// `POST /tokens/{id}/rotate`: a new token with the same name, and the old
/// one's lifetime unless a new expiry is given; the old one is revoked.
pub fn rotate_token(app: &App, request: &Request, id: &str) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
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
    let mut fields = FieldErrors::new();
    let asked = expiry(app, body, now, &mut fields);
    if !fields.is_empty() {
        return Err(ApiError::Validation(fields));
    }
    let lifetime = (old.expires_at - old.created_at).clamp(1, app.config.max_private_token_ttl);
    let expires_at = asked.unwrap_or(now + lifetime);
    mint(app, &caller.user_id, old.name, expires_at, Some(&old.id))
}
