//! Property tests of everything that parses what a client sends: JSON bodies
//! (`http::json`), the `Authorization` header (`http::bearer`) and the token
//! in it (`tokens::verify`), `multipart/form-data` bodies (`multipart::parse`)
//! and uploaded pictures (`images::clean`). Arbitrary and mutated input never
//! panics, and every refusal is one of the contract's 4xx errors.

#![cfg(test)]

use std::io::Cursor;
use std::sync::OnceLock;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use proptest::prelude::*;
use rouille::Request;
use serde::de::DeserializeOwned;

use crate::domain::images::{self, ImageError};
use crate::domain::keys::SigningKey;
use crate::domain::tokens::{self, Claims, Expectations, KeyRing, TokenError, TokenKind};
use crate::error::ApiError;
use crate::web::handlers::profile::UpdateProfileRequest;
use crate::web::handlers::session::{LogInRequest, RefreshRequest, SignUpRequest};
use crate::web::http::{self, JSON_LIMIT};
use crate::web::multipart::{self, FormError, MAX_FIELD_BYTES, MAX_PARTS};

/// Every `(status, code)` a client error may have under the contract.
const CONTRACT_4XX: &[(u16, &str)] = &[
    (400, "invalid_json"),
    (400, "validation_error"),
    (400, "invalid_refresh_token"),
    (400, "bad_request"),
    (401, "not_authenticated"),
    (401, "token_not_valid"),
    (401, "token_expired"),
    (401, "invalid_credentials"),
    (403, "permission_denied"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (409, "email_exists"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (429, "too_many_requests"),
];

fn is_contract_4xx(e: &ApiError) -> bool {
    CONTRACT_4XX.contains(&(e.status(), e.code()))
}

fn fake(headers: Vec<(&str, String)>, body: Vec<u8>) -> Request {
    let headers = headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Request::fake_http("POST", "/x", headers, body)
}

// ---------------------------------------------------------------- JSON bodies

/// Bytes that look like JSON often enough to get past the first byte.
fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just(":"),
        Just(","),
        Just(" "),
        Just("\"email\""),
        Just("\"password\""),
        Just("\"refresh_token\""),
        Just("\"name\""),
        Just("\"x\""),
        Just("\"\\u0000\\ud800\""),
        Just("\"é\""),
        Just("1e999"),
        Just("-0"),
        Just("null"),
        Just("true"),
    ];
    prop::collection::vec(atom, 0..120).prop_map(|atoms| atoms.concat().into_bytes())
}

/// `{"<key>": ` nested `depth` times in arrays or objects, closed or not.
fn deeply_nested() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("email"), Just("x")],
        0usize..4000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(key, depth, arrays, closed)| {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            let mut body = format!("{{\"{key}\": {}1", open.repeat(depth));
            if closed {
                body.push_str(&close.repeat(depth));
                body.push('}');
            }
            body.into_bytes()
        })
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..512),
        4 => json_like(),
        2 => deeply_nested(),
        // Around the size limit: an object padded with whitespace.
        1 => (JSON_LIMIT - 4..JSON_LIMIT + 4).prop_map(|len| {
            let mut body = b"{}".to_vec();
            body.resize(len, b' ');
            body
        }),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_string())),
        1 => Just(Some("Application/JSON; charset=utf-8".to_string())),
        1 => Just(Some("text/plain".to_string())),
        1 => Just(None),
        1 => ".{0,40}".prop_map(Some),
    ]
}

/// Parses `body` as `T`; checks the outcome against what the body and its
/// Content-Type are.
fn check_json<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) {
    let headers = content_type
        .map(|ct| vec![("Content-Type", ct.to_string())])
        .unwrap_or_default();
    let declared_json = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    match http::json::<T>(&fake(headers, body.to_vec())) {
        Ok(_) => {
            assert!(declared_json && body.len() <= JSON_LIMIT);
            // Skipped values are not depth-limited (nor need be: skipping
            // does not recurse), so check the syntax by skipping it all too.
            serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("accepted JSON");
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            assert_eq!(first, Some(&b'{'), "accepted a non-object");
        }
        Err(e) => {
            assert!(is_contract_4xx(&e), "{e:?} is not a contract error");
            let expected = if !declared_json {
                "unsupported_media_type"
            } else if body.len() > JSON_LIMIT {
                "payload_too_large"
            } else {
                "invalid_json"
            };
            assert_eq!(e.code(), expected, "{e:?}");
        }
    }
}

// ------------------------------------------------------ Authorization, tokens

const NOW: i64 = 1_800_000_000;

struct Fixture {
    ring: KeyRing,
    expect: Expectations,
    genuine: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ring = KeyRing::new(SigningKey::generate().unwrap(), Vec::new());
        let claims = Claims {
            iss: "latchkey".into(),
            sub: "7d9f6c1e-3b0a-4c55-9a2e-1f0b8e6d2c44".into(),
            aud: "latchkey".into(),
            iat: NOW,
            exp: NOW + 3600,
            jti: "0b6f4e1c-9d2a-4f3e-8c7b-5a4d3e2f1a0b".into(),
            sid: Some("5e1d2c3b-4a59-4687-9a0b-c1d2e3f4a5b6".into()),
            amr: None,
        };
        let genuine = tokens::sign(&ring, TokenKind::Access, &claims);
        let expect = Expectations {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 30,
        };
        Fixture {
            ring,
            expect,
            genuine,
        }
    })
}

/// Verifies a token; anything but the genuine token must be `Invalid` (never
/// `Expired`, which would vouch for a forgery, and never accepted).
fn check_token(token: &str) {
    let f = fixture();
    match tokens::verify(&f.ring, &f.expect, token, NOW) {
        Ok(_) => assert_eq!(token, f.genuine, "a changed token was accepted"),
        Err(TokenError::Expired) => panic!("a forgery was judged merely expired"),
        Err(TokenError::Invalid) => {}
    }
}

const TOKEN68: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=";

/// The genuine token with a few edits: characters replaced, cut, inserted or
/// removed, parts swapped or repeated.
fn mutated_token() -> impl Strategy<Value = String> {
    let edit = (
        0usize..4,
        any::<prop::sample::Index>(),
        0usize..TOKEN68.len(),
    );
    prop::collection::vec(edit, 1..4).prop_map(|edits| {
        let mut token = fixture().genuine.clone().into_bytes();
        for (kind, at, c) in edits {
            let c = TOKEN68.as_bytes()[c];
            match kind {
                0 if !token.is_empty() => {
                    let i = at.index(token.len());
                    token[i] = c;
                }
                1 => token.truncate(at.index(token.len() + 1)),
                2 => token.insert(at.index(token.len() + 1), c),
                3 if !token.is_empty() => {
                    token.remove(at.index(token.len()));
                }
                _ => {}
            }
        }
        String::from_utf8(token).unwrap()
    })
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        2 => ".{0,80}".prop_map(Some),
        2 => prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
        3 => ("(?i:bearer)[ \t]{0,2}", "[A-Za-z0-9._~+/=\\- ]{0,120}")
            .prop_map(|(s, t)| Some(format!("{s}{t}"))),
        4 => mutated_token().prop_map(|t| Some(format!("Bearer {t}"))),
    ]
}

fn check_authorization(value: Option<&str>) {
    let headers = value
        .map(|v| vec![("Authorization", v.to_string())])
        .unwrap_or_default();
    let request = fake(headers, Vec::new());
    match http::bearer(&request) {
        Ok(token) => {
            let value = value.expect("a token without a header");
            assert!(value[..6].eq_ignore_ascii_case("bearer"), "{value:?}");
            assert!(!token.is_empty() && value.contains(token));
            assert!(token.bytes().all(|b| TOKEN68.as_bytes().contains(&b)));
            check_token(token);
        }
        Err(e) => {
            assert!(matches!(e, ApiError::NotAuthenticated), "{e:?}");
            assert!(is_contract_4xx(&e));
        }
    }
}

// ------------------------------------------------------------------ multipart

/// A part: a field name, its content, and whether it is sent as a file.
type PartSpec = (String, Vec<u8>, bool);

fn part() -> impl Strategy<Value = PartSpec> {
    prop_oneof![
        3 => ("[a-z_]{1,12}", ".{0,60}", any::<bool>())
            .prop_map(|(n, v, f)| (n, v.into_bytes(), f)),
        1 => prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| ("image".to_string(), b, true)),
    ]
}

/// Encodes parts under `boundary`, the way a browser writes them.
fn encode_form(boundary: &str, parts: &[PartSpec]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content, file) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let filename = if *file { "; filename=\"a.bin\"" } else { "" };
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{filename}\r\n").as_bytes(),
        );
        if *file {
            body.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        1 => (
            any::<prop::sample::Index>(),
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"--".to_vec()),
                Just(b"\r\n--b0undary-x\r\n".to_vec()),
                Just(b"\r\nContent-Disposition: form-data\r\n".to_vec()),
                Just(b"\"".to_vec()),
            ]
        )
            .prop_map(|(i, b)| Damage::Insert(i, b)),
    ]
}

fn apply(mut body: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::None => {}
        Damage::Truncate(at) => body.truncate(at.index(body.len() + 1)),
        Damage::Flip(at, b) if !body.is_empty() => {
            let i = at.index(body.len());
            body[i] = *b;
        }
        Damage::Flip(..) => {}
        Damage::Insert(at, bytes) => {
            let i = at.index(body.len() + 1);
            body.splice(i..i, bytes.iter().copied());
        }
    }
    body
}

fn check_form(content_type: &str, body: &[u8], max_image: usize) -> Result<multipart::Form, ()> {
    match multipart::parse(content_type, body, max_image) {
        Ok(form) => {
            assert!(multipart::is_multipart(content_type));
            let parts = form.fields.len() + usize::from(form.image.is_some());
            assert!(parts <= MAX_PARTS, "{parts} parts");
            for (_, value) in &form.fields {
                assert!(value.len() <= MAX_FIELD_BYTES);
            }
            if let Some(image) = &form.image {
                assert!(!image.is_empty() && image.len() <= max_image);
            }
            Ok(form)
        }
        Err(e) => {
            assert_eq!(
                e == FormError::NotMultipart,
                !multipart::is_multipart(content_type)
            );
            assert!(is_contract_4xx(&ApiError::from(e)));
            Err(())
        }
    }
}

// --------------------------------------------------------------------- images

/// Small real pictures, one per format, to be damaged.
fn samples() -> &'static [Vec<u8>] {
    static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let pixels =
            RgbaImage::from_fn(9, 7, |x, y| Rgba([(x * 28) as u8, (y * 36) as u8, 90, 255]));
        [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ]
        .into_iter()
        .map(|format| {
            let image = if format == ImageFormat::Jpeg {
                DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(pixels.clone()).into_rgb8())
            } else {
                DynamicImage::ImageRgba8(pixels.clone())
            };
            let mut out = Cursor::new(Vec::new());
            image.write_to(&mut out, format).unwrap();
            out.into_inner()
        })
        .collect()
    })
}

const MAGIC: [&[u8]; 5] = [
    b"\x89PNG\r\n\x1a\n",
    b"\xFF\xD8\xFF",
    b"GIF89a",
    b"GIF87a",
    b"RIFF\0\0\0\0WEBPVP8 ",
];

fn image_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..600),
        2 => (0..MAGIC.len(), prop::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(m, rest)| [MAGIC[m], &rest].concat()),
        1 => (0..4usize).prop_map(|s| samples()[s].clone()),
        4 => (0..4usize, prop::collection::vec(damage(), 1..4)).prop_map(|(s, damages)| {
            damages
                .iter()
                .fold(samples()[s].clone(), apply)
        }),
    ]
}

fn check_image(bytes: &[u8], max_bytes: usize, max_pixels: u64) {
    match images::clean(bytes, max_bytes, max_pixels) {
        Ok(clean) => {
            assert!(bytes.len() <= max_bytes);
            assert!(clean.width > 0 && clean.height > 0);
            assert!(u64::from(clean.width) * u64::from(clean.height) <= max_pixels);
            let stored = image::load_from_memory(&clean.bytes).expect("output decodes");
            assert_eq!(
                (stored.width(), stored.height()),
                (clean.width, clean.height)
            );
            let format = image::guess_format(bytes).expect("input format");
            assert_eq!(image::guess_format(&clean.bytes).ok(), Some(format));
            assert_eq!(clean.content_type, format.to_mime_type());
        }
        Err(e) => {
            assert_eq!(e == ImageError::TooLarge, bytes.len() > max_bytes, "{e:?}");
            assert!(is_contract_4xx(&ApiError::from(e)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any body with any Content-Type, for every JSON request type.
    #[test]
    fn json_bodies_parse_or_get_a_contract_error(
        content_type in content_type(),
        body in json_body(),
    ) {
        let ct = content_type.as_deref();
        check_json::<LogInRequest>(ct, &body);
        check_json::<SignUpRequest>(ct, &body);
        check_json::<RefreshRequest>(ct, &body);
        check_json::<UpdateProfileRequest>(ct, &body);
    }

    /// Any Authorization header: a token68 bearer token or `not_authenticated`;
    /// any token in it, the genuine one excepted, is `token_not_valid`.
    #[test]
    fn authorization_headers_and_tokens_are_refused_unless_genuine(
        value in authorization(),
    ) {
        check_authorization(value.as_deref());
    }

    /// A browser-style form, possibly damaged: a damaged one may parse or be
    /// refused with a contract error; an undamaged one within the limits gives
    /// back exactly its fields and picture.
    #[test]
    fn multipart_bodies_parse_exactly_or_get_a_contract_error(
        boundary in "[A-Za-z0-9'()+_,./:=?-]{1,60}",
        parts in prop::collection::vec(part(), 0..20),
        damage in damage(),
        max_image in 0usize..400,
    ) {
        let content_type = format!("multipart/form-data; boundary=\"{boundary}\"");
        let body = apply(encode_form(&boundary, &parts), &damage);
        let parsed = check_form(&content_type, &body, max_image);
        let images = parts.iter().filter(|(n, _, _)| n == "image").count();
        let boundary_inside = parts.iter().any(|(_, c, _)| {
            memchr::memmem::find(c, format!("\r\n--{boundary}").as_bytes()).is_some()
        });
        let within = parts.len() <= MAX_PARTS
            && images <= 1
            && parts.iter().all(|(n, c, _)| if n == "image" { c.len() <= max_image } else {
                c.len() <= MAX_FIELD_BYTES && std::str::from_utf8(c).is_ok()
            });
        if matches!(damage, Damage::None) && within && !boundary_inside {
            let form = parsed.expect("a well-formed form within the limits parses");
            let fields: Vec<(String, String)> = parts
                .iter()
                .filter(|(n, _, _)| n != "image")
                .map(|(n, c, _)| (n.clone(), String::from_utf8(c.clone()).unwrap()))
                .collect();
            prop_assert_eq!(&form.fields, &fields);
            let image = parts
                .iter()
                .find(|(n, _, _)| n == "image")
                .map(|(_, c, _)| c.clone())
                .filter(|c| !c.is_empty());
            prop_assert_eq!(&form.image, &image);
        }
    }

    /// Arbitrary bytes under any Content-Type: never a panic.
    #[test]
    fn arbitrary_multipart_input_gets_a_contract_error_or_a_bounded_form(
        content_type in prop_oneof![
            3 => "[A-Za-z0-9'()+_,./:=?-]{1,20}"
                .prop_map(|b| format!("multipart/form-data; boundary={b}")),
            1 => ".{0,80}",
        ],
        body in prop::collection::vec(any::<u8>(), 0..2048),
        max_image in 0usize..4096,
    ) {
        let _ = check_form(&content_type, &body, max_image);
    }
}

proptest! {
    // Each case decodes and re-encodes a picture: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Any bytes as an upload: a clean picture within the limits, of the
    /// format its content says, or 413/415.
    #[test]
    fn image_files_are_cleaned_or_get_a_contract_error(
        bytes in image_bytes(),
        max_bytes in prop_oneof![Just(usize::MAX), 0usize..2048],
        max_pixels in prop_oneof![Just(16_777_216u64), 1u64..100],
    ) {
        check_image(&bytes, max_bytes, max_pixels);
    }
}
