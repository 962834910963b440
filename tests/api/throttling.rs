//! Login throttling from the outside: an email blocked after
//! `--login-max-failures` failures within `--login-window` (right password or
//! not, existing account or not) until the window passes, parallel guesses
//! included; device tokens that keep the owner's logins working; one client
//! address failing across many emails blocked at 20 times that limit; and
//! `X-Forwarded-For` believed only from a `--trusted-proxy`.

use std::time::Duration;

use serde_json::json;

use crate::harness::lifecycle::count_rows;
use crate::harness::resilience::send_together;
use crate::harness::*;

/// `POST /login/`, optionally with an `X-Forwarded-For` header.
fn attempt(srv: &Server, email: &str, password: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = srv
        .post("/login/")
        .json(&json!({"email": email, "password": password}));
    if let Some(chain) = forwarded_for {
        request = request.header("X-Forwarded-For", chain);
    }
    request.send()
}

/// Asserts 401 `invalid_credentials` (a failure that counts, not yet a block).
fn assert_refused(resp: &Response) {
    assert_error(resp, 401, "invalid_credentials");
}

/// Asserts 429 `too_many_requests` with a `Retry-After` of 1..=`window` seconds
/// and no token in the body.
fn assert_throttled(resp: &Response, window: u64) {
    assert_error(resp, 429, "too_many_requests");
    let retry_after: u64 = resp
        .header("Retry-After")
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not delay-seconds: {:?}", resp.headers));
    assert!(
        (1..=window).contains(&retry_after),
        "Retry-After {retry_after} outside 1..={window}"
    );
    assert!(resp.json().get("access_token").is_none(), "{}", resp.text());
}

#[test]
fn an_email_is_throttled_after_its_failures_even_with_the_right_password() {
    // Window 4 s: the six failures and the checks below fit in it even on a
    // loaded machine; waiting for it to pass stays short.
    let srv = Server::with_args(&["--login-max-failures", "3", "--login-window", "4"]);
    let target = new_account(&srv, "throttled");
    let bystander = new_account(&srv, "bystander");
    let unknown = unique_email("nobody");
    for n in 0..3 {
        assert_refused(&attempt(&srv, &target.email, &format!("wrong {n}"), None));
        assert_refused(&attempt(&srv, &unknown, &format!("wrong {n}"), None));
    }
    // The right password no longer helps, the email's case does not matter,
    // and an unknown email is blocked the same way (no account enumeration).
    assert_throttled(&attempt(&srv, &target.email, PASSWORD, None), 4);
    assert_throttled(
        &attempt(&srv, &target.email.to_uppercase(), PASSWORD, None),
        4,
    );
    assert_throttled(&attempt(&srv, &unknown, PASSWORD, None), 4);
    // Another account from the same address is untouched (its limit is 60).
    log_in(&srv, &bystander.email, PASSWORD);

    let passed = poll_until(Duration::from_secs(8), || {
        let resp = attempt(&srv, &target.email, PASSWORD, None);
        if resp.status == 429 {
            assert_throttled(&resp, 4);
            return false;
        }
        assert_eq!(resp.status, 200, "after the window: {}", resp.text());
        true
    });
    assert!(passed, "still throttled 8 s after a 4 s window");
    log_in(&srv, &target.email, PASSWORD);
}

/// Fails one login for each of `count` fresh (unknown) emails, each from the
/// `X-Forwarded-For` that `forwarded_for(n)` gives; all must be plain
/// failures, since no single email reaches its own limit of 1.
fn stuff(srv: &Server, count: usize, forwarded_for: impl Fn(usize) -> Option<String>) {
    for n in 0..count {
        let resp = attempt(
            srv,
            &unique_email("stuffed"),
            "Tr0ub4dor&3-guess",
            forwarded_for(n).as_deref(),
        );
        assert_refused(&resp);
    }
}

#[test]
fn one_address_failing_across_many_emails_is_throttled() {
    // One failure per email is allowed, so the address limit is 20.
    let srv = Server::with_args(&["--login-max-failures", "1", "--login-window", "60"]);
    let account = new_account(&srv, "stuffing");
    stuff(&srv, 20, |_| None);
    // Credential stuffing stops: even a right password of an untouched email.
    assert_throttled(&attempt(&srv, &account.email, PASSWORD, None), 60);
    assert_throttled(&attempt(&srv, &unique_email("next"), PASSWORD, None), 60);
}

#[test]
fn a_forwarded_for_header_is_ignored_without_a_trusted_proxy() {
    let srv = Server::with_args(&["--login-max-failures", "1", "--login-window", "60"]);
    let account = new_account(&srv, "spoofer");
    // Each failure claims another client address; all come from 127.0.0.1.
    stuff(&srv, 20, |n| Some(format!("198.51.100.{n}")));
    let fresh = Some("203.0.113.77");
    assert_throttled(&attempt(&srv, &account.email, PASSWORD, fresh), 60);
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let srv = Server::with_args(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--trusted-proxy",
        "10.0.0.1",
        "--login-max-failures",
        "1",
        "--login-window",
        "60",
    ]);
    let account = new_account(&srv, "proxied");
    // The client 198.51.100.7, directly behind our proxy, through a second
    // trusted proxy, or prepending forged hops of its own: one client.
    stuff(&srv, 20, |n| {
        Some(match n % 3 {
            0 => "198.51.100.7".to_string(),
            1 => "198.51.100.7, 10.0.0.1".to_string(),
            _ => format!("203.0.113.{n}, 198.51.100.7"),
        })
    });
    for chain in ["198.51.100.7", "192.0.2.1, 198.51.100.7, 10.0.0.1"] {
        assert_throttled(&attempt(&srv, &account.email, PASSWORD, Some(chain)), 60);
    }
    // Another client behind the proxy, and the proxy's own address, still log in.
    let resp = attempt(&srv, &account.email, PASSWORD, Some("198.51.100.8"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = attempt(&srv, &account.email, PASSWORD, None);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn parallel_wrong_guesses_never_exceed_the_limit() {
    // Each attempt counts before its password is checked, so of 12 guesses
    // sent at once at most 3 are checked (401) and the rest get 429.
    let srv = Server::with_args(&["--login-max-failures", "3", "--login-window", "60"]);
    let target = new_account(&srv, "parallel");
    let guesses: Vec<Request> = (0..12)
        .map(|n| {
            srv.post("/login/")
                .json(&json!({"email": target.email, "password": format!("wrong guess {n}")}))
        })
        .collect();
    let answers = send_together(&srv, &guesses.iter().collect::<Vec<_>>());
    let checked = answers.iter().filter(|r| r.status == 401).count();
    for resp in &answers {
        match resp.status {
            401 => assert_refused(resp),
            _ => assert_throttled(resp, 60),
        }
    }
    assert!(
        (1..=3).contains(&checked),
        "{checked} guesses were checked, the limit is 3"
    );
    assert_throttled(&attempt(&srv, &target.email, PASSWORD, None), 60);
}

/// `POST /login/` presenting a device token.
fn attempt_with_device(srv: &Server, email: &str, password: &str, device_token: &str) -> Response {
    srv.post("/login/")
        .json(&json!({"email": email, "password": password, "device_token": device_token}))
        .send()
}

#[test]
fn a_stranger_cannot_lock_the_owner_out_of_a_device_they_logged_in_on() {
    let srv = Server::with_args(&["--login-max-failures", "3", "--login-window", "60"]);
    let bob = new_account(&srv, "bob");
    let device = log_in(&srv, &bob.email, PASSWORD).body["device_token"]
        .as_str()
        .expect("a login answer carries device_token")
        .to_string();
    // Opaque, at least 256 random bits, stored only as its SHA-256.
    assert!(device.len() >= 43, "{device}");
    let conn = crate::harness::lifecycle::open_db(&srv.db);
    assert_eq!(
        count_rows(
            &conn,
            "device_tokens",
            "user_id = ?1",
            bob.user["id"].as_str().unwrap()
        ),
        1
    );
    let stored: Vec<u8> = conn
        .query_row("SELECT token_hash FROM device_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(
        !srv.log().contains(&device),
        "a device token reached the log"
    );

    // A stranger fails three times: bob without his device token is locked out…
    for n in 0..3 {
        assert_refused(&attempt(&srv, &bob.email, &format!("stranger {n}"), None));
    }
    assert_throttled(&attempt(&srv, &bob.email, PASSWORD, None), 60);
    // …with it he logs in, and keeps the same token.
    let resp = attempt_with_device(&srv, &bob.email, PASSWORD, &device);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["device_token"], device.as_str());
    // A device token is bound to its account: for another email it is ignored.
    let alice = new_account(&srv, "alice");
    let resp = attempt_with_device(&srv, &alice.email, PASSWORD, &device);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_ne!(resp.json()["device_token"], device.as_str());

    // The device token's own failures use it up: then it is no exemption.
    for n in 0..3 {
        assert_refused(&attempt_with_device(
            &srv,
            &bob.email,
            &format!("thief {n}"),
            &device,
        ));
    }
    assert_throttled(
        &attempt_with_device(&srv, &bob.email, PASSWORD, &device),
        60,
    );
}

#[test]
fn a_wrong_current_password_is_throttled_like_a_login() {
    let srv = Server::with_args(&["--login-max-failures", "2", "--login-window", "60"]);
    let (account, tokens) = new_session(&srv, "confirm");
    let change = |current: &str| {
        srv.post("/password/")
            .bearer(&tokens.access)
            .json(&json!({"current_password": current, "new_password": "a new passphrase 77"}))
            .send()
    };
    for n in 0..2 {
        assert_validation_error(
            &change(&format!("wrong {n} password")),
            &["current_password"],
        );
    }
    assert_throttled(&change(PASSWORD), 60);
    assert_throttled(&attempt(&srv, &account.email, PASSWORD, None), 60);
}
