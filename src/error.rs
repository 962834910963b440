//! `ApiError`: one variant per row of the contract's error table, and the one
//! mapping from an error to its status, code, detail and headers.
//!
//! `code()` and `detail()` return `&'static str`, so a response body can never
//! echo a password, a token or a SQL message. The cause of an `Internal` error
//! is logged once, by the router, and never sent.

use crate::domain::ids::Secret;
use std::collections::BTreeMap;
use std::fmt;

/// Field name → what is wrong with it, for `validation_error`.
pub type FieldErrors = BTreeMap<&'static str, &'static str>;

#[derive(Debug)]
pub enum ApiError {
    InvalidJson,
    MalformedForm,
    Validation(FieldErrors),
    InvalidRefreshToken,
    InvalidEmailToken,
    EmailNotVerified,
    NotAuthenticated,
    TokenNotValid,
    TokenExpired,
    InvalidCredentials,
    /// The right password for an account with a second factor: the body
    /// carries this single-use token for `POST /login/mfa/`.
    MfaRequired(Secret),
    PermissionDenied,
    BadRequest,
    HeadersTooLarge,
    NotFound,
    MethodNotAllowed(&'static [&'static str]),
    RequestTimeout,
    EmailExists,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests {
        retry_after: u64,
    },
    Overloaded,
    Internal(String),
}

impl ApiError {
    /// A single failing field.
    pub fn field(name: &'static str, problem: &'static str) -> ApiError {
        ApiError::Validation(BTreeMap::from([(name, problem)]))
    }

    /// Wraps an infrastructure failure; the text goes to the log only.
    pub fn internal(cause: impl fmt::Display) -> ApiError {
        ApiError::Internal(cause.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson
            | ApiError::MalformedForm
            | ApiError::Validation(_)
            | ApiError::InvalidRefreshToken
            | ApiError::InvalidEmailToken
            | ApiError::BadRequest
            | ApiError::HeadersTooLarge => 400,
            ApiError::NotAuthenticated
            | ApiError::TokenNotValid
            | ApiError::TokenExpired
            | ApiError::InvalidCredentials
            | ApiError::MfaRequired(_) => 401,
            ApiError::PermissionDenied | ApiError::EmailNotVerified => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::RequestTimeout => 408,
            ApiError::EmailExists => 409,
            ApiError::PayloadTooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::Overloaded => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson | ApiError::MalformedForm => "invalid_json",
            ApiError::Validation(_) => "validation_error",
            ApiError::InvalidRefreshToken => "invalid_refresh_token",
            ApiError::InvalidEmailToken => "invalid_email_token",
            ApiError::EmailNotVerified => "email_not_verified",
            ApiError::NotAuthenticated => "not_authenticated",
            ApiError::TokenNotValid => "token_not_valid",
            ApiError::TokenExpired => "token_expired",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::MfaRequired(_) => "mfa_required",
            ApiError::PermissionDenied => "permission_denied",
            ApiError::BadRequest | ApiError::HeadersTooLarge => "bad_request",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::EmailExists => "email_exists",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Overloaded => "overloaded",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn detail(&self) -> &'static str {
        match self {
            ApiError::InvalidJson => {
                "The request body is not the JSON object this endpoint expects."
            }
            ApiError::MalformedForm => "The request body is not valid multipart/form-data.",
            ApiError::Validation(_) => "Some fields are invalid; see `fields`.",
            ApiError::InvalidRefreshToken => "The refresh token is unknown, expired or revoked.",
            ApiError::InvalidEmailToken => {
                "The link is unknown, already used, replaced by a newer one, or expired."
            }
            ApiError::EmailNotVerified => {
                "The account's email address is not verified yet; open the link mailed to it."
            }
            ApiError::NotAuthenticated => {
                "Authentication is required: send `Authorization: Bearer <token>`."
            }
            ApiError::TokenNotValid => "The token is not valid.",
            ApiError::TokenExpired => "The token has expired.",
            ApiError::InvalidCredentials => "The email or password is incorrect.",
            ApiError::MfaRequired(_) => {
                "A second factor is required: send a code with the mfa_token to /login/mfa/."
            }
            ApiError::PermissionDenied => "This token may not perform this action.",
            ApiError::BadRequest => "The request is not well-formed HTTP.",
            ApiError::HeadersTooLarge => "The request headers are too large.",
            ApiError::NotFound => "Not found.",
            ApiError::MethodNotAllowed(_) => "This method is not allowed on this resource.",
            ApiError::RequestTimeout => "The request did not arrive in time.",
            ApiError::EmailExists => "An account with this email already exists.",
            ApiError::PayloadTooLarge => "The request body is too large.",
            ApiError::UnsupportedMediaType => "The Content-Type of the request is not supported.",
            ApiError::TooManyRequests { .. } => "Too many failed attempts; retry later.",
            ApiError::Overloaded => "The server is busy; retry shortly.",
            ApiError::Internal(_) => "An internal error occurred.",
        }
    }

    /// Headers the contract ties to this error (RFC 6750 §3, RFC 9110 §15.5.6).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::NotAuthenticated | ApiError::InvalidCredentials => {
                vec![("WWW-Authenticate", "Bearer realm=\"latchkey\"".into())]
            }
            ApiError::TokenNotValid | ApiError::TokenExpired => vec![(
                "WWW-Authenticate",
                "Bearer realm=\"latchkey\", error=\"invalid_token\"".into(),
            )],
            // It carries a token: RFC 6749 §5.1's caching headers.
            ApiError::MfaRequired(_) => vec![
                ("WWW-Authenticate", "Bearer realm=\"latchkey\"".into()),
                ("Pragma", "no-cache".into()),
            ],
            ApiError::PermissionDenied | ApiError::EmailNotVerified => vec![(
                "WWW-Authenticate",
                "Bearer realm=\"latchkey\", error=\"insufficient_scope\"".into(),
            )],
            ApiError::MethodNotAllowed(allow) => vec![("Allow", allow.join(", "))],
            ApiError::TooManyRequests { retry_after } => {
                vec![("Retry-After", retry_after.to_string())]
            }
            ApiError::Overloaded => vec![("Retry-After", "1".into())],
            ApiError::InvalidJson
            | ApiError::MalformedForm
            | ApiError::Validation(_)
            | ApiError::InvalidRefreshToken
            | ApiError::InvalidEmailToken
            | ApiError::BadRequest
            | ApiError::HeadersTooLarge
            | ApiError::NotFound
            | ApiError::RequestTimeout
            | ApiError::EmailExists
            | ApiError::PayloadTooLarge
            | ApiError::UnsupportedMediaType
            | ApiError::Internal(_) => Vec::new(),
        }
    }

    /// The JSON body: `{"code", "detail"}`, plus `fields` for validation errors
    /// and the OAuth `error` for a refused refresh token (RFC 6749 §5.2).
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            code: self.code(),
            detail: self.detail(),
            fields: match self {
                ApiError::Validation(fields) => Some(fields),
                _ => None,
            },
            error: match self {
                ApiError::InvalidRefreshToken => Some("invalid_grant"),
                _ => None,
            },
            mfa_token: match self {
                ApiError::MfaRequired(token) => Some(token.expose()),
                _ => None,
            },
            methods: match self {
                ApiError::MfaRequired(_) => Some(crate::domain::mfa::METHODS),
                _ => None,
            },
        }
    }
}

impl ApiError {
    /// The JSON body as bytes. Serialising static strings and a map of them
    /// cannot fail; were it ever to, the body is empty rather than a panic.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

#[derive(serde::Serialize)]
pub struct ErrorBody<'a> {
    pub code: &'static str,
    pub detail: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<&'a FieldErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// Only in `mfa_required`: a token minted for this answer, never an echo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<&'static [&'static str]>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

// The contract's answers to the domain's expected refusals: one mapping
// each, which the handlers and the property tests share.

impl From<FieldErrors> for ApiError {
    fn from(fields: FieldErrors) -> ApiError {
        ApiError::Validation(fields)
    }
}

impl From<crate::domain::password::Overloaded> for ApiError {
    fn from(_: crate::domain::password::Overloaded) -> ApiError {
        ApiError::Overloaded
    }
}

impl From<crate::domain::images::ImageError> for ApiError {
    fn from(e: crate::domain::images::ImageError) -> ApiError {
        use crate::domain::images::ImageError;
        match e {
            ImageError::Unsupported => ApiError::UnsupportedMediaType,
            ImageError::TooLarge => ApiError::PayloadTooLarge,
        }
    }
}

impl From<crate::web::multipart::FormError> for ApiError {
    fn from(e: crate::web::multipart::FormError) -> ApiError {
        use crate::web::multipart::FormError;
        match e {
            FormError::NotMultipart => ApiError::UnsupportedMediaType,
            FormError::TooLarge => ApiError::PayloadTooLarge,
            FormError::Malformed => ApiError::MalformedForm,
        }
    }
}

impl From<crate::db::Error> for ApiError {
    fn from(e: crate::db::Error) -> ApiError {
        ApiError::internal(format_args!("database: {e}"))
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> ApiError {
        ApiError::internal(format_args!("database pool: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(format_args!("io: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_401_names_the_bearer_scheme() {
        for e in [
            ApiError::NotAuthenticated,
            ApiError::TokenNotValid,
            ApiError::TokenExpired,
            ApiError::InvalidCredentials,
            ApiError::MfaRequired(Secret::generate()),
        ] {
            assert_eq!(e.status(), 401);
            let headers = e.headers();
            assert!(headers[0].1.starts_with("Bearer"), "{e}");
        }
        assert!(
            ApiError::TokenExpired.headers()[0]
                .1
                .contains("invalid_token")
        );
        assert!(!ApiError::NotAuthenticated.headers()[0].1.contains("error="));
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let e = ApiError::internal("UNIQUE constraint failed: users.secret");
        let body = serde_json::to_string(&e.body()).unwrap();
        assert!(!body.contains("UNIQUE"), "{body}");
        assert_eq!(e.status(), 500);
    }

    #[test]
    fn refresh_errors_carry_the_oauth_code() {
        let body = serde_json::to_value(ApiError::InvalidRefreshToken.body()).unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["code"], "invalid_refresh_token");
    }

    #[test]
    fn validation_errors_name_their_fields() {
        let body = serde_json::to_value(ApiError::field("email", "is required").body()).unwrap();
        assert_eq!(body["fields"]["email"], "is required");
    }

    #[test]
    fn mfa_required_carries_its_token_and_methods_but_hides_it_in_debug() {
        let token = Secret::generate();
        let e = ApiError::MfaRequired(token.clone());
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(body["mfa_token"], token.expose());
        assert_eq!(
            body["methods"],
            serde_json::json!(["totp", "recovery_code"])
        );
        assert!(!format!("{e:?}").contains(token.expose()));
        assert!(e.headers().contains(&("Pragma", "no-cache".to_string())));
    }

    #[test]
    fn retry_after_comes_with_429_and_503() {
        let e = ApiError::TooManyRequests { retry_after: 42 };
        assert_eq!(e.headers(), vec![("Retry-After", "42".to_string())]);
        assert_eq!(ApiError::Overloaded.headers()[0].0, "Retry-After");
    }
}
