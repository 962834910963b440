//! Conventions that cut across routes: 404 and 405 answers, JSON errors, the query
//! string, `GET /healthz`, and the log scan proving that no password or token ever
//! reaches the server's output.

use serde_json::json;

use crate::harness::*;

#[test]
fn an_unknown_route_is_not_found() {
    let srv = Server::start();
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/api/auth/nope"),
        ("POST", "/api/auth/"),
        ("GET", "/login/extra"),
        ("DELETE", "/"),
    ] {
        let resp = srv.request(method, path).send();
        assert_error(&resp, 404, "not_found");
    }
}

#[test]
fn a_known_route_with_another_method_is_method_not_allowed() {
    let srv = Server::start();
    for (method, path, allowed) in [
        ("GET", "/signup/", "POST"),
        ("PUT", "/api/auth/register", "POST"),
        ("GET", "/login", "POST"),
        ("DELETE", "/api/auth/login/", "POST"),
        ("GET", "/refresh/", "POST"),
        ("GET", "/api/auth/logout", "POST"),
        ("POST", "/healthz", "GET"),
        ("POST", "/.well-known/jwks.json", "GET"),
        ("DELETE", "/profile", "GET"),
    ] {
        let resp = srv.request(method, path).send();
        if method == "DELETE" && path == "/profile" && resp.status != 405 {
            // Account deletion may exist already; then it must demand credentials.
            assert_eq!(resp.status, 401, "{}", resp.text());
            continue;
        }
        assert_error(&resp, 405, "method_not_allowed");
        let allow = resp.header("Allow").unwrap().to_ascii_uppercase();
        assert!(allow.contains(allowed), "{method} {path}: Allow: {allow}");
        assert!(!allow.split(',').any(|m| m.trim() == method), "{allow}");
    }
}

#[test]
fn healthz_answers_ok() {
    let srv = Server::start();
    for path in ["/healthz", "/healthz/", "/healthz?probe=1"] {
        let resp = srv.get(path).send();
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert_eq!(resp.json(), json!({"status": "ok"}));
        assert!(
            resp.header("Content-Type")
                .unwrap_or_default()
                .starts_with("application/json")
        );
    }
}

#[test]
fn the_query_string_is_not_part_of_the_route() {
    let srv = Server::start();
    let account = new_account(&srv, "query");
    let tokens = log_in_at(&srv, "/login/?next=/profile", &account.email, PASSWORD);
    let resp = srv.get("/profile?x=1").bearer(&tokens.access).send();
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn request_data_never_reaches_a_response_header() {
    let srv = Server::start();
    let resp = srv.get("/nope%0d%0aX-Injected:%20yes").send();
    assert_error(&resp, 404, "not_found");
    assert!(resp.header("X-Injected").is_none(), "{:?}", resp.headers);
    let resp = srv
        .get("/healthz")
        .header("X-Request-Id", "abc")
        .header("Origin", "https://evil.example.test")
        .send();
    assert_eq!(resp.status, 200);
    for (name, value) in &resp.headers {
        assert!(
            !value.contains("evil.example.test"),
            "{name}: {value} echoes a request header"
        );
    }
}

#[test]
fn no_log_line_holds_a_password_or_a_token() {
    // The server runs with RUST_LOG=debug; every secret used is then searched for
    // in everything it wrote.
    let srv = Server::start();
    let mut secrets = vec![PASSWORD.to_string()];
    let (account, tokens) = new_session(&srv, "logscan");
    let wrong_password = "Tr0ub4dor&3 wrong horse";
    let common_password = "password1";
    let bad_signup = "Xy9!sh7";
    secrets.extend([
        wrong_password.to_string(),
        bad_signup.to_string(),
        tokens.access.clone(),
        tokens.refresh.clone(),
    ]);
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": wrong_password}))
        .send();
    assert_eq!(resp.status, 401);
    for password in [common_password, bad_signup] {
        let resp = srv
            .post("/api/auth/register")
            .json(&json!({"email": unique_email("bad"), "password": password, "name": NAME}))
            .send();
        assert_eq!(resp.status, 400);
    }
    let resp = srv
        .post("/signup/")
        .json(&json!({"email": account.email, "password": PASSWORD, "name": NAME}))
        .send();
    assert_eq!(resp.status, 409);
    let second = log_in_at(&srv, "/api/auth/login", &account.email, PASSWORD);
    secrets.extend([second.access.clone(), second.refresh.clone()]);
    let refreshed = refresh(&srv, &tokens.refresh).json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    secrets.push(refreshed.clone());
    assert_eq!(get_profile(&srv, &refreshed).status, 200);
    let resp = srv
        .patch("/profile/")
        .bearer(&tokens.access)
        .json(&json!({"name": "Ada King"}))
        .send();
    assert_eq!(resp.status, 200);
    let forged = tamper(&tokens.access, tokens.access.rfind('.').unwrap() + 9);
    secrets.push(forged.clone());
    assert_eq!(get_profile(&srv, &forged).status, 401);
    let unknown_refresh = "u".repeat(43);
    secrets.push(unknown_refresh.clone());
    assert_eq!(refresh(&srv, &unknown_refresh).status, 400);
    let resp = srv
        .post("/logout/")
        .json(&json!({"refresh_token": tokens.refresh}))
        .send();
    assert_eq!(resp.status, 204);
    assert_eq!(get_profile(&srv, &tokens.access).status, 401);
    let resp = srv.post("/logout/all/").bearer(&second.access).send();
    assert_eq!(resp.status, 204);

    // The second factor: its secret, codes, recovery codes and mfa_tokens.
    let (mfa_account, mfa_session) = new_session(&srv, "logscan-mfa");
    let (secret, codes) = totp::turn_on(&srv, &mfa_session.access, PASSWORD);
    let mfa_token = totp::password_step(&srv, &mfa_account.email, PASSWORD);
    let wrong = totp::wrong_code(&secret);
    let resp = totp::second_step(&srv, &mfa_token, json!({ "code": wrong }));
    assert_eq!(resp.status, 401);
    let code = totp::code_at(&secret, now() + totp::STEP);
    let login = totp::expect_login(&totp::second_step(
        &srv,
        &mfa_token,
        json!({ "code": code }),
    ));
    let second_token = totp::password_step(&srv, &mfa_account.email, PASSWORD);
    let resp = totp::second_step(&srv, &second_token, json!({ "recovery_code": codes[0] }));
    assert_eq!(resp.status, 200);
    secrets.extend([
        mfa_session.access,
        mfa_session.refresh,
        secret,
        mfa_token,
        second_token,
        wrong,
        code,
        login.access,
        login.refresh,
    ]);
    secrets.extend(codes);

    let log = srv.stop();
    assert!(
        log.lines().count() >= 10,
        "expected one access line per request in the log:\n{log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds {secret:?}:\n{log}"
        );
        // The signature alone identifies a JWT too.
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 40) {
            assert!(!log.contains(signature), "the log holds a token signature");
        }
    }
    assert!(!log.contains(common_password), "the log holds a password");
    assert!(
        !log.contains("Bearer ey"),
        "the log holds an Authorization header"
    );
}
