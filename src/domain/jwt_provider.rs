//! The ring-backed crypto provider for `jsonwebtoken`.
//!
//! jsonwebtoken 11 ships providers only for aws-lc-rs and RustCrypto (which
//! drags in the `rsa` crate and its timing advisory), so latchkey supplies its
//! own on top of ring, the one crypto stack in the binary. It speaks EdDSA
//! (Ed25519) only: any other algorithm, or a key of another family, is an
//! error from the factory, never a panic.

use crate::locks::Unpoisoned;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, new_error};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::digest;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: unsupported_rsa_components,
        rsa_pub_components_from_public_key: unsupported_rsa_components,
        ec_pub_components_from_private_key: unsupported_ec_components,
        ed_pub_components_from_private_key: ed_public_from_private,
        compute_digest,
    },
};

/// Installs the provider for this process. Idempotent: later calls are
/// no-ops. Without it jsonwebtoken's built-in fallback panics on first use,
/// so `tokens::sign` and `tokens::verify` call this themselves too.
pub fn install_provider() {
    // `Err` only means a provider is already installed. In latchkey that is
    // this one: the crate's own providers are compiled out (no features).
    let _ = PROVIDER.install_default();
}

/// How many parsed key pairs to keep. Only the active key signs, so one
/// entry is the steady state; a handful covers rotation and tests.
const CACHE_CAPACITY: usize = 8;

/// Parsed key pairs by SHA-256 of their PKCS#8 bytes. jsonwebtoken calls the
/// signer factory on every `encode`, and parsing the document (which checks
/// the public key against the seed, a scalar multiplication) costs about as
/// much as signing. Keying by digest keeps a second copy of the private
/// bytes out of the map.
static KEY_PAIRS: RwLock<BTreeMap<[u8; 32], Arc<Ed25519KeyPair>>> = RwLock::new(BTreeMap::new());

/// Lets the benchmark measure signing with the cache bypassed.
#[cfg(test)]
pub(crate) static BYPASS_CACHE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn key_pair(pkcs8: &[u8]) -> Result<Arc<Ed25519KeyPair>, Error> {
    #[cfg(test)]
    if BYPASS_CACHE.load(std::sync::atomic::Ordering::Relaxed) {
        return parse_key_pair(pkcs8).map(Arc::new);
    }
    let id: [u8; 32] = digest::digest(&digest::SHA256, pkcs8)
        .as_ref()
        .try_into()
        .map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
    // A panic while holding the lock cannot leave the map half-updated in a
    // way that matters (entries are whole Arcs), so poisoning is ignored.
    if let Some(pair) = KEY_PAIRS.read().unpoisoned().get(&id) {
        return Ok(Arc::clone(pair));
    }
    // Parse outside the lock; two threads racing here both parse, one wins.
    let parsed = Arc::new(parse_key_pair(pkcs8)?);
    let mut map = KEY_PAIRS.write().unpoisoned();
    if map.len() >= CACHE_CAPACITY && !map.contains_key(&id) {
        // Rotation is rare, so dropping everything and re-parsing the active
        // key once is simpler than tracking recency.
        map.clear();
    }
    Ok(Arc::clone(map.entry(id).or_insert(parsed)))
}

fn parse_key_pair(pkcs8: &[u8]) -> Result<Ed25519KeyPair, Error> {
    Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| new_error(ErrorKind::InvalidEddsaKey))
}

/// Rejects every algorithm but EdDSA and every key family but Ed, so a
/// token's header can never steer verification to HMAC with a public key.
fn check_eddsa(algorithm: &Algorithm, family: AlgorithmFamily) -> Result<(), Error> {
    if *algorithm != Algorithm::EdDSA {
        return Err(new_error(ErrorKind::InvalidAlgorithm));
    }
    if family != AlgorithmFamily::Ed {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    }
    Ok(())
}

struct RingSigner(Arc<Ed25519KeyPair>);

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(message).as_ref().to_vec())
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

/// Verifies against a raw 32-byte Ed25519 public key (RFC 8032), which is
/// what `DecodingKey::from_ed_der` and `from_ed_components` hold here.
struct RingVerifier([u8; 32]);

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    check_eddsa(algorithm, key.family())?;
    Ok(Box::new(RingSigner(key_pair(key.as_bytes())?)))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    check_eddsa(algorithm, key.family())?;
    let public: [u8; 32] = key
        .try_get_as_bytes()?
        .try_into()
        .map_err(|_| new_error(ErrorKind::InvalidEddsaKey))?;
    Ok(Box::new(RingVerifier(public)))
}

fn unsupported_rsa_components(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    Err(new_error(ErrorKind::UnsupportedAlgorithm))
}

fn unsupported_ec_components(
    _der: &[u8],
    _alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    Err(new_error(ErrorKind::UnsupportedAlgorithm))
}

fn ed_public_from_private(pkcs8: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>, Error> {
    if *curve != EllipticCurve::Ed25519 {
        return Err(new_error(ErrorKind::UnsupportedAlgorithm));
    }
    Ok(parse_key_pair(pkcs8)?.public_key().as_ref().to_vec())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, Error> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        // The enum is non-exhaustive; a future hash is refused, not guessed.
        _ => return Err(new_error(ErrorKind::UnsupportedAlgorithm)),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::{SigningKey, base64url_decode};

    fn signer(algorithm: Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
        (PROVIDER.signer_factory)(&algorithm, key)
    }

    fn verifier(algorithm: Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
        (PROVIDER.verifier_factory)(&algorithm, key)
    }

    #[test]
    fn install_is_idempotent() {
        install_provider();
        install_provider();
    }

    #[test]
    fn cached_signer_gives_the_same_valid_signature_every_time() {
        let key = SigningKey::generate().unwrap();
        let encoding = EncodingKey::from_ed_der(key.pkcs8.expose());
        let message = b"header.payload";
        // Ed25519 is deterministic, so a cache hit and a miss must agree.
        let first = signer(Algorithm::EdDSA, &encoding)
            .unwrap()
            .try_sign(message)
            .unwrap();
        let second = signer(Algorithm::EdDSA, &encoding)
            .unwrap()
            .try_sign(message)
            .unwrap();
        let fresh = Ed25519KeyPair::from_pkcs8(key.pkcs8.expose())
            .unwrap()
            .sign(message);
        assert_eq!(first, second);
        assert_eq!(first, fresh.as_ref());
        assert!(
            UnparsedPublicKey::new(&ED25519, key.public)
                .verify(message, &first)
                .is_ok()
        );

        let decoding = DecodingKey::from_ed_der(&key.public);
        let check = verifier(Algorithm::EdDSA, &decoding).unwrap();
        assert!(check.verify(message, &first).is_ok());
        assert!(check.verify(b"header.payloaD", &first).is_err());
    }

    #[test]
    fn cache_holds_one_entry_per_key_and_stays_bounded() {
        let keys: Vec<SigningKey> = (0..CACHE_CAPACITY * 2 + 1)
            .map(|_| SigningKey::generate().unwrap())
            .collect();
        for key in &keys {
            let a = key_pair(key.pkcs8.expose()).unwrap();
            let b = key_pair(key.pkcs8.expose()).unwrap();
            assert_eq!(a.public_key().as_ref(), key.public);
            assert_eq!(b.public_key().as_ref(), key.public);
            assert!(KEY_PAIRS.read().unwrap().len() <= CACHE_CAPACITY);
        }
    }

    #[test]
    fn other_algorithms_and_families_are_errors() {
        let key = SigningKey::generate().unwrap();
        let ed_encoding = EncodingKey::from_ed_der(key.pkcs8.expose());
        let ed_decoding = DecodingKey::from_ed_der(&key.public);
        let hmac_encoding = EncodingKey::from_secret(&key.public);
        let hmac_decoding = DecodingKey::from_secret(&key.public);
        for algorithm in [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::RS256,
            Algorithm::PS512,
        ] {
            assert!(signer(algorithm, &ed_encoding).is_err(), "{algorithm:?}");
            assert!(signer(algorithm, &hmac_encoding).is_err(), "{algorithm:?}");
            assert!(verifier(algorithm, &ed_decoding).is_err(), "{algorithm:?}");
            assert!(
                verifier(algorithm, &hmac_decoding).is_err(),
                "{algorithm:?}"
            );
        }
        // EdDSA requested with a key of another family, or a malformed key.
        assert!(signer(Algorithm::EdDSA, &hmac_encoding).is_err());
        assert!(verifier(Algorithm::EdDSA, &hmac_decoding).is_err());
        assert!(signer(Algorithm::EdDSA, &EncodingKey::from_ed_der(b"not a key")).is_err());
        assert!(verifier(Algorithm::EdDSA, &DecodingKey::from_ed_der(&[0; 31])).is_err());
        assert!(
            verifier(
                Algorithm::EdDSA,
                &DecodingKey::from_rsa_raw_components(b"n", b"e")
            )
            .is_err()
        );
    }

    #[test]
    fn key_utils_answer_without_panicking() {
        let key = SigningKey::generate().unwrap();
        let utils = &PROVIDER.key_utils;
        assert_eq!(
            (utils.ed_pub_components_from_private_key)(key.pkcs8.expose(), &EllipticCurve::Ed25519)
                .unwrap(),
            key.public
        );
        assert!(
            (utils.ed_pub_components_from_private_key)(key.pkcs8.expose(), &EllipticCurve::P256)
                .is_err()
        );
        assert!(
            (utils.ed_pub_components_from_private_key)(b"junk", &EllipticCurve::Ed25519).is_err()
        );
        assert!((utils.rsa_pub_components_from_private_key)(b"junk").is_err());
        assert!((utils.rsa_pub_components_from_public_key)(b"junk").is_err());
        assert!((utils.ec_pub_components_from_private_key)(b"junk", Algorithm::ES256).is_err());

        // FIPS 180-2 "abc" vectors, first bytes of each.
        let sha256 = (utils.compute_digest)(b"abc", ThumbprintHash::SHA256).unwrap();
        let sha384 = (utils.compute_digest)(b"abc", ThumbprintHash::SHA384).unwrap();
        let sha512 = (utils.compute_digest)(b"abc", ThumbprintHash::SHA512).unwrap();
        assert_eq!(
            (sha256.len(), &sha256[..4]),
            (32, &[0xba, 0x78, 0x16, 0xbf][..])
        );
        assert_eq!(
            (sha384.len(), &sha384[..4]),
            (48, &[0xcb, 0x00, 0x75, 0x3f][..])
        );
        assert_eq!(
            (sha512.len(), &sha512[..4]),
            (64, &[0xdd, 0xaf, 0x35, 0xa1][..])
        );
    }

    /// RFC 8037 Appendix A.4/A.5: the example JWS verifies, a changed payload does not.
    #[test]
    fn verifies_the_rfc8037_example_signature() {
        let x = base64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let signing_input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = base64url_decode(
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
        )
        .unwrap();
        let check = verifier(Algorithm::EdDSA, &DecodingKey::from_ed_der(&x)).unwrap();
        assert!(check.verify(signing_input.as_bytes(), &signature).is_ok());
        assert!(
            check
                .verify(
                    b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd",
                    &signature
                )
                .is_err()
        );
    }
}
