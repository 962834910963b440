//! Reading requests and building responses: JSON bodies under a size limit,
//! the bearer credential, and the few response shapes handlers return.
//! Nothing here knows about routes or the database.

use crate::error::ApiError;
use rouille::{Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Read;

/// The largest JSON body accepted: far above any valid request, far below
/// anything that could hurt (payload_too_large beyond it).
pub const JSON_LIMIT: usize = 64 * 1024;

/// The body as `T`, if it is JSON (by Content-Type) of at most `JSON_LIMIT` bytes.
/// A missing Content-Type is refused too: a cross-site form or a bodiless
/// `fetch` cannot then smuggle a login (CSRF) past the browser's preflight.
pub fn json<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    if !is_json(request.header("Content-Type")) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body(request, JSON_LIMIT)?;
    // serde would also fill a struct from a JSON array; only an object is
    // the body the contract describes.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::InvalidJson);
    }
    serde_json::from_slice(&body).map_err(|_| ApiError::InvalidJson)
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| is_media_type(ct, "application/json"))
}

/// Whether a Content-Type header names the media type `expected` (lower
/// case), whatever its parameters; media types are case-insensitive.
pub fn is_media_type(content_type: &str, expected: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("");
    mime.trim().eq_ignore_ascii_case(expected)
}

/// The raw body, refused past `limit` bytes.
pub fn body(request: &Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut data = Vec::new();
    if let Some(reader) = request.data() {
        reader.take(limit as u64 + 1).read_to_end(&mut data)?;
    }
    if data.len() > limit {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(data)
}

/// The token of `Authorization: Bearer <token>` (RFC 6750 §2.1).
pub fn bearer(request: &Request) -> Result<&str, ApiError> {
    let value = request
        .header("Authorization")
        .ok_or(ApiError::NotAuthenticated)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::NotAuthenticated)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("Bearer") || token.is_empty() || !is_token68(token) {
        return Err(ApiError::NotAuthenticated);
    }
    Ok(token)
}

/// RFC 7235 §2.1 token68: the only characters a bearer token may hold.
fn is_token68(s: &str) -> bool {
    let s = s.trim_end_matches('=');
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The client's `User-Agent`, cut to a length worth storing.
pub fn user_agent(request: &Request) -> Option<String> {
    let ua = request.header("User-Agent")?.trim();
    (!ua.is_empty()).then(|| ua.chars().take(256).collect())
}

/// A JSON response.
pub fn json_response<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::from_data("application/json", bytes).with_status_code(status),
        // Serialising our own view types cannot fail; if it ever did, the
        // answer is the generic 500 (its body from the one error mapping).
        Err(e) => {
            let error = ApiError::internal(format_args!("serialising a response: {e}"));
            log::error!("internal error: {error:?}");
            Response::from_data("application/json", error.to_json()).with_status_code(500)
        }
    }
}

/// A response carrying tokens: never cached (RFC 6749 §5.1).
pub fn token_response<T: Serialize>(status: u16, body: &T) -> Response {
    no_store(json_response(status, body))
}

pub fn no_store(response: Response) -> Response {
    response
        .with_unique_header("Cache-Control", "no-store")
        .with_unique_header("Pragma", "no-cache")
}

pub fn no_content() -> Response {
    Response::empty_204()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)], body: &str) -> Request {
        Request::fake_http(
            "POST",
            "/login/",
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body.as_bytes().to_vec(),
        )
    }

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[allow(dead_code)]
        email: Option<String>,
    }

    #[test]
    fn json_needs_the_json_content_type() {
        let ok = post(&[("Content-Type", "application/json; charset=utf-8")], "{}");
        assert!(json::<Body>(&ok).is_ok());
        for headers in [&[("Content-Type", "text/plain")][..], &[][..]] {
            let r = post(headers, "{}");
            assert!(matches!(
                json::<Body>(&r),
                Err(ApiError::UnsupportedMediaType)
            ));
        }
    }

    #[test]
    fn json_refuses_bad_and_oversized_bodies() {
        let ct = [("Content-Type", "application/json")];
        for bad in ["", "nope", "[]", r#"["a@b.io"]"#, r#"{"email": 5}"#] {
            assert!(
                matches!(json::<Body>(&post(&ct, bad)), Err(ApiError::InvalidJson)),
                "{bad}"
            );
        }
        let big = format!(r#"{{"email": "{}"}}"#, "a".repeat(JSON_LIMIT));
        assert!(matches!(
            json::<Body>(&post(&ct, &big)),
            Err(ApiError::PayloadTooLarge)
        ));
    }

    #[test]
    fn bearer_accepts_only_the_bearer_scheme() {
        let with = |v: &str| post(&[("Authorization", v)], "");
        assert_eq!(bearer(&with("Bearer abc.def-_")).unwrap(), "abc.def-_");
        assert_eq!(bearer(&with("bearer abc")).unwrap(), "abc");
        for bad in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer a b",
            "Bearer <x>",
        ] {
            assert!(
                matches!(bearer(&with(bad)), Err(ApiError::NotAuthenticated)),
                "{bad}"
            );
        }
        assert!(matches!(
            bearer(&post(&[], "")),
            Err(ApiError::NotAuthenticated)
        ));
    }
}
