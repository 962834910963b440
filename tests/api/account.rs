//! The account lifecycle: changing the email (with the current password,
//! confirmed through the link mailed to the new address),
//! changing the password (`POST /password/`, which ends every session), and
//! deleting the account (`DELETE /profile/`), after which nothing of the user
//! is left, in the answers or in the database file, and the email is free.

use image::ImageFormat;
use serde_json::json;

use crate::harness::lifecycle::*;
use crate::harness::pictures::{ProfileForm, avatar_path, encoded, upload_picture};
use crate::harness::tokens::issue_private_token;
use crate::harness::*;

/// A second strong password.
const NEW_PASSWORD: &str = "purple monkey dishwasher 42";

fn change_email(srv: &Server, token: &str, body: serde_json::Value) -> Response {
    srv.patch("/profile/").bearer(token).json(&body).send()
}

fn assert_login_refused(srv: &Server, email: &str, password: &str) {
    let resp = srv
        .post("/login/")
        .json(&json!({"email": email, "password": password}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
}

#[test]
fn the_email_changes_with_the_current_password() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "email");
    let new_email = unique_email("renamed");

    let resp = change_email(&srv, &tokens.access, json!({"email": new_email}));
    assert_validation_error(&resp, &["current_password"]);
    let resp = change_email(
        &srv,
        &tokens.access,
        json!({"email": new_email, "current_password": "not my password 9"}),
    );
    // 400, not 401: clients answer a 401 by logging the user out.
    assert_validation_error(&resp, &["current_password"]);
    assert!(!resp.raw_text().contains("not my password 9"));
    let resp = change_email(
        &srv,
        &tokens.access,
        json!({"email": "not-an-address", "current_password": PASSWORD}),
    );
    assert_validation_error(&resp, &["email"]);
    assert_eq!(get_profile(&srv, &tokens.access).json(), account.user);

    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"email": format!("  {new_email}  "), "current_password": PASSWORD}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let pending = resp.json();
    assert_user(&pending);
    // Nothing changes until the link mailed to the new address is confirmed.
    assert_eq!(pending["email"], account.email.as_str());
    assert_eq!(pending["pending_email"], new_email.as_str());
    let token = srv.wait_for_link(&new_email, "/account/confirm-email");
    let resp = srv
        .post("/email/confirm/")
        .json(&json!({ "token": token }))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let user = get_profile(&srv, &tokens.access).json();
    assert_user(&user);
    assert_eq!(user["email"], new_email.as_str());
    assert_eq!(user["pending_email"], serde_json::Value::Null);
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["id"], account.user["id"]);
    assert_login_refused(&srv, &account.email, PASSWORD);
    let again = log_in(&srv, &new_email, PASSWORD);
    assert_eq!(again.user["id"], account.user["id"]);
    // The old address is free again.
    sign_up(&srv, &account.email, PASSWORD, NAME);
}

#[test]
fn an_email_already_taken_is_409() {
    let srv = Server::start();
    let other = new_account(&srv, "taken");
    let (account, tokens) = new_session(&srv, "taker");
    for email in [other.email.clone(), other.email.to_uppercase()] {
        let resp = change_email(
            &srv,
            &tokens.access,
            json!({"email": email, "current_password": PASSWORD}),
        );
        assert_error(&resp, 409, "email_exists");
    }
    assert_eq!(get_profile(&srv, &tokens.access).json(), account.user);
    // Sending the current address back (a form resubmitted whole) is no change.
    let resp = change_email(
        &srv,
        &tokens.access,
        json!({"email": account.email, "name": "Ada Byron"}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["email"], account.email.as_str());
}

#[test]
fn the_email_changes_in_a_multipart_form_too() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "formemail");
    let new_email = unique_email("formrenamed");
    let picture = encoded(ImageFormat::Png, 10, 10);
    let form = ProfileForm::new()
        .text("email", &new_email)
        .text("current_password", "wrong password here")
        .image(&picture, "image/png");
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .multipart(&form)
        .send();
    assert_validation_error(&resp, &["current_password"]);
    assert_eq!(get_profile(&srv, &tokens.access).json(), account.user);

    let form = ProfileForm::new()
        .text("email", &new_email)
        .text("current_password", PASSWORD)
        .image(&picture, "image/png");
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .multipart(&form)
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["email"], account.email.as_str());
    assert_eq!(resp.json()["pending_email"], new_email.as_str());
    assert!(resp.json()["image_url"].is_string());
}

#[test]
fn a_private_token_may_not_change_the_email_or_password_or_delete() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "ptaccount");
    let private = issue_private_token(&srv, &tokens.access, "script", 86_400);
    let resp = change_email(
        &srv,
        &private.token,
        json!({"email": unique_email("pt"), "current_password": PASSWORD}),
    );
    assert_error(&resp, 403, "permission_denied");
    let resp = srv
        .post("/password/")
        .bearer(&private.token)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send();
    assert_error(&resp, 403, "permission_denied");
    let resp = srv
        .request("DELETE", "/profile/")
        .bearer(&private.token)
        .json(&json!({"password": PASSWORD}))
        .send();
    assert_error(&resp, 403, "permission_denied");
    // Names it may change.
    let resp = change_email(&srv, &private.token, json!({"name": "Ada Byron"}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["email"], account.email.as_str());
    log_in(&srv, &account.email, PASSWORD);
}

#[test]
fn a_password_change_needs_the_current_password_and_the_rules() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "pwrules");
    let change = |body: serde_json::Value| {
        srv.post("/password/")
            .bearer(&tokens.access)
            .json(&body)
            .send()
    };
    let resp =
        change(json!({"current_password": "wrong password 1", "new_password": NEW_PASSWORD}));
    assert_validation_error(&resp, &["current_password"]);
    assert!(!resp.raw_text().contains(NEW_PASSWORD));
    assert_validation_error(
        &change(json!({"new_password": NEW_PASSWORD})),
        &["current_password"],
    );
    assert_validation_error(
        &change(json!({"current_password": PASSWORD})),
        &["new_password"],
    );
    for weak in ["short", "password1", "Password1", "iloveyou"] {
        let resp = change(json!({"current_password": PASSWORD, "new_password": weak}));
        assert_validation_error(&resp, &["new_password"]);
        assert!(!resp.raw_text().contains(PASSWORD));
    }
    let resp = change(json!({"current_password": PASSWORD, "new_password": "x".repeat(1025)}));
    assert_validation_error(&resp, &["new_password"]);
    let resp = srv
        .post("/password/")
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send();
    assert_error(&resp, 401, "not_authenticated");
    // Nothing changed: the session lives and the old password works.
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    log_in(&srv, &account.email, PASSWORD);
}

#[test]
fn a_password_change_ends_every_session() {
    let srv = Server::start();
    let (account, first) = new_session(&srv, "pwchange");
    let second = log_in(&srv, &account.email, PASSWORD);
    let private = issue_private_token(&srv, &first.access, "ci", 86_400);
    let resp = srv
        .post("/password/")
        .bearer(&first.access)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.body.is_empty());

    for tokens in [&first, &second] {
        assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
        assert_error(
            &refresh(&srv, &tokens.refresh),
            400,
            "invalid_refresh_token",
        );
    }
    assert_login_refused(&srv, &account.email, PASSWORD);
    let fresh = log_in(&srv, &account.email, NEW_PASSWORD);
    assert_eq!(get_profile(&srv, &fresh.access).status, 200);
    // A private token is not a session: the contract revokes refresh tokens.
    let resp = get_profile(&srv, &private.token);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let conn = open_db(&srv.db);
    let user_id = account.user["id"].as_str().unwrap();
    assert_eq!(count_rows(&conn, "sessions", "user_id = ?1", user_id), 1);
}

#[test]
fn deleting_the_account_removes_everything() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "delete");
    let other_session = log_in(&srv, &account.email, PASSWORD);
    let private = issue_private_token(&srv, &tokens.access, "doomed", 86_400);
    let image_url = upload_picture(
        &srv,
        &tokens.access,
        &encoded(ImageFormat::Png, 16, 16),
        "image/png",
    );
    let bystander = new_session(&srv, "bystander");
    let user_id = account.user["id"].as_str().unwrap().to_string();
    let conn = open_db(&srv.db);
    let owned = |conn: &rusqlite::Connection| {
        [
            count_rows(conn, "users", "id = ?1", &user_id),
            count_rows(conn, "sessions", "user_id = ?1", &user_id),
            count_rows(
                conn,
                "refresh_tokens",
                "session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
                &user_id,
            ),
            count_rows(conn, "private_tokens", "user_id = ?1", &user_id),
            count_rows(conn, "images", "user_id = ?1", &user_id),
        ]
    };
    assert_eq!(owned(&conn), [1, 2, 2, 1, 1]);

    let delete = |body: serde_json::Value| {
        srv.request("DELETE", "/profile/")
            .bearer(&tokens.access)
            .json(&body)
            .send()
    };
    assert_validation_error(
        &delete(json!({"password": "wrong password 77"})),
        &["password"],
    );
    assert_validation_error(&delete(json!({})), &["password"]);
    assert_eq!(owned(&conn), [1, 2, 2, 1, 1]);

    let resp = delete(json!({"password": PASSWORD}));
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(owned(&conn), [0; 5], "rows of the deleted user remain");

    for token in [&tokens.access, &other_session.access, &private.token] {
        assert_error(&get_profile(&srv, token), 401, "token_not_valid");
    }
    for token in [&tokens.refresh, &other_session.refresh] {
        assert_error(&refresh(&srv, token), 400, "invalid_refresh_token");
    }
    assert_error(&srv.get(&avatar_path(&image_url)).send(), 404, "not_found");
    assert_login_refused(&srv, &account.email, PASSWORD);
    // The bystander is untouched.
    assert_eq!(get_profile(&srv, &bystander.1.access).status, 200);

    let again = sign_up(&srv, &account.email, NEW_PASSWORD, NAME);
    assert_ne!(again["id"], account.user["id"]);
    assert!(again["image_url"].is_null());
    log_in(&srv, &account.email, NEW_PASSWORD);
}
