//! Access tokens checked from the outside: header and claims decoded by hand, the
//! signature verified with `ring` against the JWKS key, `--issuer`, `--audience`,
//! `--access-ttl` and `--leeway`, expiry (401 or 419 `token_expired`), and forged
//! tokens (wrong issuer, audience, type, key) refused as `token_not_valid`.

use serde_json::{Value, json};

use crate::harness::*;

#[test]
fn the_access_token_is_an_eddsa_at_jwt_with_the_contract_claims() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "claims");
    let jwt = decode_jwt(&tokens.access);
    assert_eq!(jwt.header["alg"], "EdDSA", "{}", jwt.header);
    assert_eq!(jwt.header["typ"], "at+jwt", "{}", jwt.header);
    let kid = jwt.header["kid"].as_str().expect("kid");
    assert!(!kid.is_empty());

    let claims = &jwt.claims;
    assert_eq!(claims["iss"], "latchkey", "{claims}");
    assert!(
        audience_is(claims, "latchkey"),
        "aud defaults to the issuer: {claims}"
    );
    assert_eq!(claims["sub"], account.user["id"], "{claims}");
    assert_eq!(claims["sid"], tokens.session_id.as_str(), "{claims}");
    assert_eq!(claims["amr"], json!(["pwd"]), "RFC 8176: {claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    let iat = claims["iat"].as_i64().expect("iat is a number");
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert!((iat - now()).abs() <= 5, "iat is now: {iat}");
    assert_eq!(exp - iat, 3600, "default --access-ttl");
    assert_eq!(jwt.signature.len(), 64);

    let keys = jwks_keys(&srv);
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid is published");
    assert!(
        signature_valid(&tokens.access, jwk),
        "signature does not verify"
    );
    let tampered = tamper(&tokens.access, tokens.access.rfind('.').unwrap() + 5);
    assert!(!signature_valid(&tampered, jwk), "the check itself works");
}

#[test]
fn the_jwks_publishes_one_public_ed25519_key() {
    let srv = Server::start();
    let resp = srv.get("/.well-known/jwks.json").send();
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let cache = resp.header("Cache-Control").unwrap_or_default();
    let max_age = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(max_age.is_some(), "Cache-Control: {cache:?}");
    let keys = resp.json()["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(
        key.get("d").is_none(),
        "the private key is published: {key}"
    );
    let x = key["x"].as_str().expect("x");
    use base64::Engine;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(x)
        .expect("x is unpadded base64url");
    assert_eq!(x.len(), 32);
    assert_eq!(srv.get("/.well-known/jwks.json/").send().status, 200);
}

#[test]
fn issuer_audience_and_access_ttl_flags_shape_the_token() {
    let srv = Server::with_args(&[
        "--issuer",
        "https://auth.example.test",
        "--audience",
        "https://api.example.test",
        "--access-ttl",
        "120",
    ]);
    let (_, tokens) = new_session(&srv, "flags");
    assert_eq!(tokens.body["expires_in"], 120);
    let claims = decode_jwt(&tokens.access).claims;
    assert_eq!(claims["iss"], "https://auth.example.test");
    assert!(audience_is(&claims, "https://api.example.test"), "{claims}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    let resp = refresh(&srv, &tokens.refresh);
    assert_eq!(resp.json()["expires_in"], 120);
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
}

#[test]
fn the_audience_defaults_to_the_issuer() {
    let srv = Server::with_args(&["--issuer", "https://id.example.test"]);
    let (_, tokens) = new_session(&srv, "aud");
    let claims = decode_jwt(&tokens.access).claims;
    assert_eq!(claims["iss"], "https://id.example.test");
    assert!(audience_is(&claims, "https://id.example.test"), "{claims}");
}

#[test]
fn a_token_minted_with_the_stored_key_is_accepted() {
    // Proves the minting below matches the service, so its refusals mean something.
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "mint");
    let token = forge(&srv, &tokens.access, |_, claims| {
        claims["jti"] = json!("minted-by-the-test");
        claims["iat"] = json!(now() - 5);
        claims["exp"] = json!(now() + 300);
    });
    let resp = get_profile(&srv, &token);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn an_expired_token_is_token_expired() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "expired");
    let expired = forge(&srv, &tokens.access, |_, claims| expire(claims, 120));
    let resp = get_profile(&srv, &expired);
    assert_error(&resp, 401, "token_expired");
    assert!(!resp.raw_text().contains(&expired));
    let resp = srv.post("/logout/all/").bearer(&expired).send();
    assert_error(&resp, 401, "token_expired");
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
}

#[test]
fn expired_token_status_419_changes_only_the_status() {
    let srv = Server::with_args(&["--expired-token-status", "419"]);
    let (_, tokens) = new_session(&srv, "419");
    let expired = forge(&srv, &tokens.access, |_, claims| expire(claims, 120));
    assert_error(&get_profile(&srv, &expired), 419, "token_expired");
    // Other token errors keep 401.
    assert_error(&get_profile(&srv, "abc.def.ghi"), 401, "token_not_valid");
    assert_error(&srv.get("/profile/").send(), 401, "not_authenticated");
}

#[test]
fn the_leeway_applies_to_exp() {
    // Default leeway 30 s: ten seconds past exp is still accepted.
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "leeway");
    let recent = forge(&srv, &tokens.access, |_, claims| expire(claims, 10));
    assert_eq!(get_profile(&srv, &recent).status, 200, "within the leeway");
    let old = forge(&srv, &tokens.access, |_, claims| expire(claims, 45));
    assert_error(&get_profile(&srv, &old), 401, "token_expired");
    drop(srv);

    let srv = Server::with_args(&["--leeway", "0"]);
    let (_, tokens) = new_session(&srv, "exact");
    let recent = forge(&srv, &tokens.access, |_, claims| expire(claims, 3));
    assert_error(&get_profile(&srv, &recent), 401, "token_expired");
}

#[test]
fn an_access_ttl_of_one_second_expires_for_real() {
    let srv = Server::with_args(&["--access-ttl", "1", "--leeway", "0"]);
    let (_, tokens) = new_session(&srv, "ttl");
    assert_eq!(tokens.body["expires_in"], 1);
    let refused = poll_until(std::time::Duration::from_secs(5), || {
        get_profile(&srv, &tokens.access).status != 200
    });
    assert!(
        refused,
        "an access token outlived --access-ttl 1 --leeway 0"
    );
    assert_error(&get_profile(&srv, &tokens.access), 401, "token_expired");
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "future");
    let token = forge(&srv, &tokens.access, |_, claims| {
        claims["iat"] = json!(now() + 600);
        claims["exp"] = json!(now() + 4200);
    });
    assert_error(&get_profile(&srv, &token), 401, "token_not_valid");
}

#[test]
fn forged_tokens_are_token_not_valid() {
    let srv = Server::with_args(&["--issuer", "https://auth.example.test"]);
    let (_, tokens) = new_session(&srv, "forged");
    let forgeries: Vec<(&str, String)> = vec![
        (
            "wrong issuer",
            forge(&srv, &tokens.access, |_, c| {
                c["iss"] = json!("https://evil.example.test")
            }),
        ),
        (
            "wrong audience",
            forge(&srv, &tokens.access, |_, c| {
                c["aud"] = json!("https://other.example.test")
            }),
        ),
        (
            "no typ at+jwt",
            forge(&srv, &tokens.access, |h, _| h["typ"] = json!("JWT")),
        ),
        (
            "private token type",
            forge(&srv, &tokens.access, |h, _| h["typ"] = json!("pt+jwt")),
        ),
        (
            "unknown kid",
            forge(&srv, &tokens.access, |h, _| h["kid"] = json!("no-such-key")),
        ),
        (
            "unknown session",
            forge(&srv, &tokens.access, |_, c| {
                c["sid"] = json!("00000000-0000-4000-8000-000000000000")
            }),
        ),
        (
            "unknown user",
            forge(&srv, &tokens.access, |_, c| {
                c["sub"] = json!("00000000-0000-4000-8000-000000000000")
            }),
        ),
        (
            "no sid",
            forge(&srv, &tokens.access, |_, c| {
                c.as_object_mut().unwrap().remove("sid");
            }),
        ),
        ("alg none", alg_none(&tokens.access)),
    ];
    for (what, token) in forgeries {
        let resp = get_profile(&srv, &token);
        assert_eq!(resp.status, 401, "{what} accepted: {}", resp.text());
        assert_error(&resp, 401, "token_not_valid");
    }
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
}

#[test]
fn a_token_from_another_database_is_refused() {
    let first = Server::start();
    let second = Server::start();
    let (_, tokens) = new_session(&first, "elsewhere");
    let first_kid = &jwks_keys(&first)[0];
    let second_kid = &jwks_keys(&second)[0];
    assert_ne!(
        first_kid["x"], second_kid["x"],
        "each database has its own key"
    );
    assert_error(
        &get_profile(&second, &tokens.access),
        401,
        "token_not_valid",
    );
    // Even when it claims the other server's kid.
    let kid = second_kid["kid"].as_str().unwrap().to_string();
    let jwt = decode_jwt(&tokens.access);
    let mut header = jwt.header.clone();
    header["kid"] = json!(kid);
    let own_kid = jwt.header["kid"].as_str().unwrap();
    let lying = mint(&first.db, &header, &jwt.claims, Some(own_kid));
    assert_error(&get_profile(&second, &lying), 401, "token_not_valid");
    assert_eq!(get_profile(&first, &tokens.access).status, 200);
}

fn audience_is(claims: &Value, audience: &str) -> bool {
    match &claims["aud"] {
        Value::String(a) => a == audience,
        Value::Array(list) => list.len() == 1 && list[0] == audience,
        _ => false,
    }
}

/// Moves `exp` to `seconds_ago` and `iat` one TTL before it.
fn expire(claims: &mut Value, seconds_ago: i64) {
    claims["exp"] = json!(now() - seconds_ago);
    claims["iat"] = json!(now() - seconds_ago - 3600);
}

/// The token re-encoded with `alg: none` and no signature.
fn alg_none(access_token: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = decode_jwt(access_token);
    let mut header = jwt.header;
    header["alg"] = json!("none");
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(jwt.claims.to_string())
    )
}

#[test]
fn amr_is_the_sessions_and_refreshes_keep_it() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "amr");
    let refreshed = |srv: &Server| {
        let resp = refresh(srv, &tokens.refresh);
        assert_eq!(resp.status, 200, "{}", resp.text());
        decode_jwt(resp.json()["access_token"].as_str().unwrap()).claims
    };
    assert_eq!(refreshed(&srv)["amr"], json!(["pwd"]));
    // A session that a second factor completed (as MFA will record it).
    crate::harness::lifecycle::open_db(&srv.db)
        .execute(
            "UPDATE sessions SET amr = 'pwd otp' WHERE id = ?1",
            [&tokens.session_id],
        )
        .unwrap();
    assert_eq!(refreshed(&srv)["amr"], json!(["pwd", "otp"]));
    // Private tokens are not logins: no amr.
    let private = crate::harness::tokens::issue_private_token(&srv, &tokens.access, "amr", 3600);
    assert!(decode_jwt(&private.token).claims.get("amr").is_none());
}
