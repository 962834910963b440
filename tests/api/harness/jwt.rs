//! JWTs checked independently of the service's code: header and claims decoded by
//! hand (base64url), the Ed25519 signature verified with `ring` against the JWKS
//! key, and tokens minted with the signing key read from the test's own database
//! (expired ones, or ones with a wrong issuer, audience or type).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde_json::Value;

use super::server::Server;

/// A decoded compact JWS.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Splits and decodes a token; panics when it is not a three-part JWS of JSON.
pub fn decode_jwt(token: &str) -> Jwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    let json = |part: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_else(|e| panic!("JWT part is not unpadded base64url ({e}): {part}"));
        serde_json::from_slice(&bytes).expect("JWT part is not JSON")
    };
    Jwt {
        header: json(parts[0]),
        claims: json(parts[1]),
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: URL_SAFE_NO_PAD
            .decode(parts[2])
            .expect("signature is not base64url"),
    }
}

/// `GET /.well-known/jwks.json` → the `keys` array.
pub fn jwks_keys(srv: &Server) -> Vec<Value> {
    let resp = srv.get("/.well-known/jwks.json").send();
    assert_eq!(resp.status, 200, "jwks: {}", resp.text());
    resp.json()["keys"]
        .as_array()
        .expect("jwks has a keys array")
        .clone()
}

/// Verifies the token's Ed25519 signature against one JWK (`x`).
pub fn signature_valid(token: &str, jwk: &Value) -> bool {
    let jwt = decode_jwt(token);
    let x = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().expect("jwk has x"))
        .expect("x is base64url");
    UnparsedPublicKey::new(&ED25519, x)
        .verify(jwt.signing_input.as_bytes(), &jwt.signature)
        .is_ok()
}

/// Finds the JWK named by the token's `kid` and verifies the signature with it.
pub fn verify_against_jwks(srv: &Server, token: &str) -> bool {
    let kid = decode_jwt(token).header["kid"].clone();
    jwks_keys(srv)
        .iter()
        .find(|k| k["kid"] == kid)
        .is_some_and(|k| signature_valid(token, k))
}

/// The stored PKCS#8 private key named `kid`, read from the server's database.
pub fn signing_key(db: &Path, kid: &str) -> Ed25519KeyPair {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the database read-only");
    let pkcs8: Vec<u8> = conn
        .query_row(
            "SELECT private_pkcs8 FROM signing_keys WHERE kid = ?1",
            [kid],
            |row| row.get(0),
        )
        .expect("signing_keys holds the token's kid");
    Ed25519KeyPair::from_pkcs8(&pkcs8)
        .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8))
        .expect("stored key is Ed25519 PKCS#8")
}

/// Signs `header` and `claims` with the key named by the header's `kid`, as stored
/// in `db`; `sign_with` picks another stored key (for an unknown-kid token).
pub fn mint(db: &Path, header: &Value, claims: &Value, sign_with: Option<&str>) -> String {
    let kid = sign_with
        .or_else(|| header["kid"].as_str())
        .expect("a kid to sign with");
    let key = signing_key(db, kid);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// Re-signs a real access token after `edit` changed its header or claims.
pub fn forge(
    srv: &Server,
    access_token: &str,
    edit: impl FnOnce(&mut Value, &mut Value),
) -> String {
    let jwt = decode_jwt(access_token);
    let kid = jwt.header["kid"].as_str().expect("kid").to_string();
    let (mut header, mut claims) = (jwt.header, jwt.claims);
    edit(&mut header, &mut claims);
    mint(&srv.db, &header, &claims, Some(&kid))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
