//! Identifiers and secrets from ring's system random source: UUID v4 ids,
//! opaque refresh tokens, and the SHA-256 under which secrets are stored.

use crate::domain::keys;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use std::fmt;

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS random source failing is unrecoverable for an auth server (no
    // id, salt or secret can be made); from a request, the router's panic
    // guard answers 500.
    #[allow(clippy::expect_used, reason = "no safe value without randomness")]
    SystemRandom::new()
        .fill(&mut out)
        .expect("the system random number generator failed");
    out
}

/// A random (version 4) UUID in its usual hyphenated lower-case form.
pub fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `s` has the shape of the ids `uuid()` makes (so a bad id in a path
/// is a 404 before any query runs).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

/// An opaque bearer secret (refresh token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 256 random bits, base64url without padding (43 characters).
    pub fn generate() -> Secret {
        Secret(keys::base64url_encode(&random_bytes::<32>()))
    }

    pub fn from_presented(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form in which a secret is stored.
    pub fn hash(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }

    /// The refresh token that replaces this one under rotation:
    /// HMAC-SHA256(`key`, this token). Derived, never stored, so a retry with
    /// this token can be answered with the very same successor
    /// (`db::refresh_tokens`).
    pub fn successor(&self, key: &[u8]) -> Secret {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let tag = hmac::sign(&key, self.0.as_bytes());
        Secret(keys::base64url_encode(tag.as_ref()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_recognised() {
        let id = uuid();
        assert!(is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid(), id);
        assert!(!is_uuid("../../etc/passwd"));
        assert!(!is_uuid(&id.to_uppercase()));
        assert!(!is_uuid(&id[1..]));
    }

    #[test]
    fn secrets_have_256_bits_and_hide_in_debug() {
        let s = Secret::generate();
        assert_eq!(s.expose().len(), 43);
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_ne!(Secret::generate(), s);
    }
}
