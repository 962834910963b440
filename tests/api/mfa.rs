//! The second factor (API.md "Second factor"): enrolment, the login's second
//! step with TOTP codes (computed here independently of the service) and
//! recovery codes, replay and guessing limits, and turning it off.

use std::time::Duration;

use serde_json::json;

use crate::harness::lifecycle::{admin, admin_ok};
use crate::harness::tokens::issue_private_token;
use crate::harness::totp::*;
use crate::harness::*;

fn amr(access: &str) -> serde_json::Value {
    decode_jwt(access).claims["amr"].clone()
}

#[test]
fn enrolment_turns_the_factor_on_only_once_confirmed() {
    let srv = Server::with_args(&["--issuer", "Acme Auth"]);
    let (account, tokens) = new_session(&srv, "enrol");
    assert_eq!(tokens.user["mfa_enabled"], false);
    let resp = srv
        .post("/mfa/totp/")
        .bearer(&tokens.access)
        .json(&json!({"password": "not the password 1"}))
        .send();
    assert_validation_error(&resp, &["password"]);

    let resp = srv
        .post("/mfa/totp/")
        .bearer(&tokens.access)
        .json(&json!({"password": PASSWORD}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_keys(&body, &["secret", "otpauth_uri"]);
    let secret = body["secret"].as_str().unwrap().to_string();
    assert_eq!(base32_decode(&secret).len(), 20);
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Acme%20Auth:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=Acme%20Auth"), "{uri}");

    // Not on yet: the profile says so and a login needs no code.
    assert_eq!(
        get_profile(&srv, &tokens.access).json()["mfa_enabled"],
        false
    );
    log_in(&srv, &account.email, PASSWORD);

    let resp = srv
        .post("/mfa/totp/confirm/")
        .bearer(&tokens.access)
        .json(&json!({"code": wrong_code(&secret)}))
        .send();
    assert_validation_error(&resp, &["code"]);
    assert_eq!(
        get_profile(&srv, &tokens.access).json()["mfa_enabled"],
        false
    );

    let resp = srv
        .post("/mfa/totp/confirm")
        .bearer(&tokens.access)
        .json(&json!({"code": code_at(&secret, now())}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_token_headers(&resp);
    for code in recovery_codes(&resp) {
        let symbols: String = code.chars().filter(|c| *c != '-').collect();
        // base32: 5 bits a symbol.
        assert!(symbols.len() * 5 >= 80, "{code}");
        assert!(symbols.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    }
    let profile = get_profile(&srv, &tokens.access).json();
    assert_eq!(profile["mfa_enabled"], true, "{profile}");
    // Nothing left to confirm.
    let resp = srv
        .post("/mfa/totp/confirm/")
        .bearer(&tokens.access)
        .json(&json!({"code": code_at(&secret, now() + STEP)}))
        .send();
    assert_validation_error(&resp, &["code"]);
    // A new enrolment while the factor is on needs a current code too.
    let resp = srv
        .post("/mfa/totp/")
        .bearer(&tokens.access)
        .json(&json!({"password": PASSWORD}))
        .send();
    assert_validation_error(&resp, &["code"]);
    srv.stop();
}

#[test]
fn login_with_the_factor_takes_a_code_and_says_so_in_amr() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-login");
    let (secret, _) = turn_on(&srv, &tokens.access, PASSWORD);

    // The wrong password says nothing about the factor.
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": "wrong password here"}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    assert!(resp.json().get("mfa_token").is_none());

    let resp = srv
        .post("/api/auth/login")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 401, "mfa_required");
    assert_token_headers(&resp);
    let body = resp.json();
    assert_keys(&body, &["code", "detail", "mfa_token", "methods"]);
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    let mfa_token = body["mfa_token"].as_str().unwrap().to_string();
    assert!(mfa_token.len() >= 43, "{mfa_token}");

    // The neighbouring step is accepted (the confirmation spent this one).
    let code = code_at(&secret, now() + STEP);
    let login = expect_login(&second_step(&srv, &mfa_token, json!({"code": code})));
    assert_eq!(amr(&login.access), json!(["pwd", "otp"]));
    assert_eq!(login.user["mfa_enabled"], true);
    assert_eq!(get_profile(&srv, &login.access).status, 200);
    let refreshed = refresh(&srv, &login.refresh);
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    let access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(amr(&access), json!(["pwd", "otp"]), "refresh keeps amr");

    // The token is single use.
    let resp = second_step(&srv, &mfa_token, json!({"code": code_at(&secret, now())}));
    assert_error(&resp, 401, "invalid_credentials");

    // The same code again (same step): refused; three steps away: refused.
    let mfa_token = password_step(&srv, &account.email, PASSWORD);
    for refused in [
        code,
        code_at(&secret, now() - 3 * STEP),
        code_at(&secret, now() + 3 * STEP),
    ] {
        let resp = second_step(&srv, &mfa_token, json!({"code": refused}));
        assert_error(&resp, 401, "invalid_credentials");
    }
    // The token survives fewer than five wrong codes.
    let resp = second_step(&srv, &mfa_token, json!({"code": wrong_code(&secret)}));
    assert_error(&resp, 401, "invalid_credentials");
    srv.stop();
}

#[test]
fn five_wrong_codes_spend_the_token_and_count_as_failed_logins() {
    let srv = Server::with_args(&["--trusted-proxy", "127.0.0.1"]);
    let (account, tokens) = new_session(&srv, "mfa-guess");
    let (secret, _) = turn_on(&srv, &tokens.access, PASSWORD);
    let from = |ip: &str| {
        let resp = srv
            .post("/login/")
            .header("X-Forwarded-For", ip)
            .json(&json!({"email": account.email, "password": PASSWORD}))
            .send();
        assert_error(&resp, 401, "mfa_required");
        resp.json()["mfa_token"].as_str().unwrap().to_string()
    };
    // The token is bound to the client address it was issued to.
    let elsewhere = from("203.0.113.7");
    let resp = srv
        .post("/login/mfa/")
        .header("X-Forwarded-For", "203.0.113.8")
        .json(&json!({"mfa_token": elsewhere, "code": code_at(&secret, now() + STEP)}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");

    let mfa_token = password_step(&srv, &account.email, PASSWORD);
    for _ in 0..5 {
        let resp = second_step(&srv, &mfa_token, json!({"code": wrong_code(&secret)}));
        assert_error(&resp, 401, "invalid_credentials");
    }
    let resp = second_step(
        &srv,
        &mfa_token,
        json!({"code": code_at(&secret, now() + STEP)}),
    );
    assert_error(&resp, 401, "invalid_credentials");
    // Five failures for the account: even the right password now waits.
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 429, "too_many_requests");
    srv.stop();
}

#[test]
fn the_right_password_does_not_reset_the_count_of_wrong_codes() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-reset");
    let (secret, _) = turn_on(&srv, &tokens.access, PASSWORD);
    for guesses in [3, 2] {
        let mfa_token = password_step(&srv, &account.email, PASSWORD);
        for _ in 0..guesses {
            let resp = second_step(&srv, &mfa_token, json!({"code": wrong_code(&secret)}));
            assert_error(&resp, 401, "invalid_credentials");
        }
    }
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 429, "too_many_requests");
    srv.stop();
}

#[test]
fn recovery_codes_work_once_and_regenerating_replaces_them() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-recovery");
    let (secret, codes) = turn_on(&srv, &tokens.access, PASSWORD);

    let mfa_token = password_step(&srv, &account.email, PASSWORD);
    let login = expect_login(&second_step(
        &srv,
        &mfa_token,
        json!({"recovery_code": codes[0]}),
    ));
    assert_eq!(amr(&login.access), json!(["pwd", "otp"]));
    let mfa_token = password_step(&srv, &account.email, PASSWORD);
    let resp = second_step(&srv, &mfa_token, json!({"recovery_code": codes[0]}));
    assert_error(&resp, 401, "invalid_credentials");
    // Typed back in capitals without the hyphens, a code still works.
    let typed = codes[1].to_uppercase().replace('-', "");
    expect_login(&second_step(
        &srv,
        &mfa_token,
        json!({"recovery_code": typed}),
    ));

    let regenerate = |body: serde_json::Value| {
        srv.post("/mfa/recovery-codes/")
            .bearer(&login.access)
            .json(&body)
            .send()
    };
    let code = code_at(&secret, now() + STEP);
    assert_validation_error(
        &regenerate(json!({"password": "wrong password here", "code": code})),
        &["password"],
    );
    assert_validation_error(
        &regenerate(json!({"password": PASSWORD, "code": wrong_code(&secret)})),
        &["code"],
    );
    let resp = regenerate(json!({"password": PASSWORD, "code": code}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_token_headers(&resp);
    let fresh = recovery_codes(&resp);
    assert!(fresh.iter().all(|c| !codes.contains(c)));

    let mfa_token = password_step(&srv, &account.email, PASSWORD);
    let resp = second_step(&srv, &mfa_token, json!({"recovery_code": codes[2]}));
    assert_error(&resp, 401, "invalid_credentials");
    expect_login(&second_step(
        &srv,
        &mfa_token,
        json!({"recovery_code": fresh[0]}),
    ));
    srv.stop();
}

#[test]
fn turning_the_factor_off_takes_the_password_and_a_code() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-off");
    let (secret, codes) = turn_on(&srv, &tokens.access, PASSWORD);
    let off = |body: serde_json::Value| {
        srv.request("DELETE", "/mfa/totp/")
            .bearer(&tokens.access)
            .json(&body)
            .send()
    };
    let code = code_at(&secret, now() + STEP);
    assert_validation_error(
        &off(json!({"password": "wrong password here", "code": code})),
        &["password"],
    );
    assert_validation_error(
        &off(json!({"password": PASSWORD, "code": wrong_code(&secret)})),
        &["code"],
    );
    assert_validation_error(&off(json!({"password": PASSWORD})), &["code"]);
    let resp = off(json!({"password": PASSWORD, "code": code}));
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(
        get_profile(&srv, &tokens.access).json()["mfa_enabled"],
        false
    );
    let login = log_in(&srv, &account.email, PASSWORD);
    assert_eq!(amr(&login.access), json!(["pwd"]));
    // The old recovery codes went with it: a new factor gets new ones.
    let (_, again) = turn_on(&srv, &login.access, PASSWORD);
    assert!(again.iter().all(|c| !codes.contains(c)));
    srv.stop();
}

#[test]
fn a_private_token_may_not_touch_the_second_factor() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "mfa-private");
    let private = issue_private_token(&srv, &tokens.access, "script", 3600).token;
    let body = json!({"password": PASSWORD, "code": "123456"});
    for (method, path) in [
        ("POST", "/mfa/totp/"),
        ("POST", "/mfa/totp/confirm/"),
        ("POST", "/mfa/recovery-codes/"),
        ("DELETE", "/mfa/totp/"),
    ] {
        let resp = srv
            .request(method, path)
            .bearer(&private)
            .json(&body)
            .send();
        assert_error(&resp, 403, "permission_denied");
    }
    srv.stop();
}

#[test]
fn users_mfa_off_turns_a_lost_factor_off() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-lost");
    turn_on(&srv, &tokens.access, PASSWORD);
    password_step(&srv, &account.email, PASSWORD);
    let out = admin(&srv.db, &["users", "mfa-off", &account.email], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let login = log_in(&srv, &account.email, PASSWORD);
    assert_eq!(login.user["mfa_enabled"], false);
    let out = admin(&srv.db, &["users", "mfa-off", "nobody@example.test"], "");
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    srv.stop();
}

#[test]
fn a_device_token_carries_its_owner_past_a_strangers_failures_through_both_steps() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-device");
    let device = tokens.body["device_token"].as_str().unwrap().to_string();
    let (secret, _) = turn_on(&srv, &tokens.access, PASSWORD);
    // A stranger uses up the email's failures.
    for _ in 0..5 {
        let resp = srv
            .post("/login/")
            .json(&json!({"email": account.email, "password": "a stranger's guess"}))
            .send();
        assert_error(&resp, 401, "invalid_credentials");
    }
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 429, "too_many_requests");
    // The owner's device still gets in, second step included.
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD, "device_token": device}))
        .send();
    assert_error(&resp, 401, "mfa_required");
    let mfa_token = resp.json()["mfa_token"].as_str().unwrap().to_string();
    let code = code_at(&secret, now() + STEP);
    let login = expect_login(&second_step(&srv, &mfa_token, json!({"code": code})));
    assert_eq!(amr(&login.access), json!(["pwd", "otp"]));
    srv.stop();
}

#[test]
fn the_second_factor_s_changes_are_audit_events() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "mfa-audit");
    let (secret, codes) = turn_on(&srv, &tokens.access, PASSWORD);
    let mfa_token = password_step(&srv, &account.email, PASSWORD);
    let resp = second_step(&srv, &mfa_token, json!({"code": wrong_code(&secret)}));
    assert_error(&resp, 401, "invalid_credentials");
    let login = expect_login(&second_step(
        &srv,
        &mfa_token,
        json!({"recovery_code": codes[0]}),
    ));
    let resp = srv
        .post("/mfa/recovery-codes/")
        .bearer(&login.access)
        .json(&json!({"password": PASSWORD, "code": code_at(&secret, now() + STEP)}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let fresh = recovery_codes(&resp);
    let resp = srv
        .request("DELETE", "/mfa/totp/")
        .bearer(&login.access)
        .json(&json!({"password": PASSWORD, "recovery_code": fresh[0]}))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    turn_on(&srv, &login.access, PASSWORD);
    admin_ok(&srv.db, &["users", "mfa-off", &account.email], "");

    let out = admin_ok(&srv.db, &["audit", "--json"], "");
    let events: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        events,
        [
            "sign_up",
            "login_succeeded",
            "second_factor_on",
            "second_factor_required",
            "login_failed",
            "recovery_code_used",
            "login_succeeded",
            "recovery_codes_regenerated",
            "recovery_code_used",
            "second_factor_off",
            "second_factor_on",
            "admin_second_factor_off",
        ]
    );
    // Never a code, a secret or an mfa_token.
    for secret in [
        secret.as_str(),
        mfa_token.as_str(),
        codes[0].as_str(),
        fresh[0].as_str(),
    ] {
        assert!(!out.contains(secret), "the audit log holds {secret:?}");
    }
    // Each change is told to the account's address, never with a code.
    let told = |what: &str| {
        srv.mails_to(&account.email)
            .iter()
            .filter(|m| m.text.contains(what))
            .count()
    };
    assert!(
        poll_until(Duration::from_secs(10), || {
            told("second factor was turned on") == 2 && told("second factor was turned off") == 2
        }),
        "notices: {} on, {} off",
        told("second factor was turned on"),
        told("second factor was turned off")
    );
    for mail in srv.mails_to(&account.email) {
        assert!(!mail.text.contains(&secret) && !mail.text.contains(&fresh[1]));
    }
    srv.stop();
}
