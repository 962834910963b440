//! Private tokens: create (an expiry is required, exactly one of `expires_in` and
//! `expires_at`, at most `--max-private-token-ttl`), list newest first without
//! the secret, get, delete, rotate; 404 for another user's id; 403 when a private
//! token tries to manage tokens, sessions, the password, the email or the
//! account. The token is a `pt+jwt` with its id as `jti`, accepted wherever an
//! access token is, refused once revoked or expired; `last_used_at` is gathered
//! in memory and written by the periodic flush, not on each use.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::resilience::send_together;
use crate::harness::tokens::*;
use crate::harness::*;

/// The keys of a token entry in `GET /tokens/` and `GET /tokens/{id}`.
fn assert_entry_shape(entry: &Value) {
    assert_keys(
        entry,
        &["created_at", "expires_at", "id", "last_used_at", "name"],
    );
    assert!(is_uuid(entry["id"].as_str().unwrap_or_default()), "{entry}");
    for key in ["created_at", "expires_at"] {
        assert!(
            is_rfc3339_utc(entry[key].as_str().unwrap_or_default()),
            "{key}: {entry}"
        );
    }
    assert!(
        entry["last_used_at"].is_null()
            || is_rfc3339_utc(entry["last_used_at"].as_str().unwrap_or_default()),
        "last_used_at: {entry}"
    );
}

/// Asserts a 400 `validation_error` naming at least one field, and only fields
/// out of `allowed`.
fn assert_validation_among(resp: &Response, allowed: &[&str]) {
    assert_error(resp, 400, "validation_error");
    let body = resp.json();
    for field in body["fields"].as_object().unwrap().keys() {
        assert!(
            allowed.contains(&field.as_str()),
            "unexpected field {field:?} (allowed {allowed:?}): {body}"
        );
    }
}

#[test]
fn create_list_get_and_delete_private_tokens() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "pt-crud");
    let before = now();
    let first = issue_private_token(&srv, &tokens.access, "ci deploy", 3600);
    let created_at = unix_of(&first.created_at);
    assert!((created_at - before).abs() <= 5, "{}", first.body);
    assert_eq!(unix_of(&first.expires_at) - created_at, 3600);

    let at = now() + 7200;
    let resp = post_private_token(
        &srv,
        &tokens.access,
        &json!({"name": "backup", "expires_at": rfc3339_of(at)}),
    );
    let second = expect_private_token(&resp);
    assert_eq!(second.name, "backup");
    assert_eq!(unix_of(&second.expires_at), at);
    let resp = post_private_token(
        &srv,
        &tokens.access,
        &json!({"name": "  grafana  ", "expires_in": 60}),
    );
    let third = expect_private_token(&resp);
    assert_eq!(third.name, "grafana", "the name is trimmed");
    assert_ne!(first.id, second.id);
    assert_ne!(first.token, second.token);

    // Order by creation time (not by insertion): the first is made 10 s old,
    // the second 20 s old.
    for (id, age) in [(&first.id, 10), (&second.id, 20)] {
        let n = srv.sql_execute(
            "UPDATE private_tokens SET created_at = created_at - ?2 WHERE id = ?1",
            rusqlite::params![id, age],
        );
        assert_eq!(n, 1);
    }
    for path in ["/tokens/", "/tokens"] {
        let resp = srv.get(path).bearer(&tokens.access).send();
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        for secret in [&first.token, &second.token, &third.token] {
            assert!(!resp.raw_text().contains(secret.as_str()), "lists a secret");
        }
        let list = resp.json()["tokens"].as_array().expect("tokens").clone();
        let ids: Vec<&str> = list.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [&third.id, &first.id, &second.id], "newest first");
        for entry in &list {
            assert_entry_shape(entry);
            assert!(entry["last_used_at"].is_null(), "never used: {entry}");
        }
        assert_eq!(list[1]["name"], "ci deploy");
        assert_eq!(list[1]["expires_at"], first.expires_at.as_str());
    }

    let list = list_private_tokens(&srv, &tokens.access);
    for path in [
        format!("/tokens/{}", first.id),
        format!("/tokens/{}/", first.id),
    ] {
        let resp = srv.get(&path).bearer(&tokens.access).send();
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert!(!resp.raw_text().contains(&first.token));
        assert_eq!(resp.json(), list[1], "GET one = its list entry");
    }

    assert_eq!(get_profile(&srv, &first.token).status, 200);
    let resp = srv
        .request("DELETE", &format!("/tokens/{}", first.id))
        .bearer(&tokens.access)
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_error(&get_profile(&srv, &first.token), 401, "token_not_valid");
    let resp = srv
        .get(&format!("/tokens/{}", first.id))
        .bearer(&tokens.access)
        .send();
    assert_error(&resp, 404, "not_found");
    let resp = srv
        .request("DELETE", &format!("/tokens/{}/", first.id))
        .bearer(&tokens.access)
        .send();
    assert_error(&resp, 404, "not_found");
    let left: Vec<Value> = list_private_tokens(&srv, &tokens.access);
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|t| t["id"] != first.id.as_str()));
    assert_eq!(
        get_profile(&srv, &second.token).status,
        200,
        "others live on"
    );
}

#[test]
fn a_private_token_is_a_pt_jwt_accepted_wherever_an_access_token_is() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "pt-jwt");
    let pt = issue_private_token(&srv, &tokens.access, "script", 600);
    let jwt = decode_jwt(&pt.token);
    assert_eq!(jwt.header["typ"], "pt+jwt", "{}", jwt.header);
    assert_eq!(jwt.header["alg"], "EdDSA", "{}", jwt.header);
    assert_eq!(jwt.header["kid"], kid_of(&tokens.access).as_str());
    let claims = &jwt.claims;
    assert_eq!(claims["jti"], pt.id.as_str(), "{claims}");
    assert_eq!(claims["sub"], account.user["id"], "{claims}");
    assert_eq!(claims["iss"], "latchkey", "{claims}");
    assert!(
        claims["aud"] == "latchkey"
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "latchkey")),
        "{claims}"
    );
    assert_eq!(claims["exp"].as_i64(), Some(unix_of(&pt.expires_at)));
    assert_eq!(claims["iat"].as_i64(), Some(unix_of(&pt.created_at)));
    assert!(claims.get("sid").is_none(), "no session: {claims}");
    assert!(verify_against_jwks(&srv, &pt.token));

    let resp = get_profile(&srv, &pt.token);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), tokens.user);
    for method in ["PUT", "PATCH"] {
        let resp = srv
            .request(method, "/profile/")
            .bearer(&pt.token)
            .json(&json!({"name": format!("Grace Hopper {}", &method[..1])}))
            .send();
        assert_eq!(resp.status, 200, "{method}: {}", resp.text());
    }
    assert_eq!(
        get_profile(&srv, &pt.token).json()["name"],
        "Grace Hopper P"
    );

    // `typ` decides the kind: the same claims as an access token have no session,
    // and an access token passed off as a private token names no private token.
    let as_access = forge(&srv, &pt.token, |h, _| h["typ"] = json!("at+jwt"));
    assert_error(&get_profile(&srv, &as_access), 401, "token_not_valid");
    let as_private = forge(&srv, &tokens.access, |h, _| h["typ"] = json!("pt+jwt"));
    assert_error(&get_profile(&srv, &as_private), 401, "token_not_valid");
    // A refresh-style use of a private token is refused.
    assert_error(&refresh(&srv, &pt.token), 400, "invalid_refresh_token");
}

#[test]
fn the_expiry_is_required_exclusive_in_the_future_and_bounded() {
    let srv = Server::with_args(&["--max-private-token-ttl", "1000"]);
    let (_, tokens) = new_session(&srv, "pt-expiry");
    let post = |body: Value| post_private_token(&srv, &tokens.access, &body);

    assert_validation_error(&post(json!({"name": "x"})), &["expires_in"]);
    assert_validation_error(&post(json!({})), &["expires_in", "name"]);
    assert_validation_among(
        &post(json!({"name": "x", "expires_in": 60, "expires_at": rfc3339_of(now() + 60)})),
        &["expires_in", "expires_at"],
    );
    for bad in [json!(0), json!(-5), json!(1.5), json!("60"), json!(null)] {
        let resp = post(json!({"name": "x", "expires_in": bad}));
        if bad.is_null() {
            // `null` is as good as absent: still no expiry.
            assert_validation_among(&resp, &["expires_in", "expires_at"]);
        } else {
            assert_validation_error(&resp, &["expires_in"]);
        }
    }
    for bad in [
        json!(rfc3339_of(now() - 60)),
        json!("tomorrow"),
        json!("2030-13-01T00:00:00Z"),
        json!(12345),
    ] {
        let resp = post(json!({"name": "x", "expires_at": bad}));
        assert_validation_error(&resp, &["expires_at"]);
    }
    // Beyond --max-private-token-ttl, either way of saying it.
    assert_validation_among(
        &post(json!({"name": "x", "expires_in": 1001})),
        &["expires_in"],
    );
    for expires_at in [rfc3339_of(now() + 1100), "9999-12-31T23:59:59Z".into()] {
        assert_validation_among(
            &post(json!({"name": "x", "expires_at": expires_at})),
            &["expires_in", "expires_at"],
        );
    }
    assert_validation_among(
        &post(json!({"name": "x", "expires_in": i64::MAX})),
        &["expires_in"],
    );
    assert_validation_among(
        &post(json!({"name": "x", "expires_in": u64::MAX})),
        &["expires_in"],
    );
    // Names: 1 to 100 characters.
    for bad in [json!(""), json!("   "), json!("n".repeat(101)), json!(7)] {
        let resp = post(json!({"name": bad, "expires_in": 60}));
        if bad.is_number() {
            // Not a string: refused either as the wrong JSON or as a bad name.
            assert_eq!(resp.status, 400, "{}", resp.text());
            let code = resp.json()["code"].clone();
            assert!(
                code == "invalid_json" || code == "validation_error",
                "{code}"
            );
        } else {
            assert_validation_error(&resp, &["name"]);
        }
    }
    // Every failing field at once.
    assert_validation_error(
        &post(json!({"name": "", "expires_in": -1})),
        &["expires_in", "name"],
    );
    assert!(
        list_private_tokens(&srv, &tokens.access).is_empty(),
        "nothing refused was stored"
    );

    // The limits themselves are fine.
    let longest = issue_private_token(&srv, &tokens.access, &"n".repeat(100), 1000);
    assert_eq!(
        unix_of(&longest.expires_at) - unix_of(&longest.created_at),
        1000
    );
    // Any RFC 3339 offset; the answer is in UTC.
    let at = now() + 900;
    let local = rfc3339_of(at + 7200).replace('Z', "+02:00");
    let resp = post(json!({"name": "é", "expires_at": local}));
    assert_eq!(unix_of(&expect_private_token(&resp).expires_at), at);
    let resp = post(json!({"name": "ok", "expires_in": 1}));
    expect_private_token(&resp);
    assert_eq!(list_private_tokens(&srv, &tokens.access).len(), 3);
    let resp = srv
        .post("/tokens/")
        .bearer(&tokens.access)
        .body_with_type("application/json", "{")
        .send();
    assert_error(&resp, 400, "invalid_json");
}

#[test]
fn a_too_distant_expires_at_is_named_as_expires_at() {
    let srv = Server::with_args(&["--max-private-token-ttl", "1000"]);
    let (_, tokens) = new_session(&srv, "pt-too-far");
    let body = json!({"name": "x", "expires_at": rfc3339_of(now() + 1100)});
    let resp = post_private_token(&srv, &tokens.access, &body);
    assert_validation_error(&resp, &["expires_at"]);
    let resp = srv
        .post(&format!(
            "/tokens/{}/rotate",
            issue_private_token(&srv, &tokens.access, "y", 60).id
        ))
        .bearer(&tokens.access)
        .json(&json!({"expires_at": rfc3339_of(now() + 1100)}))
        .send();
    assert_validation_error(&resp, &["expires_at"]);
}

#[test]
fn another_users_token_id_is_not_found() {
    let srv = Server::start();
    let (_, ada) = new_session(&srv, "pt-owner");
    let (_, eve) = new_session(&srv, "pt-other");
    let pt = issue_private_token(&srv, &ada.access, "mine", 600);
    let paths = |id: &str| {
        [
            ("GET", format!("/tokens/{id}")),
            ("DELETE", format!("/tokens/{id}")),
            ("POST", format!("/tokens/{id}/rotate")),
        ]
    };
    for (method, path) in paths(&pt.id) {
        let resp = srv.request(method, &path).bearer(&eve.access).send();
        assert_error(&resp, 404, "not_found");
    }
    assert!(list_private_tokens(&srv, &eve.access).is_empty());
    assert_eq!(
        get_profile(&srv, &pt.token).status,
        200,
        "still alive after another user's attempts"
    );
    assert_eq!(
        list_private_tokens(&srv, &ada.access)[0]["id"],
        pt.id.as_str()
    );
    // Unknown ids and ids that are not UUIDs are not found either.
    for id in ["00000000-0000-4000-8000-000000000000", "1", "not-a-uuid"] {
        for (method, path) in paths(id) {
            let resp = srv.request(method, &path).bearer(&ada.access).send();
            assert_error(&resp, 404, "not_found");
        }
    }
}

#[test]
fn a_private_token_may_not_manage_tokens_sessions_password_email_or_account() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "pt-forbidden");
    let pt = issue_private_token(&srv, &tokens.access, "script", 600);
    let other = issue_private_token(&srv, &tokens.access, "other", 600);
    let sid = &tokens.session_id;
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/tokens/".into(),
            Some(json!({"name": "x", "expires_in": 60})),
        ),
        ("GET", "/tokens/".into(), None),
        ("GET", format!("/tokens/{}", pt.id), None),
        ("GET", format!("/tokens/{}", other.id), None),
        ("DELETE", format!("/tokens/{}", other.id), None),
        ("DELETE", format!("/tokens/{}", pt.id), None),
        ("POST", format!("/tokens/{}/rotate", other.id), None),
        ("POST", format!("/tokens/{}/rotate", pt.id), Some(json!({}))),
        ("GET", "/sessions/".into(), None),
        ("DELETE", format!("/sessions/{sid}"), None),
        ("POST", "/logout/all/".into(), None),
        (
            "POST",
            "/password/".into(),
            Some(json!({"current_password": PASSWORD, "new_password": "a new long passphrase 9"})),
        ),
        (
            "PUT",
            "/profile/".into(),
            Some(json!({"email": unique_email("moved"), "current_password": PASSWORD})),
        ),
        (
            "PATCH",
            "/profile/".into(),
            Some(json!({"email": unique_email("moved"), "current_password": PASSWORD})),
        ),
        (
            "DELETE",
            "/profile/".into(),
            Some(json!({"password": PASSWORD})),
        ),
    ];
    for (method, path, body) in &attempts {
        let mut request = srv.request(method, path).bearer(&pt.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let resp = request.send();
        assert_error(&resp, 403, "permission_denied");
        assert!(!resp.raw_text().contains(&pt.token), "echoes the token");
    }
    // Nothing changed: both tokens, the session, the email and the account live.
    let profile = get_profile(&srv, &pt.token);
    assert_eq!(profile.status, 200);
    assert_eq!(profile.json()["email"], account.email.as_str());
    assert_eq!(get_profile(&srv, &other.token).status, 200);
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    assert_eq!(list_private_tokens(&srv, &tokens.access).len(), 2);
    assert_eq!(refresh(&srv, &tokens.refresh).status, 200);
    // Re-sending the email it already has is not an email change.
    let resp = srv
        .put("/profile/")
        .bearer(&pt.token)
        .json(&json!({"email": account.email}))
        .send();
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn a_private_token_revoked_while_in_use_is_refused_on_its_next_request() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "pt-revoke");
    let deleted = issue_private_token(&srv, &tokens.access, "deleted", 600);
    let revoked = issue_private_token(&srv, &tokens.access, "revoked", 600);
    // Each token is in use on its own keep-alive connection.
    let mut conn_deleted = Conn::open(srv.addr);
    let mut conn_revoked = Conn::open(srv.addr);
    let profile = |token: &str| srv.get("/profile/").bearer(token);
    for _ in 0..3 {
        assert_eq!(
            profile(&deleted.token).send_on(&mut conn_deleted).status,
            200
        );
        assert_eq!(
            profile(&revoked.token).send_on(&mut conn_revoked).status,
            200
        );
    }
    let resp = srv
        .request("DELETE", &format!("/tokens/{}", deleted.id))
        .bearer(&tokens.access)
        .send();
    assert_eq!(resp.status, 204);
    assert_revoked_answer(&post_revoke(&srv, &revoked.token));
    let resp = profile(&deleted.token).send_on(&mut conn_deleted);
    assert_error(&resp, 401, "token_not_valid");
    let resp = profile(&revoked.token).send_on(&mut conn_revoked);
    assert_error(&resp, 401, "token_not_valid");
    assert!(list_private_tokens(&srv, &tokens.access).is_empty());
    // The signature is still good: only the database says no.
    assert!(verify_against_jwks(&srv, &deleted.token));
}

#[test]
fn rotation_keeps_the_name_and_the_old_lifetime_unless_given() {
    let srv = Server::with_args(&["--max-private-token-ttl", "100000"]);
    let (_, tokens) = new_session(&srv, "pt-rotate");
    let old = issue_private_token(&srv, &tokens.access, "nightly backup", 5000);
    // Made 1000 s ago: the same lifetime (5000 s) then differs from the same
    // expiry (4000 s from now).
    srv.sql_execute(
        "UPDATE private_tokens SET created_at = created_at - 1000,
         expires_at = expires_at - 1000 WHERE id = ?1",
        [&old.id],
    );
    let resp = srv
        .post(&format!("/tokens/{}/rotate", old.id))
        .bearer(&tokens.access)
        .send();
    let new = expect_private_token(&resp);
    assert_eq!(new.name, "nightly backup");
    assert_ne!(new.id, old.id);
    assert_ne!(new.token, old.token);
    assert_eq!(
        unix_of(&new.expires_at) - unix_of(&new.created_at),
        5000,
        "{}",
        new.body
    );
    assert!((unix_of(&new.created_at) - now()).abs() <= 5);
    assert_eq!(decode_jwt(&new.token).claims["jti"], new.id.as_str());
    assert_eq!(decode_jwt(&new.token).header["typ"], "pt+jwt");
    // The old one is revoked at once, the new one works.
    assert_error(&get_profile(&srv, &old.token), 401, "token_not_valid");
    let resp = srv
        .get(&format!("/tokens/{}", old.id))
        .bearer(&tokens.access)
        .send();
    assert_error(&resp, 404, "not_found");
    let resp = srv
        .post(&format!("/tokens/{}/rotate", old.id))
        .bearer(&tokens.access)
        .send();
    assert_error(&resp, 404, "not_found");
    assert_eq!(get_profile(&srv, &new.token).status, 200);
    let list = list_private_tokens(&srv, &tokens.access);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], new.id.as_str());

    // A new lifetime may be given, either way; an empty object keeps the old one.
    let rotate = |id: &str, body: Value| {
        srv.post(&format!("/tokens/{id}/rotate/"))
            .bearer(&tokens.access)
            .json(&body)
            .send()
    };
    let short = expect_private_token(&rotate(&new.id, json!({"expires_in": 60})));
    assert_eq!(short.name, "nightly backup");
    assert_eq!(unix_of(&short.expires_at) - unix_of(&short.created_at), 60);
    let same = expect_private_token(&rotate(&short.id, json!({})));
    assert_eq!(unix_of(&same.expires_at) - unix_of(&same.created_at), 60);
    let at = now() + 9000;
    let dated = expect_private_token(&rotate(&same.id, json!({"expires_at": rfc3339_of(at)})));
    assert_eq!(unix_of(&dated.expires_at), at);
    assert_error(&get_profile(&srv, &same.token), 401, "token_not_valid");

    // A bad expiry leaves the token as it was.
    for body in [
        json!({"expires_in": 0}),
        json!({"expires_in": 100001}),
        json!({"expires_in": 60, "expires_at": rfc3339_of(now() + 60)}),
        json!({"expires_at": rfc3339_of(now() - 1)}),
    ] {
        let resp = rotate(&dated.id, body);
        assert_validation_among(&resp, &["expires_in", "expires_at"]);
    }
    assert_eq!(get_profile(&srv, &dated.token).status, 200);
    assert_eq!(list_private_tokens(&srv, &tokens.access).len(), 1);
}

#[test]
fn concurrent_rotations_of_one_token_make_one_successor() {
    const THREADS: usize = 8;
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "pt-race");
    let old = issue_private_token(&srv, &tokens.access, "raced", 600);
    let request = srv
        .post(&format!("/tokens/{}/rotate", old.id))
        .bearer(&tokens.access);
    let answers = send_together(&srv, &[&request; THREADS]);
    let mut winners = Vec::new();
    for resp in &answers {
        if resp.status == 201 {
            winners.push(expect_private_token(resp));
        } else {
            assert_error(resp, 404, "not_found");
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "one rotation wins, the others find nothing"
    );
    let list = list_private_tokens(&srv, &tokens.access);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], winners[0].id.as_str());
    assert_eq!(get_profile(&srv, &winners[0].token).status, 200);
    assert_error(&get_profile(&srv, &old.token), 401, "token_not_valid");
}

#[test]
fn an_expired_private_token_gives_token_expired() {
    let srv = Server::with_args(&["--leeway", "0"]);
    let (_, tokens) = new_session(&srv, "pt-expired");
    let pt = issue_private_token(&srv, &tokens.access, "short", 3);
    let exp = unix_of(&pt.expires_at);
    // With --leeway 0 it works while the clock is before `exp` and is refused
    // from `exp` on (one clock: the server runs on this machine).
    let mut uses = 0;
    let expired = poll_until(Duration::from_secs(8), || {
        let sent = now();
        let resp = get_profile(&srv, &pt.token);
        let received = now();
        match resp.status {
            200 => {
                assert!(sent < exp, "accepted at {sent}, past its expiry {exp}");
                uses += 1;
                false
            }
            _ => {
                assert_error(&resp, 401, "token_expired");
                assert!(received >= exp, "refused at {received}, before {exp}");
                true
            }
        }
    });
    assert!(expired, "a private token past its expiry still works");
    assert!(uses > 0, "never accepted before its expiry");
    assert_error(&get_profile(&srv, &pt.token), 401, "token_expired");
    // The same with the 419 convention.
    let srv = Server::with_args(&["--expired-token-status", "419"]);
    let (_, tokens) = new_session(&srv, "pt-expired-419");
    let pt = issue_private_token(&srv, &tokens.access, "old", 600);
    // A copy of it that expired a minute and a half ago (past any leeway),
    // signed with the service's own key.
    let stale = forge(&srv, &pt.token, |_, c| {
        c["iat"] = json!(now() - 700);
        c["exp"] = json!(now() - 90);
    });
    assert_error(&get_profile(&srv, &stale), 419, "token_expired");
    assert_eq!(get_profile(&srv, &pt.token).status, 200);
}

#[test]
fn last_used_at_is_kept_but_not_written_on_each_use() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder().db_dir(dir.path()).start();
    let (_, tokens) = new_session(&srv, "pt-used");
    let pt = issue_private_token(&srv, &tokens.access, "used", 600);
    let unused = issue_private_token(&srv, &tokens.access, "unused", 600);
    let stored = |srv: &Server| {
        srv.sql_i64(
            "SELECT last_used_at FROM private_tokens WHERE id = ?1",
            [&pt.id],
        )
    };
    assert_eq!(stored(&srv), None);
    let before = now();
    for _ in 0..5 {
        assert_eq!(get_profile(&srv, &pt.token).status, 200);
    }
    let resp = srv
        .get(&format!("/tokens/{}", pt.id))
        .bearer(&tokens.access)
        .send();
    assert_eq!(resp.status, 200);
    let seen = resp.json()["last_used_at"]
        .as_str()
        .map(unix_of)
        .unwrap_or_else(|| panic!("last_used_at not shown after use: {}", resp.text()));
    assert!(seen >= before - 1 && seen <= now() + 1, "{seen}");
    let list = list_private_tokens(&srv, &tokens.access);
    let entry = |id: &str| list.iter().find(|t| t["id"] == id).unwrap().clone();
    assert_eq!(entry(&pt.id)["last_used_at"], rfc3339_of(seen).as_str());
    assert!(entry(&unused.id)["last_used_at"].is_null());
    // Using a token is not a database write: the row is unchanged until the
    // periodic flush (every minute) or the shutdown one.
    assert_eq!(
        stored(&srv),
        None,
        "last_used_at written on the request path"
    );
    let db = srv.db.clone();
    srv.stop();
    let conn = crate::harness::lifecycle::open_db(&db);
    let written: Option<i64> = conn
        .query_row(
            "SELECT last_used_at FROM private_tokens WHERE id = ?1",
            [&pt.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        written,
        Some(seen),
        "the shutdown flush writes the last use"
    );
    let untouched: Option<i64> = conn
        .query_row(
            "SELECT last_used_at FROM private_tokens WHERE id = ?1",
            [&unused.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(untouched, None);
}
