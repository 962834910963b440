//! Helpers for the throttling, hostile-input, concurrency and crash tests:
//! sending a request without panicking when the server is gone, judging any
//! answer against the contract's error table, and checking that a database
//! file is whole and holds no orphan rows.

use std::io;
use std::path::Path;

use super::domain::assert_error;
use super::http::{Conn, Request, Response};
use super::lifecycle::open_db;
use super::server::Server;

/// Sends a request on a fresh connection; an error instead of a panic when
/// the server cannot be reached or answers nothing (it was killed).
pub fn try_send(request: &Request, addr: std::net::SocketAddr) -> io::Result<Response> {
    let mut conn = Conn::try_open(addr)?;
    conn.write_raw(&request.to_bytes())?;
    conn.read_response()
}

/// Every `(status, code)` pair of the contract's error table.
pub const CONTRACT_ERRORS: &[(u16, &str)] = &[
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
    (503, "overloaded"),
];

/// Asserts that an error answer is a row of the contract's error table, with
/// the body and headers `assert_error` demands; `allowed` narrows the codes
/// this request may get. Success answers are left to the caller.
pub fn assert_contract_error(resp: &Response, allowed: &[&str]) {
    assert!(resp.status >= 400, "not an error: {}", resp.status);
    let code = resp.json()["code"].as_str().unwrap_or_default().to_string();
    assert!(
        CONTRACT_ERRORS.contains(&(resp.status, code.as_str())),
        "{} {code:?} is not in the contract's error table: {}",
        resp.status,
        resp.text()
    );
    assert!(
        allowed.contains(&code.as_str()),
        "{} {code} where only {allowed:?} may answer: {}",
        resp.status,
        resp.text()
    );
    assert_error(resp, resp.status, &code);
}

/// `PRAGMA integrity_check` is `ok`, `PRAGMA foreign_key_check` finds nothing,
/// and no session, refresh token, private token or image outlives its owner.
pub fn assert_database_consistent(db: &Path) {
    let conn = open_db(db);
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(integrity, ["ok"], "integrity_check of {}", db.display());
    let violations: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(violations, 0, "foreign_key_check of {}", db.display());
    for (what, sql) in [
        (
            "sessions without a user",
            "SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id \
             WHERE u.id IS NULL",
        ),
        (
            "refresh tokens without a session",
            "SELECT count(*) FROM refresh_tokens t LEFT JOIN sessions s ON s.id = t.session_id \
             WHERE s.id IS NULL",
        ),
        (
            "sessions without a live refresh token",
            "SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t \
             WHERE t.session_id = s.id AND t.replaced_at IS NULL)",
        ),
        (
            "private tokens without a user",
            "SELECT count(*) FROM private_tokens p LEFT JOIN users u ON u.id = p.user_id \
             WHERE u.id IS NULL",
        ),
        (
            "images without a user",
            "SELECT count(*) FROM images i LEFT JOIN users u ON u.id = i.user_id \
             WHERE u.id IS NULL",
        ),
    ] {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{what} in {}", db.display());
    }
}

/// Rows of `table` (a count over the whole table).
pub fn count_all(db: &Path, table: &str) -> i64 {
    open_db(db)
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
}

/// Sends each request on its own connection, all opened first and released
/// together by a barrier, so the requests reach the server at the same moment;
/// the answers come back in the order of `requests`.
pub fn send_together(srv: &Server, requests: &[&Request]) -> Vec<Response> {
    let barrier = std::sync::Barrier::new(requests.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .iter()
            .map(|request| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut conn = Conn::open(srv.addr);
                    barrier.wait();
                    request.send_on(&mut conn)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
