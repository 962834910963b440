//! TOTP codes computed independently of the service (and of its TOTP crate):
//! HMAC-SHA-1 over the time step with `ring`, dynamic truncation to 6 digits
//! (RFC 4226 §5.3, RFC 6238 §4), checked against RFC 6238's own test vectors.
//! Plus the steps of an enrolment and of a login with a second factor.

use ring::hmac;
use serde_json::{Value, json};

use super::domain::{Tokens, assert_token_headers};
use super::http::Response;
use super::jwt::now;
use super::server::Server;

/// Seconds per step (RFC 6238 §5.2's default, and the contract's).
pub const STEP: i64 = 30;

/// RFC 4648 base32 without padding → bytes.
pub fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0u32);
    for c in text.trim_end_matches('=').chars() {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            other => panic!("not base32: {other:?} in {text}"),
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The HOTP value of `counter` with `digits` digits (RFC 4226 §5.3).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

/// The 6-digit TOTP code of a base32 secret at Unix time `at`.
pub fn code_at(secret_b32: &str, at: i64) -> String {
    hotp(&base32_decode(secret_b32), (at / STEP) as u64, 6)
}

/// A 6-digit string that is the code of none of the steps around now.
pub fn wrong_code(secret_b32: &str) -> String {
    let near: Vec<String> = (-3..=3)
        .map(|k| code_at(secret_b32, now() + k * STEP))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// `POST /mfa/totp/` with the password → the base32 secret (asserting 200 and
/// the answer's shape).
pub fn enrol(srv: &Server, access: &str, password: &str) -> String {
    let resp = srv
        .post("/mfa/totp/")
        .bearer(access)
        .json(&json!({ "password": password }))
        .send();
    assert_eq!(resp.status, 200, "enrol: {}", resp.text());
    assert_token_headers(&resp);
    let body = resp.json();
    let secret = body["secret"].as_str().expect("secret").to_string();
    assert_eq!(base32_decode(&secret).len(), 20, "160 bits: {body}");
    secret
}

/// Enrols and confirms a factor → (secret, recovery codes).
pub fn turn_on(srv: &Server, access: &str, password: &str) -> (String, Vec<String>) {
    let secret = enrol(srv, access, password);
    let resp = srv
        .post("/mfa/totp/confirm/")
        .bearer(access)
        .json(&json!({ "code": code_at(&secret, now()) }))
        .send();
    assert_eq!(resp.status, 200, "confirm: {}", resp.text());
    assert_token_headers(&resp);
    (secret, recovery_codes(&resp))
}

/// The `recovery_codes` of an answer: ten distinct strings.
pub fn recovery_codes(resp: &Response) -> Vec<String> {
    let body = resp.json();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no recovery_codes in {body}"))
        .iter()
        .map(|c| c.as_str().expect("a code is a string").to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{body}");
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "{body}");
    codes
}

/// `POST /login/` with the right password for an account with a factor →
/// the `mfa_token` (asserting the `mfa_required` answer).
pub fn password_step(srv: &Server, email: &str, password: &str) -> String {
    let resp = srv
        .post("/login/")
        .json(&json!({"email": email, "password": password}))
        .send();
    super::domain::assert_error(&resp, 401, "mfa_required");
    assert_token_headers(&resp);
    resp.json()["mfa_token"]
        .as_str()
        .expect("mfa_token")
        .to_string()
}

/// `POST /login/mfa/` with `{"mfa_token"} + proof`.
pub fn second_step(srv: &Server, mfa_token: &str, proof: Value) -> Response {
    let mut body = proof;
    body["mfa_token"] = json!(mfa_token);
    srv.post("/login/mfa/").json(&body).send()
}

/// A successful second step → the tokens.
pub fn expect_login(resp: &Response) -> Tokens {
    assert_eq!(resp.status, 200, "second step: {}", resp.text());
    assert_token_headers(resp);
    let body = resp.json();
    let text = |key: &str| {
        body[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {body}"))
            .to_string()
    };
    Tokens {
        access: text("access_token"),
        refresh: text("refresh_token"),
        session_id: text("session_id"),
        user: body["user"].clone(),
        body: body.clone(),
    }
}

#[test]
fn the_code_helper_matches_the_rfc_6238_test_vectors() {
    // RFC 6238 Appendix B, SHA-1 rows; the seed is the ASCII "12345678901234567890".
    let seed = b"12345678901234567890";
    for (time, code) in [
        (59u64, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(hotp(seed, time / 30, 8), code, "T = {time}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), seed);
    assert_eq!(code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082");
}
