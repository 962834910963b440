//! Hostile bearer tokens beyond the forgeries of `jwt.rs`: algorithm
//! confusion (HS256 keyed with the public key, other `alg` names over a real
//! signature, a key embedded in the header), `kid` values that are paths, SQL
//! or not strings, truncated, padded and oversized tokens, and the tokens of
//! a user deleted by `latchkey users delete` while the service runs. Each is
//! refused with 401 `token_not_valid` and never echoed.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::harness::lifecycle::admin_ok;
use crate::harness::resilience::count_all;
use crate::harness::tokens::issue_private_token;
use crate::harness::*;

/// Asserts every token is refused with 401 `token_not_valid` on `GET /profile/`
/// without being echoed, then that `genuine` still works.
fn assert_all_refused(srv: &Server, hostile: &[(String, String)], genuine: &str) {
    for (what, token) in hostile {
        let resp = get_profile(srv, token);
        assert_eq!(resp.status, 401, "{what}: {token} got {}", resp.text());
        assert_error(&resp, 401, "token_not_valid");
        assert!(!resp.raw_text().contains(token.as_str()), "{what} echoed");
    }
    assert_eq!(get_profile(srv, genuine).status, 200, "the genuine token");
}

/// `header.claims` base64url-encoded, signed with HMAC-SHA256 under `secret`.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "hs256");
    let jwt = decode_jwt(&tokens.access);
    let jwk = jwks_keys(&srv)
        .into_iter()
        .find(|k| k["kid"] == jwt.header["kid"])
        .expect("the token's key is published");
    let x = jwk["x"].as_str().unwrap();
    let raw = URL_SAFE_NO_PAD.decode(x).unwrap();
    // SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): a fixed prefix, the key.
    let mut spki = hex_bytes("302a300506032b6570032100");
    spki.extend_from_slice(&raw);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&spki)
    );
    let jwks_body = srv.get("/.well-known/jwks.json").send().body;
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("raw public key", raw),
        ("x as text", x.as_bytes().to_vec()),
        ("the JWK", jwk.to_string().into_bytes()),
        ("the JWKS document", jwks_body),
        ("SPKI DER", spki),
        ("PEM", pem.into_bytes()),
        ("empty secret", Vec::new()),
    ];
    let mut hostile = Vec::new();
    for typ in ["at+jwt", "JWT"] {
        let mut header = jwt.header.clone();
        header["alg"] = json!("HS256");
        header["typ"] = json!(typ);
        for (what, secret) in &secrets {
            hostile.push((
                format!("HS256 ({typ}) keyed with {what}"),
                hs256(&header, &jwt.claims, secret),
            ));
        }
    }
    assert_all_refused(&srv, &hostile, &tokens.access);
}

#[test]
fn a_genuine_signature_under_another_alg_name_or_an_embedded_key_is_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "algconf");
    let jwt = decode_jwt(&tokens.access);
    let rest = tokens.access.split_once('.').unwrap().1;
    let mut hostile = Vec::new();
    // The genuine EdDSA signature, but a header that names another algorithm
    // (the signature then no longer covers the new header, so it must fail;
    // a verifier dispatching on `alg` must not even try).
    for alg in ["ES256", "RS256", "HS256", "eddsa", "Ed25519", "EdDSA ", ""] {
        let mut header = jwt.header.clone();
        header["alg"] = json!(alg);
        let encoded = URL_SAFE_NO_PAD.encode(header.to_string());
        hostile.push((format!("alg {alg:?}"), format!("{encoded}.{rest}")));
    }

    // An attacker's own Ed25519 key, handed over in the header (`jwk`, as in
    // CVE-2018-0114) or by URL (`jku`, `x5u`), with our kid or its own.
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let attacker = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let attacker_x = URL_SAFE_NO_PAD.encode(attacker.public_key().as_ref());
    let attacker_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": attacker_x});
    let sign = |header: &Value| {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(jwt.claims.to_string())
        );
        let signature = attacker.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    let our_kid = jwt.header["kid"].clone();
    for kid in [our_kid, json!(attacker_x)] {
        for (name, value) in [
            ("jwk", attacker_jwk.clone()),
            ("jku", json!("https://attacker.example.test/jwks.json")),
            ("x5u", json!("https://attacker.example.test/cert.pem")),
        ] {
            let mut header = jwt.header.clone();
            header["kid"] = kid.clone();
            header[name] = value;
            hostile.push((format!("attacker key by {name}, kid {kid}"), sign(&header)));
        }
    }
    assert_all_refused(&srv, &hostile, &tokens.access);
}

#[test]
fn a_kid_that_is_a_path_sql_or_not_a_string_is_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "kid");
    let real_kid = decode_jwt(&tokens.access).header["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let kids = [
        json!("../../../../../../../../dev/null"),
        json!("/dev/null"),
        json!("/etc/passwd"),
        json!("file:///etc/passwd"),
        json!("..\\..\\..\\windows\\win.ini"),
        json!(format!("../{real_kid}")),
        json!("' OR '1'='1"),
        json!(format!("{real_kid}' OR '1'='1")),
        json!("' UNION SELECT private_pkcs8 FROM signing_keys --"),
        json!("x'; DROP TABLE users; --"),
        json!("x'; DELETE FROM signing_keys; --"),
        json!(""),
        json!(format!("{real_kid}\u{0}")),
        json!(format!("{real_kid} ")),
        json!(real_kid.to_uppercase()),
        json!(null),
        json!(0),
        json!(true),
        json!([real_kid]),
        json!({"kid": real_kid}),
    ];
    let users_before = count_all(&srv.db, "users");
    let keys_before = count_all(&srv.db, "signing_keys");
    let mut hostile: Vec<(String, String)> = kids
        .iter()
        .map(|kid| {
            // Signed with the real key: only the kid is wrong.
            let token = forge(&srv, &tokens.access, |h, _| h["kid"] = kid.clone());
            (format!("kid {kid}"), token)
        })
        .collect();
    hostile.push((
        "no kid".to_string(),
        forge(&srv, &tokens.access, |h, _| {
            h.as_object_mut().unwrap().remove("kid");
        }),
    ));
    assert_all_refused(&srv, &hostile, &tokens.access);
    assert_eq!(count_all(&srv.db, "users"), users_before);
    assert_eq!(count_all(&srv.db, "signing_keys"), keys_before);
}

#[test]
fn truncated_padded_and_oversized_tokens_are_refused() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "truncated");
    let token = tokens.access.as_str();
    let parts: Vec<&str> = token.split('.').collect();
    let (header, claims, signature) = (parts[0], parts[1], parts[2]);
    let without_last = |s: &str, n: usize| s[..s.len() - n].to_string();
    let padded_header = URL_SAFE.encode(URL_SAFE_NO_PAD.decode(header).unwrap());
    let padded_signature = URL_SAFE.encode(URL_SAFE_NO_PAD.decode(signature).unwrap());
    let hostile: Vec<(&str, String)> = vec![
        ("last character cut", without_last(token, 1)),
        ("last four characters cut", without_last(token, 4)),
        (
            "half the signature",
            without_last(token, signature.len() / 2),
        ),
        ("no signature", format!("{header}.{claims}.")),
        ("two parts", format!("{header}.{claims}")),
        ("header only", header.to_string()),
        ("header and dot", format!("{header}.")),
        ("empty parts", "..".to_string()),
        ("only dots", "....".to_string()),
        ("signature part only", signature.to_string()),
        (
            "claims cut",
            format!("{header}.{}.{signature}", &claims[..claims.len() / 2]),
        ),
        ("padded with =", format!("{token}=")),
        ("padded with ==", format!("{token}==")),
        (
            "signature base64 padding",
            format!("{header}.{claims}.{padded_signature}"),
        ),
        ("a character appended", format!("{token}A")),
        ("two characters appended", format!("{token}AA")),
        ("a character prepended", format!("A{token}")),
        ("a fourth part", format!("{token}.{signature}")),
        ("a trailing dot", format!("{token}.")),
        ("signature doubled", format!("{token}{signature}")),
        (
            "standard alphabet",
            token.replace('-', "+").replace('_', "/") + "+/",
        ),
        (
            "oversized",
            format!("{header}.{claims}{}.{signature}", "A".repeat(6000)),
        ),
    ];
    let hostile: Vec<(String, String)> = hostile
        .into_iter()
        .map(|(what, t)| (what.to_string(), t))
        .collect();
    assert_all_refused(&srv, &hostile, token);
    // RFC 7235 token68 allows `=` only at the end: padding inside the token
    // makes the header itself malformed, which is `not_authenticated`.
    let padded_header = format!("{padded_header}=.{claims}.{signature}");
    let resp = get_profile(&srv, &padded_header);
    assert_error(&resp, 401, "not_authenticated");
    assert!(!resp.raw_text().contains(&padded_header), "echoed");
}

#[test]
fn a_signature_with_its_padding_bits_set_is_refused() {
    // A 64-byte signature is 86 base64url characters; the last one carries 2
    // bits of signature and 4 padding bits, which RFC 4648 §3.5 says must be
    // zero. A decoder that ignores them accepts 16 spellings of one token.
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "padbits");
    let token = &tokens.access;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *token.as_bytes().last().unwrap();
    let value = alphabet.iter().position(|c| *c == last).unwrap();
    assert_eq!(
        value & 0b1111,
        0,
        "a canonical encoding has zero padding bits"
    );
    let hostile: Vec<(String, String)> = (1..16)
        .map(|bits| {
            let mut bytes = token.as_bytes().to_vec();
            *bytes.last_mut().unwrap() = alphabet[value | bits];
            let spelling = String::from_utf8(bytes).unwrap();
            (format!("padding bits {bits:04b}"), spelling)
        })
        .collect();
    assert_all_refused(&srv, &hostile, token);
}

#[test]
fn the_tokens_of_a_user_deleted_by_the_admin_command_are_refused_at_once() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "admindel");
    let private = issue_private_token(&srv, &tokens.access, "script", 86_400);
    let (_, bystander) = new_session(&srv, "admindel-bystander");
    assert_eq!(get_profile(&srv, &private.token).status, 200);

    admin_ok(&srv.db, &["users", "delete", &account.email], "");

    // Both tokens still carry a good signature and an unexpired `exp`.
    for token in [&tokens.access, &private.token] {
        let resp = get_profile(&srv, token);
        assert_error(&resp, 401, "token_not_valid");
        let resp = srv
            .patch("/profile/")
            .bearer(token)
            .json(&json!({"name": "Ghost Writer"}))
            .send();
        assert_error(&resp, 401, "token_not_valid");
    }
    assert_error(
        &refresh(&srv, &tokens.refresh),
        400,
        "invalid_refresh_token",
    );
    // A token minted now, with the stored key, for the deleted user's id and
    // session is refused too: the check is against the database, not a cache.
    let reminted = forge(&srv, &tokens.access, |_, c| {
        c["iat"] = json!(now());
        c["exp"] = json!(now() + 600);
        c["jti"] = json!("00000000-0000-4000-8000-00000000abcd");
    });
    assert_error(&get_profile(&srv, &reminted), 401, "token_not_valid");
    assert_eq!(get_profile(&srv, &bystander.access).status, 200);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
