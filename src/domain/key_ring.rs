//! Signing keys in the database: the `KeyRing` a service verifies and signs
//! with, the first key of a new database, rotation (by `latchkey keys rotate`,
//! or by the service every `--key-rotation-interval`), revocation, and the
//! periodic reload that lets a running service pick up a change made by
//! another process.
//!
//! A key's life: **next** (published in the JWKS, not signing yet) from its
//! creation until `signs_at`; **signing** until `retired_at`; **retired**
//! (published, verifying what it signed) until nothing it signed is alive,
//! then dropped. A new key signs only once it has been published for the
//! JWKS cache lifetime, so a verifier that caches the JWKS already holds it
//! (API.md "Tokens"); `keys rotate --now` skips the wait. A revoked key is
//! deleted at once.

use crate::clock;
use crate::db::{self, Connection, settings, signing_keys};
use crate::domain::keys::{KeyError, SigningKey};
use crate::domain::tokens::KeyRing;
use signing_keys::{StoredKey, Window};
use std::fmt;

/// How often a service rereads the keys: a revocation takes effect within
/// this (the contract allows 10 seconds), and so does a key's first signature.
pub const RELOAD_SECONDS: u64 = 1;

/// Why the keys could not be loaded, rotated or revoked.
#[derive(Debug)]
pub enum KeyRingError {
    Database(db::Error),
    /// No connection could be had from the pool.
    Pool(r2d2::Error),
    /// A new key could not be made.
    Generate(KeyError),
    /// A stored key is unusable.
    Stored {
        kid: String,
        error: KeyError,
    },
    /// `keys revoke` named a key that does not exist.
    NoSuchKey(String),
}

impl fmt::Display for KeyRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRingError::Database(e) => write!(f, "database: {e}"),
            KeyRingError::Pool(e) => write!(f, "database: {e}"),
            KeyRingError::Generate(e) => write!(f, "generating a key: {e}"),
            KeyRingError::Stored { kid, error } => write!(f, "signing key {kid}: {error}"),
            KeyRingError::NoSuchKey(kid) => write!(f, "no signing key {kid}"),
        }
    }
}

impl std::error::Error for KeyRingError {}

impl From<db::Error> for KeyRingError {
    fn from(e: db::Error) -> Self {
        KeyRingError::Database(e)
    }
}

impl From<r2d2::Error> for KeyRingError {
    fn from(e: r2d2::Error) -> Self {
        KeyRingError::Pool(e)
    }
}

/// Where a key is in its life at some moment, and when that changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, signs from `signs_at`.
    Next { signs_at: i64 },
    /// Signs until `until` (`None`: until a rotation).
    Signing { until: Option<i64> },
    /// Published until `dropped_after`.
    Retired { dropped_after: i64 },
}

impl KeyState {
    pub fn of(key: &StoredKey, now: i64) -> KeyState {
        match key.retired_at {
            // Past its retirement, or retired before it ever signed (a later
            // `--now` or revocation superseded it).
            Some(retired) if retired <= now || retired <= key.signs_at => KeyState::Retired {
                dropped_after: key.drop_after.unwrap_or(retired),
            },
            _ if key.signs_at > now => KeyState::Next {
                signs_at: key.signs_at,
            },
            until => KeyState::Signing { until },
        }
    }
}

/// The window of a service with these settings: access tokens signed just
/// before a rotation live `access_ttl + leeway`, plus the time it takes the
/// service to notice the rotation.
pub fn window_for(access_ttl: i64, leeway: u64) -> Window {
    let leeway = i64::try_from(leeway).unwrap_or(i64::MAX);
    Window {
        access: access_ttl
            .saturating_add(leeway)
            .saturating_add(2 * RELOAD_SECONDS as i64),
        leeway,
    }
}

/// How long after its creation a new key starts signing, for a service whose
/// JWKS may be cached `jwks_max_age` seconds: the cache lifetime counted from
/// when the service publishes it (within a reload), plus a reload for the
/// switch itself and a second for whole-second times — so signing never
/// starts early, only up to a few seconds late.
pub fn publication_delay(jwks_max_age: i64) -> i64 {
    jwks_max_age.saturating_add(2 * RELOAD_SECONDS as i64 + 1)
}

/// What the last service started on this database recorded (the command line
/// does not know the service's flags), or the defaults.
pub struct Recorded {
    pub window: Window,
    pub jwks_max_age: i64,
}

pub fn recorded(conn: &Connection) -> Result<Recorded, KeyRingError> {
    let default = window_for(3600, 30);
    Ok(Recorded {
        window: Window {
            access: settings::get_i64(conn, settings::ACCESS_WINDOW)?.unwrap_or(default.access),
            leeway: 60,
        },
        jwks_max_age: settings::get_i64(conn, settings::JWKS_MAX_AGE)?.unwrap_or(300),
    })
}

/// Records this service's settings for `keys rotate` and `cleanup` to use.
pub fn record(conn: &Connection, window: Window, jwks_max_age: i64) -> Result<(), KeyRingError> {
    settings::set_i64(conn, settings::ACCESS_WINDOW, window.access)?;
    settings::set_i64(conn, settings::JWKS_MAX_AGE, jwks_max_age)?;
    Ok(())
}

/// The published keys, creating a key that signs at once when none signs
/// (a new database). Runs in a write transaction so two processes starting
/// together make one key.
pub fn load(conn: &mut Connection, window: Window) -> Result<KeyRing, KeyRingError> {
    let now = clock::now();
    let stored = db::write(conn, |tx| {
        if signer(&signing_keys::all(tx, window)?, now).is_none() {
            insert_new(tx, now, now)?;
        }
        Ok::<_, KeyRingError>(signing_keys::published(tx, now, window)?)
    })?;
    ring_of(stored, now)
}

/// What a fresh `load` would give, as (signing kid, published kids): a cheap
/// read to decide whether a reload is needed.
pub fn current(
    conn: &Connection,
    window: Window,
) -> Result<(Option<String>, Vec<String>), KeyRingError> {
    let now = clock::now();
    let keys = signing_keys::published(conn, now, window)?;
    let signing = signer(&keys, now).map(|k| k.kid.clone());
    let mut kids: Vec<String> = keys.into_iter().map(|k| k.kid).collect();
    if let Some(signing) = &signing {
        kids.retain(|k| k != signing);
        kids.insert(0, signing.clone());
    }
    Ok((signing, kids))
}

/// Adds a key that signs `delay` seconds from now (0: at once); every other
/// key stops signing then. With `only_if_newest_before`, does nothing
/// (returns `None`) unless the newest key was made before that time, so two
/// services rotating on a period never both rotate.
pub fn rotate(
    conn: &mut Connection,
    delay: i64,
    only_if_newest_before: Option<i64>,
) -> Result<Option<String>, KeyRingError> {
    let now = clock::now();
    db::write(conn, |tx| {
        if let Some(limit) = only_if_newest_before {
            let newest = signing_keys::all(tx, recorded(tx)?.window)?
                .into_iter()
                .next();
            if newest.is_some_and(|k| k.created_at >= limit) {
                return Ok(None);
            }
        }
        Ok(Some(insert_new(tx, now, now.saturating_add(delay))?))
    })
}

/// What `revoke` did.
#[derive(Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The key that signs now, if the revoked one was signing.
    pub successor: Option<String>,
}

/// Deletes `kid` at once, so nothing it signed verifies any more. If it was
/// signing, the newest other key signs from now on (or a new one, when none
/// is left), and every other key is retired.
pub fn revoke(conn: &mut Connection, kid: &str) -> Result<Revoked, KeyRingError> {
    let now = clock::now();
    db::write(conn, |tx| {
        let keys = signing_keys::all(tx, recorded(tx)?.window)?;
        let Some(key) = keys.iter().find(|k| k.kid == kid) else {
            return Err(KeyRingError::NoSuchKey(kid.to_string()));
        };
        let was_signing = matches!(KeyState::of(key, now), KeyState::Signing { .. });
        signing_keys::delete(tx, kid)?;
        if !was_signing {
            return Ok(Revoked { successor: None });
        }
        let successor = match keys.iter().find(|k| k.kid != kid) {
            Some(next) => {
                signing_keys::sign_from(tx, &next.kid, now)?;
                signing_keys::retire_others(tx, &next.kid, now)?;
                next.kid.clone()
            }
            None => insert_new(tx, now, now)?,
        };
        Ok(Revoked {
            successor: Some(successor),
        })
    })
}

/// Every key, newest first, with its state at `now`.
pub fn list(conn: &Connection, now: i64) -> Result<Vec<(StoredKey, KeyState)>, KeyRingError> {
    let keys = signing_keys::all(conn, recorded(conn)?.window)?;
    Ok(keys
        .into_iter()
        .map(|k| {
            let state = KeyState::of(&k, now);
            (k, state)
        })
        .collect())
}

/// Makes a key that signs from `signs_at`; every other key stops then.
fn insert_new(conn: &Connection, now: i64, signs_at: i64) -> Result<String, KeyRingError> {
    let key = SigningKey::generate().map_err(KeyRingError::Generate)?;
    signing_keys::insert(conn, &key.kid, key.pkcs8.expose(), now, signs_at)?;
    signing_keys::retire_others(conn, &key.kid, signs_at)?;
    Ok(key.kid)
}

/// The key that signs at `now`, if any.
fn signer(keys: &[StoredKey], now: i64) -> Option<&StoredKey> {
    keys.iter()
        .find(|k| matches!(KeyState::of(k, now), KeyState::Signing { .. }))
}

/// Published keys (newest first) → a ring whose active key is the one signing
/// at `now`; every other key only verifies.
fn ring_of(stored: Vec<StoredKey>, now: i64) -> Result<KeyRing, KeyRingError> {
    let signing = signer(&stored, now).map(|k| k.kid.clone());
    let mut active = None;
    let mut others = Vec::with_capacity(stored.len());
    for k in stored {
        let key = SigningKey::from_parts(k.kid.clone(), k.private_pkcs8)
            .map_err(|error| KeyRingError::Stored { kid: k.kid, error })?;
        if Some(&key.kid) == signing.as_ref() {
            active = Some(key);
        } else {
            others.push(key);
        }
    }
    // `load` made sure a key signs; a concurrent revoke can still race it,
    // and the next reload repairs that.
    let active = match active {
        Some(key) => key,
        None if !others.is_empty() => others.remove(0),
        None => SigningKey::generate().map_err(KeyRingError::Generate)?,
    };
    Ok(KeyRing::new(active, others))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    fn states(conn: &Connection, at: i64) -> Vec<KeyState> {
        list(conn, at)
            .unwrap()
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    fn kids(conn: &Connection) -> Vec<String> {
        current(conn, window_for(60, 0)).unwrap().1
    }

    #[test]
    fn the_first_load_makes_one_key_and_later_loads_reuse_it() {
        crate::domain::jwt_provider::install_provider();
        let mut conn = test_connection();
        let window = window_for(60, 0);
        let first = load(&mut conn, window).unwrap();
        let again = load(&mut conn, window).unwrap();
        assert_eq!(first.active().kid, again.active().kid);
        assert_eq!(kids(&conn), [first.active().kid.clone()]);
    }

    #[test]
    fn a_rotated_key_is_published_at_once_and_signs_after_the_delay() {
        crate::domain::jwt_provider::install_provider();
        let mut conn = test_connection();
        let window = window_for(60, 0);
        let old = load(&mut conn, window).unwrap().active().kid.clone();
        let new = rotate(&mut conn, 300, None).unwrap().unwrap();
        let ring = load(&mut conn, window).unwrap();
        assert_eq!(ring.active().kid, old, "the new key waits");
        assert_eq!(kids(&conn), [old.clone(), new.clone()]);
        let now = states(&conn, clock::now());
        assert!(matches!(now[0], KeyState::Next { .. }), "{now:?}");
        assert!(
            matches!(now[1], KeyState::Signing { until: Some(_) }),
            "{now:?}"
        );
        // Later, the new key signs and the old one is retired.
        let later = states(&conn, clock::now() + 301);
        assert_eq!(later[0], KeyState::Signing { until: None });
        assert!(matches!(later[1], KeyState::Retired { .. }), "{later:?}");
        // A conditional rotation leaves a young key alone.
        assert_eq!(
            rotate(&mut conn, 0, Some(clock::now() - 100)).unwrap(),
            None
        );
        // `--now` signs at once and retires the waiting key before it signs.
        let urgent = rotate(&mut conn, 0, None).unwrap().unwrap();
        assert_eq!(load(&mut conn, window).unwrap().active().kid, urgent);
        let now = states(&conn, clock::now());
        assert!(matches!(now[1], KeyState::Retired { .. }), "{now:?}");
        assert!(matches!(now[2], KeyState::Retired { .. }), "{now:?}");
    }

    #[test]
    fn revoking_the_signing_key_hands_over_to_the_newest_other() {
        crate::domain::jwt_provider::install_provider();
        let mut conn = test_connection();
        let window = window_for(60, 0);
        let old = load(&mut conn, window).unwrap().active().kid.clone();
        let next = rotate(&mut conn, 300, None).unwrap().unwrap();
        assert_eq!(
            revoke(&mut conn, &old).unwrap(),
            Revoked {
                successor: Some(next.clone())
            }
        );
        assert_eq!(kids(&conn), std::slice::from_ref(&next));
        assert_eq!(load(&mut conn, window).unwrap().active().kid, next);
        assert!(matches!(
            revoke(&mut conn, &old),
            Err(KeyRingError::NoSuchKey(_))
        ));
        // The last key revoked: a new one signs.
        let Revoked { successor } = revoke(&mut conn, &next).unwrap();
        let successor = successor.unwrap();
        assert_ne!(successor, next);
        assert_eq!(kids(&conn), [successor]);
    }

    #[test]
    fn revoking_a_key_that_does_not_sign_changes_nothing_else() {
        crate::domain::jwt_provider::install_provider();
        let mut conn = test_connection();
        let window = window_for(60, 0);
        let old = load(&mut conn, window).unwrap().active().kid.clone();
        let new = rotate(&mut conn, 0, None).unwrap().unwrap();
        assert_eq!(
            revoke(&mut conn, &old).unwrap(),
            Revoked { successor: None }
        );
        assert_eq!(kids(&conn), [new]);
    }
}
