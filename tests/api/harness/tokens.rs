//! Helpers for the private-token, session, revocation and signing-key tests:
//! issue and list private tokens (checking the 201 shape), list sessions,
//! `POST /revoke`, `latchkey keys …` on the server's file, SQL on that file (the
//! test owns it: read rows, move times instead of sleeping), RFC 3339 ↔ Unix.

use std::path::Path;

use rusqlite::{Connection, Params};
use serde_json::{Value, json};

use super::domain::assert_keys;
use super::domain::{Tokens, assert_token_headers, is_rfc3339_utc, is_uuid};
use super::http::Response;
use super::lifecycle::{self, admin_ok};
use super::server::Server;

/// What `POST /tokens/` (or a rotation) answered with.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: String,
    pub name: String,
    pub token: String,
    pub created_at: String,
    pub expires_at: String,
    pub body: Value,
}

/// `POST /tokens/` with a body, as the login session `access`.
pub fn post_private_token(srv: &Server, access: &str, body: &Value) -> Response {
    srv.post("/tokens/").bearer(access).json(body).send()
}

/// Asserts a `201` private-token answer (`POST /tokens/` or a rotation): the
/// five keys, token headers, a `pt+jwt`-shaped secret; returns it.
pub fn expect_private_token(resp: &Response) -> IssuedToken {
    assert_eq!(
        resp.status,
        201,
        "private token not created: {}",
        resp.text()
    );
    assert_token_headers(resp);
    let body = resp.json();
    assert_keys(&body, &["created_at", "expires_at", "id", "name", "token"]);
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    let created = IssuedToken {
        id: text("id"),
        name: text("name"),
        token: text("token"),
        created_at: text("created_at"),
        expires_at: text("expires_at"),
        body: body.clone(),
    };
    assert!(is_uuid(&created.id), "id: {body}");
    assert_eq!(created.token.split('.').count(), 3, "token: {body}");
    assert!(is_rfc3339_utc(&created.created_at), "created_at: {body}");
    assert!(is_rfc3339_utc(&created.expires_at), "expires_at: {body}");
    created
}

/// Creates a private token that expires in `expires_in` seconds.
pub fn issue_private_token(srv: &Server, access: &str, name: &str, expires_in: i64) -> IssuedToken {
    let resp = post_private_token(
        srv,
        access,
        &json!({"name": name, "expires_in": expires_in}),
    );
    let created = expect_private_token(&resp);
    assert_eq!(created.name, name);
    created
}

/// `GET /tokens/` → the `tokens` array (asserting 200).
pub fn list_private_tokens(srv: &Server, access: &str) -> Vec<Value> {
    let resp = srv.get("/tokens/").bearer(access).send();
    assert_eq!(resp.status, 200, "list tokens: {}", resp.text());
    resp.json()["tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no tokens array: {}", resp.text()))
        .clone()
}

/// `GET /sessions/` → the `sessions` array (asserting 200).
pub fn list_sessions(srv: &Server, access: &str) -> Vec<Value> {
    let resp = srv.get("/sessions/").bearer(access).send();
    assert_eq!(resp.status, 200, "list sessions: {}", resp.text());
    resp.json()["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions array: {}", resp.text()))
        .clone()
}

/// `POST /revoke` `{"token"}` without authentication.
pub fn post_revoke(srv: &Server, token: &str) -> Response {
    srv.post("/revoke").json(&json!({ "token": token })).send()
}

/// Asserts the RFC 7009 answer: 200, `{}`, no-store.
pub fn assert_revoked_answer(resp: &Response) {
    assert_eq!(resp.status, 200, "revoke: {}", resp.text());
    assert_eq!(resp.json(), json!({}), "revoke answers {{}}");
    assert_token_headers(resp);
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f]Z` into Unix seconds.
pub fn unix_of(rfc3339: &str) -> i64 {
    assert!(is_rfc3339_utc(rfc3339), "not RFC 3339 UTC: {rfc3339:?}");
    let num = |r: std::ops::Range<usize>| -> i64 { rfc3339[r].parse().unwrap() };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19)
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_of(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl Server {
    /// A read-write connection to the server's database (WAL, so it works while
    /// the server runs; a busy timeout rides out the server's own writes).
    pub fn sql_conn(&self) -> Connection {
        lifecycle::open_db(&self.db)
    }

    /// Runs one statement on the server's database; returns the rows changed.
    pub fn sql_execute(&self, sql: &str, params: impl Params) -> usize {
        self.sql_conn()
            .execute(sql, params)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs a query for one integer (a count, a time) on the server's database.
    pub fn sql_i64(&self, sql: &str, params: impl Params) -> Option<i64> {
        self.sql_conn()
            .query_row(sql, params, |r| r.get::<_, Option<i64>>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Live refresh tokens of a session (not replaced), as stored.
    pub fn live_refresh_tokens(&self, session_id: &str) -> i64 {
        self.sql_i64(
            "SELECT count(*) FROM refresh_tokens WHERE session_id = ?1 AND replaced_at IS NULL",
            [session_id],
        )
        .unwrap()
    }
}

/// `latchkey keys rotate --db DB`, asserting success; returns its stdout.
pub fn keys_rotate(db: &Path) -> String {
    admin_ok(db, &["keys", "rotate"], "")
}

/// `latchkey keys rotate --now --db DB`, asserting success; returns its stdout.
pub fn keys_rotate_now(db: &Path) -> String {
    admin_ok(db, &["keys", "rotate", "--now"], "")
}

/// `latchkey keys list --db DB`, asserting success; returns its stdout.
pub fn keys_list(db: &Path) -> String {
    admin_ok(db, &["keys", "list"], "")
}

/// The kids the JWKS publishes now, in its order.
pub fn published_kids(srv: &Server) -> Vec<String> {
    super::jwt::jwks_keys(srv)
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// The `kid` in a token's header.
pub fn kid_of(token: &str) -> String {
    super::jwt::decode_jwt(token).header["kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

/// `POST /login/` with a `User-Agent` header; asserts 200 like `log_in`.
pub fn log_in_with_agent(srv: &Server, email: &str, password: &str, agent: &str) -> Tokens {
    let resp = srv
        .post("/login/")
        .header("User-Agent", agent)
        .json(&json!({"email": email, "password": password}))
        .send();
    assert_eq!(resp.status, 200, "log in failed: {}", resp.text());
    assert_token_headers(&resp);
    let body = resp.json();
    let text = |key: &str| body[key].as_str().expect(key).to_string();
    Tokens {
        access: text("access_token"),
        refresh: text("refresh_token"),
        session_id: text("session_id"),
        user: body["user"].clone(),
        body: body.clone(),
    }
}
