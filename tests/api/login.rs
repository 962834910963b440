//! Log in on both path families: the token response and its headers, sessions
//! (`session_id` and the `sid` claim), one `invalid_credentials` answer for an
//! unknown email and a wrong password, and passwords used exactly as received.

use std::time::Instant;

use serde_json::json;

use crate::harness::*;

#[test]
fn log_in_returns_tokens_a_session_and_the_user() {
    let srv = Server::start();
    let account = new_account(&srv, "login");
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": account.password}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_token_headers(&resp);
    assert!(
        resp.header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let body = resp.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600, "{body}");
    assert_eq!(body["refresh_expires_in"], 2_592_000, "{body}");
    assert!(
        is_uuid(body["session_id"].as_str().unwrap_or_default()),
        "{body}"
    );
    assert_user(&body["user"]);
    assert_eq!(body["user"], account.user, "the same USER as at sign up");

    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert!(
        refresh.len() >= 43,
        "a refresh token of 256 random bits needs 43 base64url characters: {}",
        refresh.len()
    );
    assert!(
        refresh
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "refresh token is not URL-safe"
    );
    assert_eq!(
        refresh.split('.').count(),
        1,
        "the refresh token is opaque, not a JWT"
    );
    let access = body["access_token"].as_str().expect("access_token");
    assert_eq!(decode_jwt(access).claims["sid"], body["session_id"]);
}

#[test]
fn log_in_answers_on_both_path_families_with_and_without_slash() {
    let srv = Server::start();
    let account = new_account(&srv, "paths");
    for path in ["/login/", "/login", "/api/auth/login", "/api/auth/login/"] {
        let tokens = log_in_at(&srv, path, &account.email, &account.password);
        assert_eq!(get_profile(&srv, &tokens.access).status, 200, "{path}");
    }
}

#[test]
fn each_log_in_opens_its_own_session() {
    let srv = Server::start();
    let account = new_account(&srv, "sessions");
    let first = log_in(&srv, &account.email, &account.password);
    let second = log_in(&srv, &account.email, &account.password);
    assert_ne!(first.session_id, second.session_id);
    assert_ne!(first.refresh, second.refresh);
    assert_ne!(first.access, second.access);
    assert_eq!(
        decode_jwt(&first.access).claims["sid"],
        first.session_id.as_str()
    );
    assert_eq!(
        decode_jwt(&second.access).claims["sid"],
        second.session_id.as_str()
    );
}

#[test]
fn unknown_email_and_wrong_password_get_the_same_answer() {
    let srv = Server::start();
    let account = new_account(&srv, "creds");
    let wrong = "correct horse battery staple 8";
    let unknown = unique_email("nobody");
    let mut timings = Vec::new();
    let mut bodies = Vec::new();
    for (email, password) in [
        (&account.email, wrong),
        (&unknown, PASSWORD),
        (&account.email, wrong),
        (&unknown, PASSWORD),
    ] {
        let started = Instant::now();
        let resp = srv
            .post("/api/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send();
        timings.push(started.elapsed());
        assert_error(&resp, 401, "invalid_credentials");
        assert!(!resp.text().contains(password), "error echoes the password");
        bodies.push(resp.json());
    }
    assert_eq!(bodies[0], bodies[1], "one answer for both");
    // An unknown email still costs a password hash: an early return would be
    // a hundred times faster, so a factor of ten survives a loaded machine.
    let wrong_password = timings[0].min(timings[2]);
    let unknown_email = timings[1].min(timings[3]);
    assert!(
        unknown_email * 10 >= wrong_password,
        "unknown email answered much faster ({unknown_email:?}) than a wrong password ({wrong_password:?})"
    );
}

#[test]
fn email_at_log_in_ignores_case() {
    let srv = Server::start();
    let email = unique_email("MixedCase");
    sign_up(&srv, &email, PASSWORD, NAME);
    let tokens = log_in(&srv, &email.to_lowercase(), PASSWORD);
    assert_eq!(tokens.user["email"], email.as_str());
    log_in(&srv, &email.to_uppercase(), PASSWORD);
}

#[test]
fn the_password_is_used_exactly_as_received() {
    let srv = Server::start();
    let email = unique_email("exact");
    let password = "  Correct Horse Battery Staple 7  ";
    sign_up(&srv, &email, password, NAME);
    for other in [
        password.trim(),
        &password.to_lowercase(),
        &password.to_uppercase(),
    ] {
        let resp = srv
            .post("/login/")
            .json(&json!({"email": email, "password": other}))
            .send();
        assert_error(&resp, 401, "invalid_credentials");
    }
    log_in(&srv, &email, password);
}

#[test]
fn log_in_body_errors() {
    let srv = Server::start();
    let resp = srv
        .post("/login/")
        .body_with_type("application/json", "{\"email\": \"a@b.test\", ")
        .send();
    assert_error(&resp, 400, "invalid_json");
    let resp = srv
        .post("/login/")
        .body_with_type("text/plain", "email=a@b.test")
        .send();
    assert_error(&resp, 415, "unsupported_media_type");
    let resp = srv.get("/login/").send();
    assert_error(&resp, 405, "method_not_allowed");
    assert!(resp.header("Allow").unwrap().contains("POST"));
}

#[test]
fn passwords_and_refresh_tokens_are_stored_only_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder().db_dir(dir.path()).start();
    let (_, tokens) = new_session(&srv, "atrest");
    srv.stop();
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let holds = |secret: &str| stored.windows(secret.len()).any(|w| w == secret.as_bytes());
    assert!(
        holds(&tokens.session_id),
        "the check itself finds stored text"
    );
    assert!(!holds(PASSWORD), "the password is stored in clear");
    assert!(
        !holds(&tokens.refresh),
        "the refresh token is stored in clear"
    );
    assert!(!holds(&tokens.access), "the access token is stored");
}
