//! API.md "Email: verification, password reset, notices", read through the
//! mails the server writes into its mail directory: verification at sign-up,
//! resend, `--require-verified-email`, password reset (single use, newest
//! link wins, expiry, every session ends, no enumeration), the confirmed
//! email change, security notices, and the link pages.

use crate::harness::lifecycle::open_db;
use crate::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

const VERIFY: &str = "/account/verify-email";
const RESET: &str = "/account/reset-password";
const CONFIRM: &str = "/account/confirm-email";
const NEW_PASSWORD: &str = "purple monkey dishwasher 42";

fn post_token(srv: &Server, path: &str, token: &str) -> Response {
    srv.post(path).json(&json!({ "token": token })).send()
}

#[test]
fn sign_up_mails_a_verification_link_that_works_once() {
    let srv = Server::start();
    let email = unique_email("verify");
    let user = sign_up(&srv, &email, PASSWORD, NAME);
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["pending_email"], serde_json::Value::Null);
    let token = srv.wait_for_link(&email, VERIFY);
    assert!(token.len() >= 43, "{token}");
    let mail = &srv.mails_to(&email)[0].text;
    for needle in [
        "Subject: latchkey: confirm your email address",
        "127.0.0.1",
        "If this wasn",
    ] {
        assert!(mail.contains(needle), "{needle} in {mail}");
    }

    // Opening the link (as a mail scanner would) spends nothing.
    let page = srv.get(&format!("{VERIFY}?token={token}")).send();
    assert_eq!(page.status, 200);
    let tokens = log_in(&srv, &email, PASSWORD);
    assert_eq!(tokens.user["email_verified"], false);

    let resp = post_token(&srv, "/email/verify/", &token);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(
        get_profile(&srv, &tokens.access).json()["email_verified"],
        true
    );
    assert_error(
        &post_token(&srv, "/email/verify/", &token),
        400,
        "invalid_email_token",
    );
    assert_error(
        &post_token(
            &srv,
            "/email/verify",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        400,
        "invalid_email_token",
    );
    let resp = srv.post("/email/verify/").json(&json!({})).send();
    assert_validation_error(&resp, &["token"]);
    // No link token ever reaches the log.
    assert!(!srv.log().contains(&token), "{}", srv.log());
}

#[test]
fn a_resent_link_supersedes_the_first() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "resend");
    let first = srv.wait_for_link(&account.email, VERIFY);
    let resp = srv.post("/email/verify/resend/").send();
    assert_error(&resp, 401, "not_authenticated");
    let resp = srv
        .post("/email/verify/resend/")
        .bearer(&tokens.access)
        .send();
    assert_eq!(resp.status, 202, "{}", resp.text());
    let second = srv.wait_for_mail(&account.email, 2).token(VERIFY).unwrap();
    assert_ne!(first, second);
    assert_error(
        &post_token(&srv, "/email/verify/", &first),
        400,
        "invalid_email_token",
    );
    assert_eq!(post_token(&srv, "/email/verify/", &second).status, 204);
}

#[test]
fn an_expired_link_is_refused() {
    let srv = Server::start();
    let account = new_account(&srv, "expired");
    let token = srv.wait_for_link(&account.email, VERIFY);
    open_db(&srv.db)
        .execute("UPDATE email_tokens SET expires_at = 1", [])
        .unwrap();
    assert_error(
        &post_token(&srv, "/email/verify/", &token),
        400,
        "invalid_email_token",
    );
}

#[test]
fn require_verified_email_refuses_login_only_after_the_right_password() {
    let srv = Server::with_args(&["--require-verified-email"]);
    let account = new_account(&srv, "required");
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": "not the password 1"}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 403, "email_not_verified");
    let token = srv.wait_for_link(&account.email, VERIFY);
    assert_eq!(post_token(&srv, "/email/verify/", &token).status, 204);
    log_in(&srv, &account.email, PASSWORD);
}

fn forgot(srv: &Server, email: &str) -> Response {
    srv.post("/password/forgot/")
        .json(&json!({ "email": email }))
        .send()
}

fn reset(srv: &Server, token: &str, password: &str) -> Response {
    srv.post("/password/reset/")
        .json(&json!({"token": token, "new_password": password}))
        .send()
}

#[test]
fn a_password_reset_ends_every_session_and_verifies_the_address() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "reset");
    let resp = forgot(&srv, &account.email);
    assert_eq!(resp.status, 202);
    assert_eq!(resp.json(), json!({}));
    let first = srv.wait_for_link(&account.email, RESET);
    assert_eq!(forgot(&srv, &account.email).status, 202);
    let mails = srv.mails_to(&account.email).len();
    let second = srv
        .wait_for_mail(&account.email, mails.max(3))
        .token(RESET)
        .unwrap();
    assert_ne!(first, second);
    // The newer link supersedes the older one.
    assert_error(
        &reset(&srv, &first, NEW_PASSWORD),
        400,
        "invalid_email_token",
    );
    // A weak password is refused without spending the link.
    assert_validation_error(&reset(&srv, &second, "password"), &["new_password"]);

    let resp = reset(&srv, &second, NEW_PASSWORD);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
    assert_error(
        &refresh(&srv, &tokens.refresh),
        400,
        "invalid_refresh_token",
    );
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    let again = log_in(&srv, &account.email, NEW_PASSWORD);
    assert_eq!(again.user["email_verified"], true);
    assert_error(
        &reset(&srv, &second, "another good password 3"),
        400,
        "invalid_email_token",
    );

    // The notice names what happened and carries no link.
    let notice = srv.wait_for_mail(&account.email, srv.mails_to(&account.email).len().max(4));
    assert!(
        notice.text.contains("your password was changed"),
        "{}",
        notice.text
    );
    assert!(!notice.text.contains("token="), "{}", notice.text);
    assert!(!srv.log().contains(&second));
}

#[test]
fn forgot_password_answers_the_same_for_unknown_addresses() {
    let srv = Server::start();
    let account = new_account(&srv, "known");
    let unknown = unique_email("unknown");
    let known = forgot(&srv, &account.email);
    let stranger = forgot(&srv, &unknown);
    assert_eq!(known.status, 202);
    assert_eq!(stranger.status, known.status);
    assert_eq!(stranger.body, known.body);
    assert_eq!(
        stranger.header("Content-Type"),
        known.header("Content-Type")
    );
    assert_eq!(
        stranger.header("Content-Length"),
        known.header("Content-Length")
    );
    srv.wait_for_link(&account.email, RESET);
    assert!(srv.mails_to(&unknown).is_empty());
    let resp = srv
        .post("/password/forgot/")
        .json(&json!({"email": "nope"}))
        .send();
    assert_validation_error(&resp, &["email"]);
}

/// Median times of forgot-password for an account and for unknown addresses,
/// interleaved (so load on the machine hits both alike), after a warm-up.
fn forgot_medians(srv: &Server, email: &str, pairs: usize) -> (f64, f64) {
    let time = |email: &str| {
        let started = Instant::now();
        assert_eq!(forgot(srv, email).status, 202);
        started.elapsed()
    };
    for _ in 0..5 {
        time(email);
        time(&unique_email("warm"));
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        if i % 2 == 0 {
            known.push(time(email));
            unknown.push(time(&unique_email("nobody")));
        } else {
            unknown.push(time(&unique_email("nobody")));
            known.push(time(email));
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    (median(&mut known), median(&mut unknown))
}

#[test]
fn forgot_password_takes_the_same_time_for_unknown_addresses() {
    let srv = Server::with_args(&["--login-max-failures", "100000"]);
    let account = new_account(&srv, "timing");
    // A real difference shows in every round; a round disturbed by other
    // tests on a busy machine does not fail the test alone.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (k, u) = forgot_medians(&srv, &account.email, 80);
        eprintln!(
            "forgot-password medians: account {:.2} ms, none {:.2} ms",
            k * 1e3,
            u * 1e3
        );
        rounds.push((k, u));
        if k.max(u) / k.min(u) < 1.2 {
            return;
        }
    }
    panic!("medians differ by 20% or more in every round (account, none): {rounds:?}");
}

#[test]
fn forgot_password_is_throttled_alike_for_known_and_unknown_addresses() {
    let srv = Server::with_args(&["--login-max-failures", "2"]);
    let account = new_account(&srv, "flood");
    let unknown = unique_email("flood-unknown");
    for email in [&account.email, &unknown] {
        assert_eq!(forgot(&srv, email).status, 202);
        assert_eq!(forgot(&srv, email).status, 202);
        let resp = forgot(&srv, email);
        assert_error(&resp, 429, "too_many_requests");
    }
}

#[test]
fn an_email_change_waits_for_its_link_and_tells_the_old_address() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mover");
    let new_email = unique_email("moved");
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"email": new_email, "current_password": PASSWORD}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["pending_email"], new_email.as_str());
    let token = srv.wait_for_link(&new_email, CONFIRM);
    // The link was mailed to the new address only.
    assert!(
        srv.mails_to(&account.email)
            .iter()
            .all(|m| m.token(CONFIRM).is_none())
    );
    assert_eq!(post_token(&srv, "/email/confirm/", &token).status, 204);
    assert_error(
        &post_token(&srv, "/email/confirm/", &token),
        400,
        "invalid_email_token",
    );
    let user = get_profile(&srv, &tokens.access).json();
    assert_eq!(
        (user["email"].as_str(), user["email_verified"].as_bool()),
        (Some(new_email.as_str()), Some(true))
    );
    let notice = srv.wait_for_mail(&account.email, 2);
    assert!(
        notice.text.contains("your email address was changed"),
        "{}",
        notice.text
    );
    assert!(notice.text.contains(&new_email) && !notice.text.contains("token="));
}

#[test]
fn an_address_taken_before_the_confirmation_is_409() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "slow");
    let contested = unique_email("contested");
    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"email": contested, "current_password": PASSWORD}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let token = srv.wait_for_link(&contested, CONFIRM);
    sign_up(&srv, &contested, PASSWORD, NAME);
    assert_error(
        &post_token(&srv, "/email/confirm/", &token),
        409,
        "email_exists",
    );
}

#[test]
fn password_change_and_new_private_tokens_are_told_without_secrets() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "notices");
    let created =
        crate::harness::tokens::issue_private_token(&srv, &tokens.access, "ci deploy", 86_400);
    let notice = srv.wait_for_mail(&account.email, 2);
    assert!(
        notice.text.contains("a private token was created"),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("ci deploy"));
    assert!(!notice.text.contains(&created.token));
    let resp = srv
        .post("/password/")
        .bearer(&tokens.access)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let notice = srv.wait_for_mail(&account.email, 3);
    assert!(
        notice.text.contains("your password was changed"),
        "{}",
        notice.text
    );
    assert!(!notice.text.contains("token="));
}

fn assert_page_headers(resp: &Response) {
    assert_eq!(resp.header("Referrer-Policy"), Some("no-referrer"));
    assert_eq!(resp.header("X-Frame-Options"), Some("DENY"));
    let csp = resp.header("Content-Security-Policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        resp.header("Cache-Control")
            .unwrap_or_default()
            .contains("no-store")
    );
    assert!(
        resp.header("Content-Type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let body = resp.text();
    assert!(
        !body.contains("<script") && !body.contains("style="),
        "{body}"
    );
}

fn submit(srv: &Server, page: &str, form: &str, origin: Option<&str>) -> Response {
    let mut request = srv.post(page).body_with_type(
        "application/x-www-form-urlencoded",
        form.as_bytes().to_vec(),
    );
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    request.send()
}

#[test]
fn link_pages_show_a_form_and_only_their_post_spends_the_link() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "pages");
    let origin = format!("http://{}", srv.addr);
    let token = srv.wait_for_link(&account.email, VERIFY);
    for _ in 0..2 {
        let page = srv.get(&format!("{VERIFY}?token={token}")).send();
        assert_eq!(page.status, 200);
        assert_page_headers(&page);
        assert!(page.text().contains(&format!("value=\"{token}\"")));
        assert!(page.text().contains("method=\"post\""));
    }
    let missing = srv.get(VERIFY).send();
    assert_eq!(missing.status, 400);
    // A form posted from elsewhere changes nothing.
    let resp = submit(
        &srv,
        VERIFY,
        &format!("token={token}"),
        Some("http://evil.example"),
    );
    assert_error(&resp, 403, "permission_denied");
    let resp = submit(&srv, VERIFY, &format!("token={token}"), None);
    assert_error(&resp, 403, "permission_denied");
    let resp = submit(&srv, VERIFY, &format!("token={token}"), Some(&origin));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_page_headers(&resp);
    assert!(resp.text().contains("confirmed"));
    assert_eq!(
        get_profile(&srv, &tokens.access).json()["email_verified"],
        true
    );
    let again = submit(&srv, VERIFY, &format!("token={token}"), Some(&origin));
    assert_eq!(again.status, 400);

    // The reset page asks for the new password and applies it.
    assert_eq!(forgot(&srv, &account.email).status, 202);
    let reset_token = srv.wait_for_link(&account.email, RESET);
    let page = srv.get(&format!("{RESET}?token={reset_token}")).send();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("name=\"new_password\""));
    let weak = submit(
        &srv,
        RESET,
        &format!("token={reset_token}&new_password=short"),
        Some(&origin),
    );
    assert_eq!(weak.status, 400);
    assert!(
        weak.text().contains(&reset_token),
        "the form keeps its link"
    );
    let form = format!("token={reset_token}&new_password=purple+monkey+dishwasher+42");
    let done = submit(&srv, RESET, &form, Some(&origin));
    assert_eq!(done.status, 200, "{}", done.text());
    log_in(&srv, &account.email, NEW_PASSWORD);

    let page = srv.get(&format!("{CONFIRM}?token=abc")).send();
    assert_eq!(page.status, 200);
    assert_page_headers(&page);
    assert!(!srv.log().contains(&reset_token));
}
