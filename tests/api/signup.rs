//! Sign up on both path families: the USER it returns, the field rules (email,
//! password, names), `email_exists`, and the body errors every JSON route shares
//! (`invalid_json`, `unsupported_media_type`, `payload_too_large`).

use serde_json::{Value, json};

use crate::harness::*;

fn sign_up_raw(srv: &Server, body: Value) -> Response {
    srv.post("/signup/").json(&body).send()
}

#[test]
fn sign_up_returns_201_with_the_user_and_no_tokens() {
    let srv = Server::start();
    let email = unique_email("ada");
    let resp = sign_up_raw(
        &srv,
        json!({"email": email, "password": PASSWORD, "name": "Ada Lovelace"}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let body = resp.json();
    let obj = body.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["user"],
        "only a user: {body}"
    );
    let user = &body["user"];
    assert_user(user);
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["name"], "Ada Lovelace");
    assert!(user["image_url"].is_null(), "{user}");
    assert!(!resp.text().contains(PASSWORD));
}

#[test]
fn sign_up_answers_on_both_path_families_with_and_without_slash() {
    let srv = Server::start();
    for path in [
        "/signup/",
        "/signup",
        "/api/auth/register",
        "/api/auth/register/",
    ] {
        let email = unique_email("paths");
        let resp = srv
            .post(path)
            .json(&json!({"email": email, "password": PASSWORD, "name": NAME}))
            .send();
        assert_eq!(resp.status, 201, "{path}: {}", resp.text());
        assert_eq!(resp.json()["user"]["email"], email.as_str(), "{path}");
    }
}

#[test]
fn first_and_last_name_make_the_name_when_it_is_absent() {
    let srv = Server::start();
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("grace"), "password": PASSWORD,
               "first_name": "Grace", "last_name": "Hopper"}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let user = &resp.json()["user"];
    assert_eq!(user["first_name"], "Grace");
    assert_eq!(user["last_name"], "Hopper");
    assert_eq!(user["name"], "Grace Hopper");

    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("all4"), "password": PASSWORD, "name": "Rear Admiral Hopper",
               "first_name": "Grace", "last_name": "Hopper"}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let user = &resp.json()["user"];
    assert_eq!(user["name"], "Rear Admiral Hopper");
    assert_eq!(user["first_name"], "Grace");
    assert_eq!(user["last_name"], "Hopper");
}

#[test]
fn names_accept_letters_of_any_script_spaces_periods_hyphens_apostrophes_and_are_trimmed() {
    let srv = Server::start();
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("intl"), "password": PASSWORD,
               "first_name": "  Zoë-Ångström ", "last_name": "O'Brien Jr."}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let user = &resp.json()["user"];
    assert_eq!(user["first_name"], "Zoë-Ångström");
    assert_eq!(user["last_name"], "O'Brien Jr.");
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("cjk"), "password": PASSWORD, "name": "李小龍"}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.json()["user"]["name"], "李小龍");
}

#[test]
fn email_is_trimmed_and_unique_without_regard_to_case() {
    let srv = Server::start();
    let local = unique_email("Case");
    let resp = sign_up_raw(
        &srv,
        json!({"email": format!("  {local} "), "password": PASSWORD, "name": NAME}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.json()["user"]["email"], local.as_str(), "trimmed");

    for (path, email) in [
        ("/signup/", local.clone()),
        ("/signup/", local.to_uppercase()),
        ("/api/auth/register", local.to_lowercase()),
    ] {
        let resp = srv
            .post(path)
            .json(&json!({"email": email, "password": PASSWORD, "name": NAME}))
            .send();
        assert_error(&resp, 409, "email_exists");
    }
}

#[test]
fn every_failing_field_is_named_at_once() {
    let srv = Server::start();
    let resp = sign_up_raw(
        &srv,
        json!({"email": "not-an-address", "password": "short", "name": "X"}),
    );
    assert_validation_error(&resp, &["email", "password", "name"]);
    assert!(!resp.text().contains("\"short\""), "echoes the password");

    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("fl"), "password": PASSWORD,
               "first_name": "A", "last_name": "B4"}),
    );
    assert_validation_error(&resp, &["first_name", "last_name"]);
}

#[test]
fn email_rules() {
    let srv = Server::start();
    let long_local = "a".repeat(64);
    let long_domain = format!("{}.example.test", vec!["b".repeat(60); 3].join("."));
    let too_long = format!("{long_local}@{long_domain}");
    assert!(too_long.len() > 254, "{}", too_long.len());
    for email in [
        "",
        "plainaddress",
        "@example.test",
        "ada@",
        "ada lovelace@example.test",
        "ada@@example.test",
        too_long.as_str(),
    ] {
        let resp = sign_up_raw(
            &srv,
            json!({"email": email, "password": PASSWORD, "name": NAME}),
        );
        assert_validation_error(&resp, &["email"]);
    }
    // 254 characters is still allowed.
    let longest = format!(
        "{}@{}.{}.{}.example",
        "a".repeat(64),
        "b".repeat(60),
        "c".repeat(60),
        "d".repeat(59)
    );
    assert_eq!(longest.len(), 254);
    let resp = sign_up_raw(
        &srv,
        json!({"email": longest, "password": PASSWORD, "name": NAME}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
}

#[test]
fn password_rules() {
    let srv = Server::start();
    let too_long = "x".repeat(1025);
    // Seven characters that take 13 bytes: length counts characters.
    for password in [
        "",
        "seven77",
        "ßßßßßß7",
        too_long.as_str(),
        "password",
        "12345678",
        "iloveyou",
        "qwertyuiop",
    ] {
        let resp = sign_up_raw(
            &srv,
            json!({"email": unique_email("pw"), "password": password, "name": NAME}),
        );
        assert_validation_error(&resp, &["password"]);
        // ("password" itself is also the field's name.)
        if password.len() >= 8 && password != "password" {
            assert!(!resp.text().contains(password), "error echoes the password");
        }
    }
    // 1024 bytes is still allowed; eight multi-byte characters are enough.
    let longest = format!("{}{}", "Zq9#".repeat(255), "Lx7!");
    assert_eq!(longest.len(), 1024);
    for password in [longest.as_str(), "ñandú#7é"] {
        let email = unique_email("pwok");
        let resp = sign_up_raw(
            &srv,
            json!({"email": email, "password": password, "name": NAME}),
        );
        assert_eq!(resp.status, 201, "{}", resp.text());
        log_in(&srv, &email, password);
    }
}

#[test]
fn name_rules() {
    let srv = Server::start();
    let long = "a".repeat(101);
    for name in [
        "A",
        "  B  ",
        "R2D2",
        "Ada <script>",
        "Ada_Lovelace",
        long.as_str(),
    ] {
        let resp = sign_up_raw(
            &srv,
            json!({"email": unique_email("nm"), "password": PASSWORD, "name": name}),
        );
        assert_validation_error(&resp, &["name"]);
    }
    let long = "b".repeat(51);
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("nm"), "password": PASSWORD,
               "first_name": long, "last_name": "Lovelace"}),
    );
    assert_validation_error(&resp, &["first_name"]);
    // Neither a name nor first and last names.
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("nm"), "password": PASSWORD}),
    );
    assert_error(&resp, 400, "validation_error");
    // The limits themselves are allowed.
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("nm"), "password": PASSWORD, "name": "c".repeat(100)}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let resp = sign_up_raw(
        &srv,
        json!({"email": unique_email("nm"), "password": PASSWORD,
               "first_name": "d".repeat(50), "last_name": "Li"}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
}

#[test]
fn a_body_that_is_not_the_expected_json_object_is_invalid_json() {
    let srv = Server::start();
    for body in ["{\"email\": ", "not json", "[1, 2, 3]", "\"a string\"", ""] {
        let resp = srv
            .post("/signup/")
            .body_with_type("application/json", body)
            .send();
        assert_error(&resp, 400, "invalid_json");
    }
}

#[test]
fn a_non_json_content_type_is_unsupported_media_type() {
    let srv = Server::start();
    let body = json!({"email": unique_email("ct"), "password": PASSWORD, "name": NAME});
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = srv
            .post("/signup/")
            .body_with_type(content_type, body.to_string())
            .send();
        assert_error(&resp, 415, "unsupported_media_type");
    }
    // A charset parameter is still JSON.
    let resp = srv
        .post("/signup/")
        .body_with_type("application/json; charset=utf-8", body.to_string())
        .send();
    assert_eq!(resp.status, 201, "{}", resp.text());
}

#[test]
fn a_body_over_64_kib_is_payload_too_large() {
    let srv = Server::start();
    let padding = "a".repeat(70 * 1024);
    let body = json!({"email": unique_email("big"), "password": PASSWORD, "name": NAME,
                      "padding": padding});
    let resp = srv.post("/signup/").json(&body).send();
    assert_error(&resp, 413, "payload_too_large");
}

#[test]
fn look_alike_emails_are_one_account() {
    // The key is NFKC + case folding: full-width letters are the same address.
    let srv = Server::start();
    sign_up(&srv, "alice@example.com", PASSWORD, NAME);
    for email in [
        "ａlice@example.com",
        "ＡＬＩＣＥ@example.com",
        "ALICE@EXAMPLE.COM",
    ] {
        let resp = sign_up_raw(
            &srv,
            json!({"email": email, "password": PASSWORD, "name": NAME}),
        );
        assert_error(&resp, 409, "email_exists");
    }
    // The address is kept as typed, and any look-alike spelling logs in.
    let user = sign_up(&srv, "ｂob@example.com", PASSWORD, NAME);
    assert_eq!(user["email"], "ｂob@example.com");
    let resp = sign_up_raw(
        &srv,
        json!({"email": "bob@example.com", "password": PASSWORD, "name": NAME}),
    );
    assert_error(&resp, 409, "email_exists");
    assert_eq!(
        log_in(&srv, "bob@example.com", PASSWORD).user["id"],
        user["id"]
    );
}
