//! Ed25519 signing keys and their public JWKS view.
//!
//! A key is stored as its PKCS#8 v2 document (the private seed plus the public
//! key, as ring writes it). Its `kid` is the RFC 7638 JWK thumbprint, so any
//! party holding the JWKS can recompute it. Also here: the small base64url
//! codec (RFC 4648 §5, no padding) that JOSE uses everywhere.

use std::fmt;

use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

/// The longest `kid` accepted from storage. A thumbprint is 43 characters;
/// the slack leaves room for other schemes without accepting arbitrary blobs.
const MAX_KID_LEN: usize = 64;

/// Private key material. `Debug` never prints it, so a key can sit inside a
/// struct that gets logged. The bytes are not zeroed on drop: ring's own key
/// pairs are not either, and doing it reliably needs `unsafe` or another crate.
#[derive(Clone)]
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    /// The raw bytes, for storing them (in the database, never a log).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a key could not be made or loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The system random number generator failed.
    Random,
    /// The stored bytes are not an Ed25519 PKCS#8 v2 document whose embedded
    /// public key matches its private seed.
    InvalidKey,
    /// The stored `kid` is empty, too long or not base64url characters.
    InvalidKid,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::Random => "the system random number generator failed",
            KeyError::InvalidKey => "the stored signing key is not a valid Ed25519 PKCS#8 key",
            KeyError::InvalidKid => "the stored key id is not 1 to 64 base64url characters",
        })
    }
}

impl std::error::Error for KeyError {}

/// An Ed25519 signing key with its public half and identity.
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// Key id placed in token headers and the JWKS.
    pub kid: String,
    /// PKCS#8 v2 document (seed and public key).
    pub pkcs8: KeyMaterial,
    /// Raw 32-byte public key (RFC 8032), the JWK `x`.
    pub public: [u8; 32],
}

impl SigningKey {
    /// Makes a new key from the operating system's random generator.
    ///
    /// The `kid` is the key's RFC 7638 JWK thumbprint (SHA-256 over
    /// `{"crv":"Ed25519","kty":"OKP","x":…}`, base64url, 43 characters):
    /// derived rather than random so that it names exactly one public key and
    /// a verifier can check the pairing itself.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
        let public = public_key_of(document.as_ref())?;
        Ok(SigningKey {
            kid: thumbprint(&public),
            pkcs8: KeyMaterial(document.as_ref().to_vec()),
            public,
        })
    }

    /// Rebuilds a key from its stored parts. ring checks that the document's
    /// embedded public key matches its seed, and `public` is taken from it, so
    /// the two halves cannot disagree. The `kid` is kept as stored (it need
    /// not be a thumbprint) but must be plain base64url characters, so an
    /// odd id can never reach a header or a URL.
    pub fn from_parts(kid: String, pkcs8: Vec<u8>) -> Result<SigningKey, KeyError> {
        if !is_valid_kid(&kid) {
            return Err(KeyError::InvalidKid);
        }
        let public = public_key_of(&pkcs8)?;
        Ok(SigningKey {
            kid,
            pkcs8: KeyMaterial(pkcs8),
            public,
        })
    }

    /// The public JWK for this key (never the private `d`).
    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(&self.kid, &self.public)
    }
}

/// One public key as published at `/.well-known/jwks.json` (RFC 8037 §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    pub(crate) fn ed25519(kid: &str, public: &[u8; 32]) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: base64url_encode(public),
            kid: kid.to_owned(),
            alg: "EdDSA".to_owned(),
            use_: "sig".to_owned(),
        }
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// RFC 7638 thumbprint of an Ed25519 public key. The members are written in
/// the RFC's required order (lexicographic, no whitespace) by hand: a JSON
/// serializer's output order is not something to hash.
pub fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        base64url_encode(public)
    );
    base64url_encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

fn public_key_of(pkcs8: &[u8]) -> Result<[u8; 32], KeyError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::InvalidKey)?;
    pair.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| KeyError::InvalidKey)
}

fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_LEN && kid.bytes().all(|b| sextet(b).is_some())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5; RFC 7515 §2).
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        // n input bytes fill n + 1 six-bit characters.
        for i in 0..=chunk.len() {
            let index = (group >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Strict base64url decoding: no padding, no whitespace, no other alphabet,
/// and unused trailing bits must be zero, so each byte string has exactly one
/// accepted encoding (a token cannot be re-spelled and still match).
#[cfg(test)]
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let input = text.as_bytes();
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    for chunk in input.chunks(4) {
        let mut group = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            group |= u32::from(sextet(c)?) << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        if group & ((1u32 << (24 - 8 * produced)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&group.to_be_bytes()[1..=produced]);
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64url_encode(plain.as_bytes()), encoded);
            assert_eq!(base64url_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        // The two characters where base64url differs from base64.
        assert_eq!(base64url_encode(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(base64url_decode("-_-_"), Some(vec![0xfb, 0xff, 0xbf]));
    }

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let encoded = base64url_encode(&data[..len]);
            assert!(!encoded.contains('='));
            assert_eq!(base64url_decode(&encoded).as_deref(), Some(&data[..len]));
        }
    }

    #[test]
    fn base64url_rejects_non_canonical_input() {
        for bad in [
            "Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm 9v", "Zm9v\n", "é",
        ] {
            assert_eq!(base64url_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_key_round_trips_through_its_parts() {
        let key = SigningKey::generate().unwrap();
        assert_eq!(key.kid, thumbprint(&key.public));
        assert_eq!(key.kid.len(), 43);
        let again = SigningKey::from_parts(key.kid.clone(), key.pkcs8.expose().to_vec()).unwrap();
        assert_eq!(again.public, key.public);
        assert_eq!(again.kid, key.kid);
        assert_ne!(SigningKey::generate().unwrap().public, key.public);
    }

    #[test]
    fn from_parts_rejects_bad_material_and_kids() {
        let key = SigningKey::generate().unwrap();
        let pkcs8 = key.pkcs8.expose().to_vec();
        assert_eq!(
            SigningKey::from_parts(key.kid.clone(), vec![0; 85]).unwrap_err(),
            KeyError::InvalidKey
        );
        assert_eq!(
            SigningKey::from_parts(key.kid.clone(), Vec::new()).unwrap_err(),
            KeyError::InvalidKey
        );
        let mut flipped = pkcs8.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1; // public key no longer matches the seed
        assert_eq!(
            SigningKey::from_parts(key.kid.clone(), flipped).unwrap_err(),
            KeyError::InvalidKey
        );
        for kid in [
            "",
            "../../etc/passwd",
            "' OR 1=1 --",
            "a b",
            &"a".repeat(65),
        ] {
            assert_eq!(
                SigningKey::from_parts(kid.to_owned(), pkcs8.clone()).unwrap_err(),
                KeyError::InvalidKid
            );
        }
        assert!(SigningKey::from_parts("2026-key_1".to_owned(), pkcs8).is_ok());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = SigningKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("[redacted]"));
        let private_hex: String = key
            .pkcs8
            .expose()
            .iter()
            .map(|b| format!("{b}, "))
            .collect();
        assert!(!shown.contains(&private_hex));
    }

    #[test]
    fn jwk_is_public_only() {
        let key = SigningKey::generate().unwrap();
        let value = serde_json::to_value(key.jwk()).unwrap();
        let object = value.as_object().unwrap();
        let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(value["kty"], "OKP");
        assert_eq!(value["crv"], "Ed25519");
        assert_eq!(value["alg"], "EdDSA");
        assert_eq!(value["use"], "sig");
        assert_eq!(
            base64url_decode(value["x"].as_str().unwrap()).unwrap(),
            key.public
        );
    }

    /// RFC 8037 Appendix A.1–A.3: the example key's public half and thumbprint.
    #[test]
    fn rfc8037_example_key_and_thumbprint() {
        let seed = base64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
        let x = base64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &x).unwrap();
        let public: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        assert_eq!(
            thumbprint(&public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
