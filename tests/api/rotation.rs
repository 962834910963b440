//! Refresh-token rotation (`--rotate-refresh-tokens`): each refresh returns a new
//! refresh token and retires the old one; a retry with the immediately previous
//! token within `--refresh-reuse-interval` gets the very same successor, and any
//! other reuse ends the whole session (RFC 9700 §4.14). Concurrent refreshes with
//! one token all get that one successor, and the session keeps exactly one live
//! refresh token (checked in the database file).

use crate::harness::resilience::send_together;

use serde_json::json;

use crate::harness::*;

/// Refreshes with `token`, asserting a rotated 200; returns (access, successor).
fn rotate(srv: &Server, token: &str) -> (String, String) {
    let resp = refresh(srv, token);
    assert_eq!(resp.status, 200, "refresh failed: {}", resp.text());
    assert_token_headers(&resp);
    let body = resp.json();
    assert_keys(
        &body,
        &["access_token", "expires_in", "refresh_token", "token_type"],
    );
    assert_eq!(body["token_type"], "Bearer");
    let successor = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(successor, token, "rotation returns a new refresh token");
    assert!(
        successor.len() >= 43
            && successor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "not an opaque 256-bit base64url token: {successor:?}"
    );
    let access = body["access_token"].as_str().unwrap().to_string();
    (access, successor)
}

/// Asserts that the session is over: its refresh token and access token are
/// refused and its row is gone.
fn assert_session_ended(srv: &Server, tokens: &Tokens, current_refresh: &str, access: &[&str]) {
    assert_error(&refresh(srv, current_refresh), 400, "invalid_refresh_token");
    for token in access {
        assert_error(&get_profile(srv, token), 401, "token_not_valid");
    }
    let rows = srv.sql_i64(
        "SELECT count(*) FROM sessions WHERE id = ?1",
        [&tokens.session_id],
    );
    assert_eq!(rows, Some(0), "the session row is gone");
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 0);
}

#[test]
fn each_refresh_returns_a_successor_and_retires_the_old_token() {
    let srv = Server::with_args(&["--rotate-refresh-tokens"]);
    let (_, tokens) = new_session(&srv, "rotate");
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
    let (access1, r1) = rotate(&srv, &tokens.refresh);
    assert_eq!(
        decode_jwt(&access1).claims["sid"],
        tokens.session_id.as_str()
    );
    assert_eq!(get_profile(&srv, &access1).status, 200);
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
    let (access2, r2) = rotate(&srv, &r1);
    assert_ne!(r2, tokens.refresh);
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
    let rows = srv.sql_i64(
        "SELECT count(*) FROM refresh_tokens WHERE session_id = ?1",
        [&tokens.session_id],
    );
    assert_eq!(rows, Some(3), "R0 and R1 retired, R2 live");

    // A retry with the immediately previous token gets the same successor and
    // mints nothing new.
    let (_, again) = rotate(&srv, &r1);
    assert_eq!(again, r2, "a retry gets the same successor");
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
    let rows_after = srv.sql_i64(
        "SELECT count(*) FROM refresh_tokens WHERE session_id = ?1",
        [&tokens.session_id],
    );
    assert_eq!(rows_after, Some(3));

    // The token before that is not the immediate predecessor of the current
    // one: its reuse ends the session, current token and access tokens included.
    let resp = refresh(&srv, &tokens.refresh);
    assert_error(&resp, 400, "invalid_refresh_token");
    assert!(!resp.raw_text().contains(&tokens.refresh));
    assert_session_ended(&srv, &tokens, &r2, &[&tokens.access, &access1, &access2]);
    // The retry rule does not revive it.
    assert_error(&refresh(&srv, &r1), 400, "invalid_refresh_token");
}

#[test]
fn a_retry_within_the_reuse_interval_gets_the_same_successor() {
    let srv = Server::with_args(&["--rotate-refresh-tokens", "--refresh-reuse-interval", "100"]);
    let (_, tokens) = new_session(&srv, "rotate-retry");
    let (access1, r1) = rotate(&srv, &tokens.refresh);
    // A parallel tab retries 50 s later (moved in the file): same successor,
    // and both tabs' access tokens work.
    srv.sql_execute(
        "UPDATE refresh_tokens SET replaced_at = replaced_at - 50
         WHERE session_id = ?1 AND replaced_at IS NOT NULL",
        [&tokens.session_id],
    );
    let (access1b, r1b) = rotate(&srv, &tokens.refresh);
    assert_eq!(r1b, r1);
    assert_ne!(access1b, access1, "a fresh access token each time");
    assert_eq!(get_profile(&srv, &access1).status, 200);
    assert_eq!(get_profile(&srv, &access1b).status, 200);
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
    // The successor carries on as usual.
    let (_, r2) = rotate(&srv, &r1);
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
    let (_, r3) = rotate(&srv, &r2);
    assert_ne!(r3, r1);
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
}

#[test]
fn a_retry_after_the_reuse_interval_ends_the_session() {
    let srv = Server::with_args(&["--rotate-refresh-tokens"]);
    let (_, tokens) = new_session(&srv, "rotate-late");
    let (access1, r1) = rotate(&srv, &tokens.refresh);
    // The default interval is 10 s; the retry comes 11 s after the rotation.
    srv.sql_execute(
        "UPDATE refresh_tokens SET replaced_at = replaced_at - 11
         WHERE session_id = ?1 AND replaced_at IS NOT NULL",
        [&tokens.session_id],
    );
    assert_error(
        &refresh(&srv, &tokens.refresh),
        400,
        "invalid_refresh_token",
    );
    assert_session_ended(&srv, &tokens, &r1, &[&tokens.access, &access1]);
}

#[test]
fn without_rotation_the_refresh_token_is_never_replaced() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "no-rotate");
    for _ in 0..3 {
        let resp = refresh(&srv, &tokens.refresh);
        assert_eq!(resp.status, 200, "{}", resp.text());
        let body = resp.json();
        assert!(
            body.get("refresh_token").is_none() || body["refresh_token"] == tokens.refresh.as_str(),
            "{body}"
        );
    }
    let replaced = srv.sql_i64(
        "SELECT count(*) FROM refresh_tokens WHERE session_id = ?1 AND replaced_at IS NOT NULL",
        [&tokens.session_id],
    );
    assert_eq!(replaced, Some(0));
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
}

#[test]
fn concurrent_refreshes_with_one_token_get_one_successor() {
    const THREADS: usize = 16;
    const ROUNDS: usize = 3;
    let srv = Server::with_args(&["--rotate-refresh-tokens"]);
    let (_, tokens) = new_session(&srv, "rotate-race");
    let mut current = tokens.refresh.clone();
    for round in 0..ROUNDS {
        let request = srv
            .post("/refresh/")
            .json(&json!({ "refresh_token": current }));
        let answers = send_together(&srv, &[&request; THREADS]);
        let mut successors = Vec::new();
        for resp in &answers {
            if resp.status == 200 {
                assert_token_headers(resp);
                let body = resp.json();
                let successor = body["refresh_token"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no successor: {body}"));
                successors.push(successor.to_string());
            } else {
                assert_error(resp, 400, "invalid_refresh_token");
            }
        }
        successors.dedup();
        assert_eq!(
            successors.len(),
            1,
            "round {round}: every success names the single successor: {successors:?}"
        );
        assert_ne!(successors[0], current);
        assert_eq!(
            srv.live_refresh_tokens(&tokens.session_id),
            1,
            "round {round}: exactly one live refresh token"
        );
        let rows = srv.sql_i64(
            "SELECT count(*) FROM refresh_tokens WHERE session_id = ?1",
            [&tokens.session_id],
        );
        assert_eq!(rows, Some(round as i64 + 2), "one successor per round");
        current = successors.pop().unwrap();
    }
    // The session and its latest token are alive and well.
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    rotate(&srv, &current);
    assert_eq!(srv.live_refresh_tokens(&tokens.session_id), 1);
}
