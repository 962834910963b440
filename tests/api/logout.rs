//! Log out on both path families and `POST /logout/all/`: the session's refresh
//! token stops working and its access tokens are refused at once, other sessions
//! are untouched, and unknown tokens still get 204.

use serde_json::json;

use crate::harness::*;

fn log_out_at(srv: &Server, path: &str, refresh_token: &str) -> Response {
    srv.post(path)
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
}

#[test]
fn log_out_ends_only_that_session() {
    let srv = Server::start();
    let (account, ended) = new_session(&srv, "logout");
    let kept = log_in(&srv, &account.email, &account.password);
    let refreshed = refresh(&srv, &ended.refresh).json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let resp = log_out_at(&srv, "/logout/", &ended.refresh);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.body.is_empty());

    for access in [&ended.access, &refreshed] {
        let resp = get_profile(&srv, access);
        assert_error(&resp, 401, "token_not_valid");
    }
    assert_error(&refresh(&srv, &ended.refresh), 400, "invalid_refresh_token");

    assert_eq!(get_profile(&srv, &kept.access).status, 200);
    assert_eq!(refresh(&srv, &kept.refresh).status, 200);
}

#[test]
fn log_out_answers_on_both_path_families_with_and_without_slash() {
    let srv = Server::start();
    let account = new_account(&srv, "paths");
    for path in [
        "/logout/",
        "/logout",
        "/api/auth/logout",
        "/api/auth/logout/",
    ] {
        let tokens = log_in(&srv, &account.email, &account.password);
        let resp = log_out_at(&srv, path, &tokens.refresh);
        assert_eq!(resp.status, 204, "{path}: {}", resp.text());
        assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
    }
}

#[test]
fn log_out_with_an_unknown_or_used_token_is_still_204() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "unknown");
    assert_eq!(log_out_at(&srv, "/logout/", &"Z".repeat(43)).status, 204);
    assert_eq!(log_out_at(&srv, "/logout/", &tokens.refresh).status, 204);
    assert_eq!(
        log_out_at(&srv, "/api/auth/logout", &tokens.refresh).status,
        204
    );
}

#[test]
fn log_out_all_ends_every_session_of_the_user() {
    let srv = Server::start();
    let (account, first) = new_session(&srv, "all");
    let second = log_in(&srv, &account.email, &account.password);
    let (_, other_user) = new_session(&srv, "bystander");

    let resp = srv.post("/logout/all/").bearer(&first.access).send();
    assert_eq!(resp.status, 204, "{}", resp.text());

    for tokens in [&first, &second] {
        assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
        assert_error(
            &refresh(&srv, &tokens.refresh),
            400,
            "invalid_refresh_token",
        );
    }
    assert_eq!(get_profile(&srv, &other_user.access).status, 200);
    assert_eq!(refresh(&srv, &other_user.refresh).status, 200);

    // The account itself is fine: a new login opens a new session.
    let again = log_in(&srv, &account.email, &account.password);
    assert_eq!(get_profile(&srv, &again.access).status, 200);
    assert_ne!(again.session_id, first.session_id);

    // Without the slash too; then the old token is refused.
    let resp = srv.post("/logout/all").bearer(&again.access).send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let resp = srv.post("/logout/all/").bearer(&again.access).send();
    assert_error(&resp, 401, "token_not_valid");
}

#[test]
fn log_out_all_needs_a_bearer_access_token() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "noauth");
    let resp = srv.post("/logout/all/").send();
    assert_error(&resp, 401, "not_authenticated");
    let resp = srv.post("/logout/all/").bearer(&tokens.refresh).send();
    assert_error(&resp, 401, "token_not_valid");
    assert_eq!(
        get_profile(&srv, &tokens.access).status,
        200,
        "nothing ended"
    );
    let resp = srv.get("/logout/all/").bearer(&tokens.access).send();
    assert_error(&resp, 405, "method_not_allowed");
}

#[test]
fn log_out_body_errors() {
    let srv = Server::start();
    let resp = srv
        .post("/logout/")
        .body_with_type("application/json", "{]")
        .send();
    assert_error(&resp, 400, "invalid_json");
    let resp = srv
        .post("/logout/")
        .body_with_type("text/plain", "x")
        .send();
    assert_error(&resp, 415, "unsupported_media_type");
    let resp = srv.get("/logout/").send();
    assert_error(&resp, 405, "method_not_allowed");
    assert!(resp.header("Allow").unwrap().contains("POST"));
}
