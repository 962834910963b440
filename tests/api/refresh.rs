//! Refresh in the default, non-rotating mode on both path families: a new access
//! token for the same session, the refresh token staying valid, and
//! `invalid_refresh_token` (with `"error": "invalid_grant"`) for unknown, expired
//! or wrong-type tokens.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[test]
fn refresh_returns_a_new_access_token_for_the_same_session() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "refresh");
    let resp = refresh(&srv, &tokens.refresh);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_token_headers(&resp);
    let body = resp.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    if let Some(same) = body.get("refresh_token") {
        assert_eq!(same, tokens.refresh.as_str(), "not rotating by default");
    }
    let access = body["access_token"].as_str().expect("access_token");
    let old = decode_jwt(&tokens.access).claims;
    let new = decode_jwt(access).claims;
    assert_eq!(new["sid"], tokens.session_id.as_str());
    assert_eq!(new["sub"], old["sub"]);
    assert_ne!(new["jti"], old["jti"], "every access token has its own jti");
    assert!(verify_against_jwks(&srv, access));
    let profile = get_profile(&srv, access);
    assert_eq!(profile.status, 200, "{}", profile.text());
    assert_eq!(profile.json(), tokens.user);
    // The old access token is still good too.
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
}

#[test]
fn the_refresh_token_stays_valid_and_the_refresh_key_is_accepted() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "again");
    for path in [
        "/refresh/",
        "/refresh",
        "/api/auth/refresh",
        "/api/auth/refresh/",
    ] {
        let resp = srv
            .post(path)
            .json(&json!({ "refresh_token": tokens.refresh }))
            .send();
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert_token_headers(&resp);
    }
    let resp = srv
        .post("/api/auth/refresh")
        .json(&json!({ "refresh": tokens.refresh }))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.json()["access_token"].is_string());
}

#[test]
fn unknown_and_wrong_type_refresh_tokens_are_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "unknown");
    let unknown = "A".repeat(43);
    let altered = tamper(&tokens.refresh, 10);
    for token in [
        unknown.as_str(),
        altered.as_str(),
        tokens.access.as_str(),
        "",
    ] {
        for path in ["/refresh/", "/api/auth/refresh"] {
            let resp = srv
                .post(path)
                .json(&json!({ "refresh_token": token }))
                .send();
            assert_error(&resp, 400, "invalid_refresh_token");
            if !token.is_empty() {
                assert!(!resp.raw_text().contains(token), "error echoes the token");
            }
        }
    }
}

#[test]
fn a_refresh_token_is_never_a_bearer_token() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "notbearer");
    let resp = get_profile(&srv, &tokens.refresh);
    assert_error(&resp, 401, "token_not_valid");
    assert!(!resp.raw_text().contains(&tokens.refresh));
}

#[test]
fn an_expired_refresh_token_is_refused() {
    let srv = Server::with_args(&["--refresh-ttl", "1"]);
    let (_, tokens) = new_session(&srv, "expired");
    assert_eq!(tokens.body["refresh_expires_in"], 1);
    let refused = poll_until(Duration::from_secs(5), || {
        refresh(&srv, &tokens.refresh).status == 400
    });
    assert!(refused, "a refresh token past --refresh-ttl still works");
    assert_error(
        &refresh(&srv, &tokens.refresh),
        400,
        "invalid_refresh_token",
    );
}

#[test]
fn refresh_body_errors() {
    let srv = Server::start();
    let resp = srv
        .post("/refresh/")
        .body_with_type("application/json", "nope")
        .send();
    assert_error(&resp, 400, "invalid_json");
    let resp = srv
        .post("/refresh/")
        .body_with_type("text/plain", "refresh_token=x")
        .send();
    assert_error(&resp, 415, "unsupported_media_type");
    let resp = srv.get("/api/auth/refresh").send();
    assert_error(&resp, 405, "method_not_allowed");
    assert!(resp.header("Allow").unwrap().contains("POST"));
}
