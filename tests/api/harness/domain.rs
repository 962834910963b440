//! Helpers that speak the contract's language: sign up, log in, refresh, read the
//! profile, and `assert_error`, which checks a status, its `code`, the `detail`
//! and the headers the contract requires with that status, all together.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use super::http::{Request, Response};
use super::server::Server;

/// A strong password that no common-password list holds.
pub const PASSWORD: &str = "correct horse battery staple 7";

/// A valid display name.
pub const NAME: &str = "Ada Lovelace";

impl Server {
    /// A request to this server (send it with `.send()`).
    pub fn request(&self, method: &str, path: &str) -> Request {
        Request::new(self.addr, method, path)
    }

    pub fn get(&self, path: &str) -> Request {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Request {
        self.request("POST", path)
    }

    pub fn put(&self, path: &str) -> Request {
        self.request("PUT", path)
    }

    pub fn patch(&self, path: &str) -> Request {
        self.request("PATCH", path)
    }
}

/// An email address no other test (or earlier run) uses.
pub fn unique_email(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{n}-{nanos}@example.test", std::process::id())
}

/// A signed-up account.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub password: String,
    pub user: Value,
}

/// What a successful login returns.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
    pub user: Value,
    pub body: Value,
}

/// `POST /signup/` with a name; asserts 201 and returns the USER.
pub fn sign_up(srv: &Server, email: &str, password: &str, name: &str) -> Value {
    let resp = srv
        .post("/signup/")
        .json(&json!({"email": email, "password": password, "name": name}))
        .send();
    assert_eq!(resp.status, 201, "sign up failed: {}", resp.text());
    let body = resp.json();
    assert_user(&body["user"]);
    body["user"].clone()
}

/// Signs up a fresh account with a unique email, `PASSWORD` and `NAME`.
pub fn new_account(srv: &Server, tag: &str) -> Account {
    let email = unique_email(tag);
    let user = sign_up(srv, &email, PASSWORD, NAME);
    Account {
        email,
        password: PASSWORD.to_string(),
        user,
    }
}

/// `POST /login/`; asserts 200 with the token headers and returns the tokens.
pub fn log_in(srv: &Server, email: &str, password: &str) -> Tokens {
    log_in_at(srv, "/login/", email, password)
}

/// Logs in at a given path of either family.
pub fn log_in_at(srv: &Server, path: &str, email: &str, password: &str) -> Tokens {
    let resp = srv
        .post(path)
        .json(&json!({"email": email, "password": password}))
        .send();
    assert_eq!(resp.status, 200, "log in at {path} failed: {}", resp.text());
    assert_token_headers(&resp);
    let body = resp.json();
    let text = |key: &str| {
        body[key]
            .as_str()
            .unwrap_or_else(|| panic!("login response lacks string {key:?}: {body}"))
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

/// Signs up a fresh account and logs it in.
pub fn new_session(srv: &Server, tag: &str) -> (Account, Tokens) {
    let account = new_account(srv, tag);
    let tokens = log_in(srv, &account.email, &account.password);
    (account, tokens)
}

/// `POST /refresh/` with `{"refresh_token"}`.
pub fn refresh(srv: &Server, refresh_token: &str) -> Response {
    srv.post("/refresh/")
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
}

/// `GET /profile/` with a Bearer token.
pub fn get_profile(srv: &Server, access_token: &str) -> Response {
    srv.get("/profile/").bearer(access_token).send()
}

/// Asserts `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn assert_token_headers(resp: &Response) {
    let cache = resp.header("Cache-Control").unwrap_or_default();
    assert!(
        cache.to_ascii_lowercase().contains("no-store"),
        "token response lacks Cache-Control: no-store: {:?}",
        resp.headers
    );
    let pragma = resp.header("Pragma").unwrap_or_default();
    assert!(
        pragma.eq_ignore_ascii_case("no-cache"),
        "token response lacks Pragma: no-cache: {:?}",
        resp.headers
    );
}

/// Asserts an error response: status, JSON `code`, a string `detail`, and the
/// headers and extra fields the contract ties to that status or code.
pub fn assert_error(resp: &Response, status: u16, code: &str) {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {code}, got {} {:?} {}",
        resp.status,
        resp.headers,
        resp.text()
    );
    let content_type = resp.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "error is not JSON: Content-Type {content_type:?}"
    );
    let body = resp.json();
    assert_eq!(body["code"], code, "wrong code in {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail is not a non-empty string in {body}"
    );
    match code {
        "validation_error" => assert!(
            body["fields"].as_object().is_some_and(|f| !f.is_empty()),
            "validation_error without fields: {body}"
        ),
        "invalid_refresh_token" => {
            assert_eq!(body["error"], "invalid_grant", "no OAuth error in {body}")
        }
        _ => {}
    }
    let www = resp.header("WWW-Authenticate").unwrap_or_default();
    match status {
        401 => {
            assert!(
                www.starts_with("Bearer"),
                "401 without WWW-Authenticate: Bearer: {:?}",
                resp.headers
            );
            if matches!(code, "token_not_valid" | "token_expired") {
                assert!(
                    www.contains("error=\"invalid_token\""),
                    "401 {code} without error=\"invalid_token\": {www:?}"
                );
            }
        }
        403 => assert!(
            www.starts_with("Bearer") && www.contains("error=\"insufficient_scope\""),
            "403 without insufficient_scope: {www:?}"
        ),
        405 => assert!(
            resp.header("Allow").is_some_and(|a| !a.is_empty()),
            "405 without Allow: {:?}",
            resp.headers
        ),
        429 | 503 => assert!(
            resp.header("Retry-After").is_some(),
            "{status} without Retry-After: {:?}",
            resp.headers
        ),
        _ => {}
    }
}

/// Asserts a 400 `validation_error` whose `fields` name exactly `fields`.
pub fn assert_validation_error(resp: &Response, fields: &[&str]) {
    assert_error(resp, 400, "validation_error");
    let body = resp.json();
    let mut named: Vec<&str> = body["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    named.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(named, want, "fields named in {body}");
    for value in body["fields"].as_object().unwrap().values() {
        assert!(
            value.as_str().is_some_and(|v| !v.is_empty()),
            "a field's message is not a sentence: {body}"
        );
    }
}

/// Asserts the USER shape: every key present, ids and times well formed, no hash.
pub fn assert_user(user: &Value) {
    let obj = user
        .as_object()
        .unwrap_or_else(|| panic!("USER is not an object: {user}"));
    for key in [
        "id",
        "email",
        "email_verified",
        "pending_email",
        "name",
        "first_name",
        "last_name",
        "image_url",
        "created_at",
        "updated_at",
    ] {
        assert!(obj.contains_key(key), "USER lacks {key:?}: {user}");
    }
    assert!(
        is_uuid(user["id"].as_str().unwrap_or_default()),
        "id: {user}"
    );
    assert!(
        user["email"].is_string() && user["name"].is_string(),
        "{user}"
    );
    for key in ["created_at", "updated_at"] {
        assert!(
            is_rfc3339_utc(user[key].as_str().unwrap_or_default()),
            "{key} is not RFC 3339 UTC: {user}"
        );
    }
    assert!(user["email_verified"].is_boolean(), "{user}");
    for key in ["first_name", "last_name", "image_url", "pending_email"] {
        assert!(
            user[key].is_null() || user[key].is_string(),
            "{key}: {user}"
        );
    }
    for (key, _) in obj {
        let key = key.to_ascii_lowercase();
        assert!(
            !key.contains("password") && !key.contains("hash"),
            "USER exposes {key:?}: {user}"
        );
    }
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1)))
}

/// `token` with the base64url character at byte `at` replaced by another one (a
/// middle character, so no decoder can ignore the change as padding bits).
pub fn tamper(token: &str, at: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("token is ASCII")
}

/// Asserts that a JSON object has exactly these keys (in any order).
pub fn assert_keys(value: &Value, expected: &[&str]) {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{value}");
}
