//! Access and private token claims, signing and verification.
//!
//! Both kinds are EdDSA JWTs told apart by the header `typ` (RFC 9068 §2.1:
//! `at+jwt` for access tokens; `pt+jwt` for private tokens, so a resource
//! server that checks `typ` never takes one for the other). Verification pins
//! the algorithm, looks the `kid` up in a [`KeyRing`] and checks the claims
//! against the caller's clock. Whether a session or private token has been
//! revoked is the caller's business: nothing here touches the database.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::jwt_provider;
use crate::domain::keys::{Jwk, Jwks, SigningKey};

/// The contract caps `--leeway` at 60 s: the flag's bound, verification's cap,
/// and how long cleanup keeps an expired private token.
pub const MAX_LEEWAY: u64 = 60;

/// Far longer than any token latchkey mints (about 500 bytes); refusing
/// bigger input up front bounds the work an anonymous caller can cause.
const MAX_TOKEN_LEN: usize = 4096;

/// Which kind of JWT, as carried in the header `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Login access token, `typ: at+jwt` (RFC 9068).
    Access,
    /// Long-lived private token, `typ: pt+jwt`.
    Private,
}

impl TokenKind {
    fn typ(self) -> &'static str {
        match self {
            TokenKind::Access => "at+jwt",
            TokenKind::Private => "pt+jwt",
        }
    }

    /// `typ` is a media type, so RFC 7515 §4.1.9 lets it carry the
    /// `application/` prefix and compares it without regard to case.
    fn from_typ(typ: &str) -> Option<TokenKind> {
        let bare = match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
            _ => typ,
        };
        [TokenKind::Access, TokenKind::Private]
            .into_iter()
            .find(|kind| bare.eq_ignore_ascii_case(kind.typ()))
    }
}

/// The claims of both token kinds (RFC 9068 §2.2 names).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Session id; access tokens carry it, private tokens do not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// How the session's login authenticated (RFC 8176: `["pwd"]`, or
    /// `["pwd", "otp"]` after a second factor); access tokens only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amr: Option<Vec<String>>,
}

/// What a verified token must say, from `--issuer`, `--audience`, `--leeway`.
#[derive(Clone, Debug)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
    /// Clock skew allowed on `exp` and `iat`, in seconds; 0 makes expiry
    /// exact. Values above 60 are treated as 60.
    pub leeway: u64,
}

/// Why a token was refused. Deliberately coarse: the HTTP answer must not
/// tell a caller which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Anything wrong but expiry → 401 `token_not_valid`.
    Invalid,
    /// Genuine, but past `exp` plus leeway → 401 (or 419) `token_expired`.
    Expired,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Invalid => "token not valid",
            TokenError::Expired => "token expired",
        })
    }
}

impl std::error::Error for TokenError {}

/// The keys tokens are checked against: one active signer plus the public
/// halves of older keys, by `kid`. Older keys' private bytes are dropped
/// here, since they never sign again.
#[derive(Clone)]
pub struct KeyRing {
    active: SigningKey,
    encoding: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    published: Vec<Jwk>,
}

impl KeyRing {
    /// Builds a ring. A key in `others` with the active key's `kid`, or a
    /// repeat of an earlier `kid`, is ignored: one `kid` names one key.
    pub fn new(active: SigningKey, others: Vec<SigningKey>) -> KeyRing {
        let mut verifying = HashMap::with_capacity(others.len() + 1);
        let mut published = Vec::with_capacity(others.len() + 1);
        for key in std::iter::once(&active).chain(&others) {
            if !verifying.contains_key(&key.kid) {
                verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&key.public));
                published.push(key.jwk());
            }
        }
        let encoding = EncodingKey::from_ed_der(active.pkcs8.expose());
        KeyRing {
            active,
            encoding,
            verifying,
            published,
        }
    }

    /// The key new tokens are signed with.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every public key in the ring, the active one first.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.published.clone(),
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.published.iter().map(|jwk| jwk.kid.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("active", &self.active.kid)
            .field("kids", &kids)
            .finish()
    }
}

/// Signs `claims` with the ring's active key; the header is
/// `{"typ": "at+jwt" | "pt+jwt", "alg": "EdDSA", "kid": …}`.
pub fn sign(ring: &KeyRing, kind: TokenKind, claims: &Claims) -> String {
    jwt_provider::install_provider();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(kind.typ().to_owned());
    header.kid = Some(ring.active.kid.clone());
    // Cannot fail: the claims are strings and integers, and a `SigningKey`
    // only exists with a PKCS#8 document ring has already parsed (`KeyMaterial`
    // cannot be built outside `keys`).
    #[allow(clippy::expect_used, reason = "infallible, see above")]
    jsonwebtoken::encode(&header, claims, &ring.encoding)
        .expect("signing with a parsed Ed25519 key cannot fail")
}

/// Verifies a token and returns its kind and claims.
///
/// Every failure is [`TokenError::Invalid`] except one: a token whose
/// signature, header and claims are all good but whose `exp` has passed is
/// [`TokenError::Expired`]. Expiry is judged only after everything else, so
/// "expired" never vouches for a forged or foreign token.
///
/// Time comes from `now` alone, for `exp` and `iat` alike (jsonwebtoken's own
/// `exp` check is off because it reads the system clock): one clock makes the
/// Expired decision consistent and lets tests move time. A token is valid
/// while `now < exp + leeway` (RFC 7519 §4.1.4: the current time must be
/// before `exp`), so with leeway 0 it expires at `exp` exactly. A token
/// issued more than `leeway` seconds after `now` is Invalid.
pub fn verify(
    ring: &KeyRing,
    expect: &Expectations,
    token: &str,
    now: i64,
) -> Result<(TokenKind, Claims), TokenError> {
    jwt_provider::install_provider();
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Invalid);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
    // Pinned before the key lookup; `decode` checks it again against
    // `Validation::algorithms`, and the provider knows no other algorithm.
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::Invalid);
    }
    // RFC 7515 §4.1.11: an extension we do not understand must be refused.
    if header.crit.is_some() {
        return Err(TokenError::Invalid);
    }
    let kind = header
        .typ
        .as_deref()
        .and_then(TokenKind::from_typ)
        .ok_or(TokenError::Invalid)?;
    // The kid is only ever a map key, so a path or SQL in it is just unknown.
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| ring.verifying.get(kid))
        .ok_or(TokenError::Invalid)?;

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    // Presence of these is checked by jsonwebtoken; `iat` and `jti` are
    // required by `Claims` itself (no serde default).
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map_err(|_| TokenError::Invalid)?
        .claims;

    let leeway = i64::try_from(expect.leeway.min(MAX_LEEWAY)).unwrap_or(0);
    if claims.iat > now.saturating_add(leeway) {
        return Err(TokenError::Invalid);
    }
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    Ok((kind, claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::{base64url_decode, base64url_encode};
    use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;

    fn new_ring() -> KeyRing {
        KeyRing::new(SigningKey::generate().unwrap(), Vec::new())
    }

    fn claims() -> Claims {
        Claims {
            iss: "latchkey".to_owned(),
            sub: "7d9f6c1e-3b0a-4c55-9a2e-1f0b8e6d2c44".to_owned(),
            aud: "latchkey".to_owned(),
            iat: NOW,
            exp: NOW + 3600,
            jti: "0b6f4e1c-9d2a-4f3e-8c7b-5a4d3e2f1a0b".to_owned(),
            sid: Some("5e1d2c3b-4a59-4687-9a0b-c1d2e3f4a5b6".to_owned()),
            amr: Some(vec!["pwd".to_owned()]),
        }
    }

    fn expect(leeway: u64) -> Expectations {
        Expectations {
            issuer: "latchkey".to_owned(),
            audience: "latchkey".to_owned(),
            leeway,
        }
    }

    fn header_of(token: &str) -> Value {
        let part = token.split('.').next().unwrap();
        serde_json::from_slice(&base64url_decode(part).unwrap()).unwrap()
    }

    /// A token with arbitrary header and claims, correctly Ed25519-signed by
    /// `key` outside our code, to test checks other than the signature.
    fn forge(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            base64url_encode(header.to_string().as_bytes()),
            base64url_encode(claims.to_string().as_bytes())
        );
        let pair = Ed25519KeyPair::from_pkcs8(key.pkcs8.expose()).unwrap();
        format!(
            "{input}.{}",
            base64url_encode(pair.sign(input.as_bytes()).as_ref())
        )
    }

    fn good_header(ring: &KeyRing) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ring.active().kid})
    }

    #[test]
    fn round_trip_access_token() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        assert_eq!(
            header_of(&token),
            json!({"typ": "at+jwt", "alg": "EdDSA", "kid": ring.active().kid})
        );
        assert_eq!(
            verify(&ring, &expect(30), &token, NOW),
            Ok((TokenKind::Access, claims()))
        );
    }

    #[test]
    fn private_tokens_carry_their_own_typ() {
        let ring = new_ring();
        let private = Claims {
            sid: None,
            amr: None,
            ..claims()
        };
        let token = sign(&ring, TokenKind::Private, &private);
        assert_eq!(header_of(&token)["typ"], "pt+jwt");
        let payload: Value =
            serde_json::from_slice(&base64url_decode(token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert!(payload.get("sid").is_none());
        assert_eq!(
            verify(&ring, &expect(30), &token, NOW),
            Ok((TokenKind::Private, private))
        );
    }

    #[test]
    fn typ_must_name_one_of_our_kinds() {
        let ring = new_ring();
        let claims = serde_json::to_value(claims()).unwrap();
        for (typ, kind) in [
            ("application/at+jwt", TokenKind::Access),
            ("AT+JWT", TokenKind::Access),
            ("application/PT+jwt", TokenKind::Private),
        ] {
            let token = forge(
                ring.active(),
                &json!({"alg": "EdDSA", "typ": typ, "kid": ring.active().kid}),
                &claims,
            );
            assert_eq!(
                verify(&ring, &expect(30), &token, NOW).map(|(k, _)| k),
                Ok(kind),
                "{typ}"
            );
        }
        for typ in [
            json!("JWT"),
            json!("rt+jwt"),
            json!("at+jwt "),
            json!("application/"),
            json!(""),
            json!(7),
        ] {
            let token = forge(
                ring.active(),
                &json!({"alg": "EdDSA", "typ": typ, "kid": ring.active().kid}),
                &claims,
            );
            assert_eq!(
                verify(&ring, &expect(30), &token, NOW),
                Err(TokenError::Invalid),
                "{typ}"
            );
        }
        let untyped = forge(
            ring.active(),
            &json!({"alg": "EdDSA", "kid": ring.active().kid}),
            &claims,
        );
        assert_eq!(
            verify(&ring, &expect(30), &untyped, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_invalid() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        let other_iss = Expectations {
            issuer: "someone-else".to_owned(),
            ..expect(30)
        };
        let other_aud = Expectations {
            audience: "api.example".to_owned(),
            ..expect(30)
        };
        assert_eq!(
            verify(&ring, &other_iss, &token, NOW),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(&ring, &other_aud, &token, NOW),
            Err(TokenError::Invalid)
        );
        // An audience array containing ours is not what we mint: refused.
        let mut as_array = serde_json::to_value(claims()).unwrap();
        as_array["aud"] = json!(["latchkey", "other"]);
        let token = forge(ring.active(), &good_header(&ring), &as_array);
        assert_eq!(
            verify(&ring, &expect(30), &token, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn expiry_honours_the_leeway() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        let exp = claims().exp;
        assert!(verify(&ring, &expect(30), &token, exp + 29).is_ok());
        assert_eq!(
            verify(&ring, &expect(30), &token, exp + 30),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&ring, &expect(30), &token, exp + 100_000),
            Err(TokenError::Expired)
        );
        // Leeway 0: valid until the second before `exp`, expired at `exp`.
        assert!(verify(&ring, &expect(0), &token, exp - 1).is_ok());
        assert_eq!(
            verify(&ring, &expect(0), &token, exp),
            Err(TokenError::Expired)
        );
        // Leeway is capped at the contract's 60 s.
        assert_eq!(
            verify(&ring, &expect(3600), &token, exp + 60),
            Err(TokenError::Expired)
        );
        assert!(verify(&ring, &expect(3600), &token, exp + 59).is_ok());
    }

    #[test]
    fn issued_in_the_future_is_invalid() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        assert!(verify(&ring, &expect(30), &token, NOW - 30).is_ok());
        assert_eq!(
            verify(&ring, &expect(30), &token, NOW - 31),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(&ring, &expect(0), &token, NOW - 1),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn expired_only_when_everything_else_holds() {
        let ring = new_ring();
        let late = NOW + 100_000;
        let token = sign(&ring, TokenKind::Access, &claims());
        assert_eq!(
            verify(&ring, &expect(30), &token, late),
            Err(TokenError::Expired)
        );
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = base64url_decode(sig).unwrap();
        sig[10] ^= 0x40;
        let bad_sig = format!("{input}.{}", base64url_encode(&sig));
        assert_eq!(
            verify(&ring, &expect(30), &bad_sig, late),
            Err(TokenError::Invalid)
        );
        let other_iss = Expectations {
            issuer: "x".to_owned(),
            ..expect(30)
        };
        assert_eq!(
            verify(&ring, &other_iss, &token, late),
            Err(TokenError::Invalid)
        );
        let stranger = sign(&new_ring(), TokenKind::Access, &claims());
        assert_eq!(
            verify(&ring, &expect(30), &stranger, late),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_is_invalid() {
        let ring = new_ring();
        let claims = base64url_encode(serde_json::to_string(&claims()).unwrap().as_bytes());
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": ring.active().kid});
            let head = base64url_encode(header.to_string().as_bytes());
            for token in [
                format!("{head}.{claims}."),
                format!("{head}.{claims}"),
                format!("{head}.{claims}.AAAA"),
            ] {
                assert_eq!(
                    verify(&ring, &expect(30), &token, NOW),
                    Err(TokenError::Invalid),
                    "{token}"
                );
            }
        }
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_invalid() {
        use ring::hmac;
        let ring = new_ring();
        let public = ring.active().public;
        let x = ring.active().jwk().x;
        for alg in ["HS256", "HS384", "HS512"] {
            let input = format!(
                "{}.{}",
                base64url_encode(
                    json!({"alg": alg, "typ": "at+jwt", "kid": ring.active().kid})
                        .to_string()
                        .as_bytes()
                ),
                base64url_encode(serde_json::to_string(&claims()).unwrap().as_bytes())
            );
            // Both spellings an attacker would try: raw bytes and the JWK `x`.
            for secret in [&public[..], x.as_bytes()] {
                let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
                let token = format!("{input}.{}", base64url_encode(tag.as_ref()));
                assert_eq!(
                    verify(&ring, &expect(30), &token, NOW),
                    Err(TokenError::Invalid)
                );
            }
        }
    }

    #[test]
    fn another_rings_key_with_the_same_kid_is_invalid() {
        let ring = new_ring();
        let impostor_key = SigningKey::generate().unwrap();
        let impostor_key = SigningKey::from_parts(
            ring.active().kid.clone(),
            impostor_key.pkcs8.expose().to_vec(),
        )
        .unwrap();
        let impostor = KeyRing::new(impostor_key, Vec::new());
        let token = sign(&impostor, TokenKind::Access, &claims());
        assert_eq!(header_of(&token)["kid"], ring.active().kid);
        assert_eq!(
            verify(&ring, &expect(30), &token, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn unknown_or_hostile_kid_is_invalid() {
        let ring = new_ring();
        let claims = serde_json::to_value(claims()).unwrap();
        for kid in [
            json!("unknown"),
            json!("../../etc/passwd"),
            json!("' OR 1=1 --"),
            json!(""),
            json!(null),
            json!(42),
        ] {
            let token = forge(
                ring.active(),
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
                &claims,
            );
            assert_eq!(
                verify(&ring, &expect(30), &token, NOW),
                Err(TokenError::Invalid),
                "{kid}"
            );
        }
        let no_kid = forge(
            ring.active(),
            &json!({"alg": "EdDSA", "typ": "at+jwt"}),
            &claims,
        );
        assert_eq!(
            verify(&ring, &expect(30), &no_kid, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn malformed_tokens_are_invalid_not_panics() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        let check = |t: &str| verify(&ring, &expect(30), t, NOW);
        for len in 0..token.len() {
            assert_eq!(
                check(&token[..len]),
                Err(TokenError::Invalid),
                "prefix {len}"
            );
        }
        let parts: Vec<&str> = token.split('.').collect();
        for i in 0..3 {
            let mut padded = parts.clone();
            let with_pad = format!("{}=", parts[i]);
            padded[i] = &with_pad;
            assert_eq!(
                check(&padded.join(".")),
                Err(TokenError::Invalid),
                "padding on part {i}"
            );
        }
        let mut random = [0u8; 300];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).unwrap();
        let random_b64 = base64url_encode(&random);
        let junk = [
            String::new(),
            ".".to_owned(),
            "..".to_owned(),
            "...".to_owned(),
            format!("{token}.{}", parts[2]),
            format!("{token}."),
            format!(".{token}"),
            format!(" {token}"),
            format!("{token}\n"),
            format!("Bearer {token}"),
            parts[..2].join("."),
            random_b64.clone(),
            format!(
                "{}.{}.{}",
                &random_b64[..100],
                &random_b64[100..200],
                &random_b64[200..]
            ),
            String::from_utf8_lossy(&random).into_owned(),
            "é.ü.ß".to_owned(),
            format!("{token}{}", "A".repeat(MAX_TOKEN_LEN)),
        ];
        for bad in &junk {
            assert_eq!(check(bad), Err(TokenError::Invalid), "{bad:?}");
        }
        assert!(check(&token).is_ok());
    }

    #[test]
    fn tampered_or_incomplete_claims_are_invalid() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut elevated = claims();
        elevated.sub = "admin".to_owned();
        let swapped = base64url_encode(serde_json::to_string(&elevated).unwrap().as_bytes());
        let tampered = format!("{}.{swapped}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&ring, &expect(30), &tampered, NOW),
            Err(TokenError::Invalid)
        );

        let full = serde_json::to_value(claims()).unwrap();
        for missing in ["iss", "sub", "aud", "iat", "exp", "jti"] {
            let mut partial = full.clone();
            partial.as_object_mut().unwrap().remove(missing);
            let token = forge(ring.active(), &good_header(&ring), &partial);
            assert_eq!(
                verify(&ring, &expect(30), &token, NOW),
                Err(TokenError::Invalid),
                "without {missing}"
            );
        }
        for exp in [
            json!("1900000000"),
            json!(1_900_000_000.5),
            json!(-1),
            json!(null),
        ] {
            let mut odd = full.clone();
            odd["exp"] = exp.clone();
            let token = forge(ring.active(), &good_header(&ring), &odd);
            assert_eq!(
                verify(&ring, &expect(30), &token, NOW),
                Err(TokenError::Invalid),
                "exp {exp}"
            );
        }
        let critical = forge(
            ring.active(),
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ring.active().kid, "crit": ["exp"]}),
            &full,
        );
        assert_eq!(
            verify(&ring, &expect(30), &critical, NOW),
            Err(TokenError::Invalid)
        );
        // Control: the same forging path with nothing wrong verifies.
        let fine = forge(ring.active(), &good_header(&ring), &full);
        assert!(verify(&ring, &expect(30), &fine, NOW).is_ok());
    }

    #[test]
    fn retired_keys_still_verify_and_are_published() {
        let old = new_ring();
        let old_token = sign(&old, TokenKind::Private, &claims());
        let current = KeyRing::new(SigningKey::generate().unwrap(), vec![old.active().clone()]);
        assert!(verify(&current, &expect(30), &old_token, NOW).is_ok());
        let new_token = sign(&current, TokenKind::Access, &claims());
        assert_eq!(header_of(&new_token)["kid"], current.active().kid);
        assert!(verify(&old, &expect(30), &new_token, NOW).is_err());
        let kids: Vec<String> = current.jwks().keys.into_iter().map(|jwk| jwk.kid).collect();
        assert_eq!(
            kids,
            [current.active().kid.clone(), old.active().kid.clone()]
        );
        // Duplicate kids collapse to the first (the active key wins).
        let dup = KeyRing::new(
            current.active().clone(),
            vec![
                current.active().clone(),
                old.active().clone(),
                old.active().clone(),
            ],
        );
        assert_eq!(dup.jwks().keys.len(), 2);
        assert!(!format!("{dup:?}").contains("pkcs8"));
    }

    #[test]
    fn key_ring_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<KeyRing>();
        shareable::<TokenError>();
    }

    #[test]
    fn jwks_never_contains_private_material() {
        let current = KeyRing::new(
            SigningKey::generate().unwrap(),
            vec![SigningKey::generate().unwrap()],
        );
        let json = serde_json::to_value(current.jwks()).unwrap();
        let keys = json["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for key in keys {
            assert!(key.get("d").is_none());
            assert_eq!(key.as_object().unwrap().len(), 6);
            assert_eq!(key["kty"], "OKP");
        }
    }

    #[test]
    fn signature_checks_out_with_ring_directly() {
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = base64url_decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        let public = UnparsedPublicKey::new(&ED25519, ring.active().public);
        assert!(public.verify(input.as_bytes(), &sig).is_ok());
        assert!(public.verify(format!("{input}x").as_bytes(), &sig).is_err());
        // And through the published JWK, as another service would.
        let x = base64url_decode(&ring.jwks().keys[0].x).unwrap();
        assert!(
            UnparsedPublicKey::new(&ED25519, x)
                .verify(input.as_bytes(), &sig)
                .is_ok()
        );
    }

    /// `cargo test --release -- --ignored --nocapture bench_sign_and_verify`
    #[test]
    #[ignore]
    fn bench_sign_and_verify() {
        use std::sync::atomic::Ordering;
        use std::time::Instant;

        const ROUNDS: u32 = 20_000;
        let ring = new_ring();
        let token = sign(&ring, TokenKind::Access, &claims());
        let time = |label: &str, f: &dyn Fn()| {
            for _ in 0..ROUNDS / 10 {
                f();
            }
            let start = Instant::now();
            for _ in 0..ROUNDS {
                f();
            }
            println!(
                "{label:<28} {:>8.2} µs/token",
                start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS)
            );
        };
        time("sign (key cache)", &|| {
            std::hint::black_box(sign(&ring, TokenKind::Access, &claims()));
        });
        jwt_provider::BYPASS_CACHE.store(true, Ordering::Relaxed);
        time("sign (no cache)", &|| {
            std::hint::black_box(sign(&ring, TokenKind::Access, &claims()));
        });
        jwt_provider::BYPASS_CACHE.store(false, Ordering::Relaxed);
        time("verify", &|| {
            std::hint::black_box(verify(&ring, &expect(30), &token, NOW).unwrap());
        });
        let pair = Ed25519KeyPair::from_pkcs8(ring.active().pkcs8.expose()).unwrap();
        time("raw ring sign", &|| {
            std::hint::black_box(pair.sign(token.as_bytes()));
        });
        time("raw ring from_pkcs8", &|| {
            std::hint::black_box(Ed25519KeyPair::from_pkcs8(ring.active().pkcs8.expose()).unwrap());
        });
    }
}
