//! Who is calling: the bearer token checked against the signing keys, and
//! against the database so that ended sessions and revoked private tokens are
//! refused at once. Also the minting of both JWT kinds, so the two directions
//! of a token live together.

use crate::app::App;
use crate::clock;
use crate::db::{private_tokens, sessions};
use crate::domain::accounts::Client;
use crate::domain::ids;
use crate::domain::throttle;
use crate::domain::token_use::Kind;
use crate::domain::tokens::{self, Claims, TokenError, TokenKind};
use crate::error::ApiError;
use crate::ops::metrics::Issued;
use crate::web::http;
use rouille::Request;

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// A login access token of this session.
    Session(String),
    /// This private token.
    PrivateToken(String),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub credential: Credential,
}

impl Caller {
    /// The session of a login access token; a private token may not manage
    /// sessions, tokens, the password, the email or the account (403).
    pub fn session(&self) -> Result<&str, ApiError> {
        match &self.credential {
            Credential::Session(id) => Ok(id),
            Credential::PrivateToken(_) => Err(ApiError::PermissionDenied),
        }
    }
}

/// Authenticates the request's bearer token: an access token or a private token.
pub fn caller(app: &App, request: &Request) -> Result<Caller, ApiError> {
    let token = http::bearer(request)?;
    let now = clock::now();
    let (kind, claims) = match app.verified.get(token, now, app.expect.leeway) {
        Some(known) => known,
        None => {
            let (kind, claims) =
                tokens::verify(&app.keys(), &app.expect, token, now).map_err(|e| match e {
                    TokenError::Invalid => ApiError::TokenNotValid,
                    TokenError::Expired => ApiError::TokenExpired,
                })?;
            app.verified.insert(token, kind, &claims);
            (kind, claims)
        }
    };
    let conn = app.conn()?;
    // One indexed read each, no write: the session (and so the user) still
    // exists; the private token has not been revoked.
    let credential = match kind {
        TokenKind::Access => {
            let session_id = claims.sid.ok_or(ApiError::TokenNotValid)?;
            if !sessions::is_live(&conn, &session_id, &claims.sub)? {
                return Err(ApiError::TokenNotValid);
            }
            app.token_use.record(Kind::Session, &session_id, now);
            Credential::Session(session_id)
        }
        TokenKind::Private => {
            if private_tokens::find_of_user(&conn, &claims.jti, &claims.sub)?.is_none() {
                return Err(ApiError::TokenNotValid);
            }
            app.token_use.record(Kind::PrivateToken, &claims.jti, now);
            Credential::PrivateToken(claims.jti)
        }
    };
    Ok(Caller {
        user_id: claims.sub,
        credential,
    })
}

/// Authenticates a caller that must hold a login access token.
pub fn session_caller(app: &App, request: &Request) -> Result<(Caller, String), ApiError> {
    let caller = caller(app, request)?;
    let session = caller.session()?.to_string();
    Ok((caller, session))
}

/// Where a token's claims differ by kind: an access token names its session
/// and how it authenticated; a private token neither.
struct Session<'a> {
    id: &'a str,
    amr: &'a str,
}

fn claims(
    app: &App,
    user_id: &str,
    jti: String,
    (now, exp): (i64, i64),
    session: Option<Session<'_>>,
) -> Claims {
    Claims {
        iss: app.config.issuer.clone(),
        sub: user_id.to_string(),
        aud: app.config.audience().to_string(),
        iat: now,
        exp,
        jti,
        sid: session.as_ref().map(|s| s.id.to_owned()),
        amr: session.map(|s| s.amr.split_whitespace().map(str::to_owned).collect()),
    }
}

/// A new access token for `user_id` in session `session_id` (RFC 9068
/// claims), with the session's `amr` (RFC 8176; stored space-separated).
pub fn access_token(app: &App, user_id: &str, session_id: &str, amr: &str) -> String {
    let now = clock::now();
    let exp = now.saturating_add(app.config.access_ttl);
    let session = Session {
        id: session_id,
        amr,
    };
    let claims = claims(app, user_id, ids::uuid(), (now, exp), Some(session));
    app.metrics.issued(Issued::Access);
    tokens::sign(&app.keys(), TokenKind::Access, &claims)
}

/// A private token (`typ: pt+jwt`, `jti` = its id) and the kid that signed it.
pub fn private_token(
    app: &App,
    user_id: &str,
    id: &str,
    now: i64,
    expires_at: i64,
) -> (String, String) {
    let keys = app.keys();
    let claims = claims(app, user_id, id.to_string(), (now, expires_at), None);
    app.metrics.issued(Issued::Private);
    (
        tokens::sign(&keys, TokenKind::Private, &claims),
        keys.active().kid.clone(),
    )
}

/// The client as throttling and sessions see it: its address (believing
/// `X-Forwarded-For` only from a trusted proxy) and its user agent.
pub fn client(app: &App, request: &Request) -> Client {
    Client {
        address: throttle::client_address(
            Some(request.remote_addr().ip()),
            request.header("X-Forwarded-For"),
            &app.config.trusted_proxies,
        ),
        user_agent: http::user_agent(request),
    }
}
