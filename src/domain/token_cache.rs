//! A bounded cache of tokens whose signature and claims have been verified,
//! keyed by the SHA-256 of the whole token. An Ed25519 verification costs
//! about as much as the rest of a profile read; a client sends the same
//! access token many times, so only its first use pays for it. What may
//! change after a token was issued — its session ending, a private token
//! being revoked — is still checked against the database on every request.

use crate::domain::ids;
use crate::domain::tokens::{Claims, TokenKind};
use crate::locks::Unpoisoned;
use std::collections::HashMap;
use std::sync::RwLock;

/// Entries at most; when full, the cache starts over (a refill costs one
/// verification per active token).
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct Verified {
    entries: RwLock<HashMap<[u8; 32], (TokenKind, Claims)>>,
}

impl Verified {
    /// The claims of `token` if it was verified before and has not expired
    /// (`exp` plus `leeway`) at `now`; an expired one falls through to a full
    /// verification, which gives the right error.
    pub fn get(&self, token: &str, now: i64, leeway: u64) -> Option<(TokenKind, Claims)> {
        let entries = self.entries.read().unpoisoned();
        let (kind, claims) = entries.get(&ids::sha256(token.as_bytes()))?;
        (now < claims.exp.saturating_add(leeway as i64)).then(|| (*kind, claims.clone()))
    }

    pub fn insert(&self, token: &str, kind: TokenKind, claims: &Claims) {
        let mut entries = self.entries.write().unpoisoned();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(ids::sha256(token.as_bytes()), (kind, claims.clone()));
    }

    /// Forgets everything: the signing keys changed, so a cached token's key
    /// may no longer be published.
    pub fn clear(&self) {
        self.entries.write().unpoisoned().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "u".into(),
            aud: "a".into(),
            iat: 0,
            exp,
            jti: "j".into(),
            sid: Some("s".into()),
            amr: None,
        }
    }

    #[test]
    fn a_cached_token_is_returned_until_it_expires() {
        let cache = Verified::default();
        cache.insert("tok", TokenKind::Access, &claims(100));
        assert!(cache.get("tok", 99, 0).is_some());
        assert!(cache.get("tok", 100, 0).is_none());
        assert!(cache.get("tok", 129, 30).is_some());
        assert!(cache.get("other", 1, 0).is_none());
        cache.clear();
        assert!(cache.get("tok", 1, 0).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = Verified::default();
        for n in 0..CAPACITY + 5 {
            cache.insert(&n.to_string(), TokenKind::Access, &claims(100));
        }
        assert!(cache.entries.read().unwrap().len() <= CAPACITY);
    }
}
