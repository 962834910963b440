//! Who is calling: the bearer token checked against the signing keys, and
//! against the database so that ended sessions are refused at once. Also the
//! minting of access tokens, so both directions of a token live together.

use crate::app::App;
use crate::clock;
use crate::db;
use crate::error::ApiError;
use crate::http;
use crate::ids;
use crate::tokens::{self, Claims, TokenError, TokenKind};
use rouille::Request;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// The login session of an access token.
    pub session_id: String,
}

/// Authenticates the request's bearer access token.
pub fn caller(app: &App, request: &Request) -> Result<Caller, ApiError> {
    let token = http::bearer(request)?;
    let (kind, claims) =
        tokens::verify(&app.keys(), &app.expect, token, clock::now()).map_err(|e| match e {
            TokenError::Invalid => ApiError::TokenNotValid,
            TokenError::Expired => ApiError::TokenExpired,
        })?;
    match kind {
        TokenKind::Access => {
            let session_id = claims.sid.ok_or(ApiError::TokenNotValid)?;
            // Verified without a write: one indexed read says the session
            // (and so the user) still exists.
            if !db::sessions::is_live(&*app.conn()?, &session_id, &claims.sub)? {
                return Err(ApiError::TokenNotValid);
            }
            Ok(Caller {
                user_id: claims.sub,
                session_id,
            })
        }
        // Private tokens are not issued yet; none can be valid here.
        TokenKind::Private => Err(ApiError::TokenNotValid),
    }
}

/// A new access token for `user_id` in session `session_id` (RFC 9068 claims).
pub fn access_token(app: &App, user_id: &str, session_id: &str) -> String {
    let now = clock::now();
    let claims = Claims {
        iss: app.config.issuer.clone(),
        sub: user_id.to_string(),
        aud: app.config.audience.clone(),
        iat: now,
        exp: now + app.config.access_ttl as i64,
        jti: ids::uuid(),
        sid: Some(session_id.to_string()),
    };
    tokens::sign(&app.keys(), TokenKind::Access, &claims)
}
