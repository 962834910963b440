//! The profile with a Bearer access token: `GET /profile/`, name changes with `PUT`
//! and `PATCH`, their validation, and the 401 answers for a missing, malformed or
//! invalid `Authorization` header.

use serde_json::json;

use crate::harness::*;

#[test]
fn get_profile_returns_the_user() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "profile");
    for path in ["/profile/", "/profile"] {
        let resp = srv.get(path).bearer(&tokens.access).send();
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        let user = resp.json();
        assert_user(&user);
        assert_eq!(user, account.user);
        assert_eq!(user["email"], account.email.as_str());
        assert_eq!(user["id"], decode_jwt(&tokens.access).claims["sub"]);
    }
}

#[test]
fn put_and_patch_change_the_names() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "names");
    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"name": "Augusta Ada King"}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let user = resp.json();
    assert_user(&user);
    assert_eq!(user["name"], "Augusta Ada King");
    assert_eq!(get_profile(&srv, &tokens.access).json(), user);

    let resp = srv
        .patch("/profile")
        .bearer(&tokens.access)
        .json(&json!({"first_name": " Augusta ", "last_name": "King-Noel"}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let user = resp.json();
    assert_eq!(user["first_name"], "Augusta");
    assert_eq!(user["last_name"], "King-Noel");
    assert_eq!(get_profile(&srv, &tokens.access).json(), user);

    let resp = srv
        .put("/profile")
        .bearer(&tokens.access)
        .json(&json!({"name": "Ada Byron", "first_name": "Ada", "last_name": "Byron"}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let user = resp.json();
    assert_eq!(user["name"], "Ada Byron");
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["last_name"], "Byron");
    assert!(user["updated_at"].as_str() >= user["created_at"].as_str());
}

#[test]
fn profile_updates_are_validated_like_signup() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "invalid");
    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"name": "X", "first_name": "1234", "last_name": "a".repeat(51)}))
        .send();
    assert_validation_error(&resp, &["name", "first_name", "last_name"]);
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"name": "Ada_99"}))
        .send();
    assert_validation_error(&resp, &["name"]);
    assert_eq!(
        get_profile(&srv, &tokens.access).json(),
        account.user,
        "a refused update changes nothing"
    );

    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .body_with_type("application/json", "{\"name\": ")
        .send();
    assert_error(&resp, 400, "invalid_json");
    let resp = srv
        .put("/profile/")
        .bearer(&tokens.access)
        .body_with_type("text/plain", "name=Ada")
        .send();
    assert_error(&resp, 415, "unsupported_media_type");
}

#[test]
fn a_missing_or_malformed_authorization_header_is_not_authenticated() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "noauth");
    let resp = srv.get("/profile/").send();
    assert_error(&resp, 401, "not_authenticated");
    assert!(
        !resp
            .header("WWW-Authenticate")
            .unwrap()
            .contains("invalid_token"),
        "no token was presented (RFC 6750 §3.1)"
    );
    for value in [
        format!("Basic {}", "YWRhOnB3"),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        tokens.access.clone(),
        format!("Token {}", tokens.access),
    ] {
        let resp = srv.get("/profile/").header("Authorization", &value).send();
        assert_error(&resp, 401, "not_authenticated");
        assert!(
            !resp.raw_text().contains(&tokens.access),
            "echoes the token"
        );
    }
    let resp = srv
        .put("/profile/")
        .json(&json!({"name": "Ada Byron"}))
        .send();
    assert_error(&resp, 401, "not_authenticated");
}

#[test]
fn an_invalid_bearer_token_is_token_not_valid() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "badtoken");
    let signature_at = tokens.access.rfind('.').unwrap() + 20;
    let tampered = tamper(&tokens.access, signature_at);
    for token in ["abc.def.ghi", "not-a-jwt", tampered.as_str()] {
        let resp = get_profile(&srv, token);
        assert_error(&resp, 401, "token_not_valid");
        assert!(!resp.raw_text().contains(token), "echoes the token");
    }
}

#[test]
fn profile_routes_refuse_other_methods() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "methods");
    let resp = srv
        .post("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"name": "Ada Byron"}))
        .send();
    assert_error(&resp, 405, "method_not_allowed");
    let allow = resp.header("Allow").unwrap().to_ascii_uppercase();
    for method in ["GET", "PUT", "PATCH"] {
        assert!(allow.contains(method), "Allow: {allow}");
    }
}
