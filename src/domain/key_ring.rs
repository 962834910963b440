//! Signing keys in the database: the `KeyRing` a service verifies and signs
//! with, the first key of a new database, rotation (by `latchkey keys rotate`,
//! or by the service every `--key-rotation-interval`), and the periodic reload
//! that lets a running service pick up a rotation made by another process.

use crate::clock;
use crate::db::{self, settings, signing_keys};
use crate::domain::keys::SigningKey;
use crate::domain::tokens::KeyRing;
use rusqlite::Connection;
use std::fmt;

/// How often a service rereads the keys; the contract allows 10 seconds.
pub const RELOAD_SECONDS: u64 = 5;

/// Why the keys could not be loaded or rotated.
#[derive(Debug)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for KeyError {
    fn from(e: rusqlite::Error) -> Self {
        KeyError(format!("database: {e}"))
    }
}

/// The window of a service with these settings: access tokens signed just
/// before a rotation live `access_ttl + leeway`, plus the time it takes the
/// service to notice the rotation.
pub fn window_for(access_ttl: u64, leeway: u64) -> signing_keys::Window {
    signing_keys::Window {
        access: (access_ttl + leeway + 2 * RELOAD_SECONDS) as i64,
        leeway: leeway as i64,
    }
}

/// The window recorded by the last service started on this database (the
/// command line does not know the service's flags), or the defaults'.
pub fn recorded_window(conn: &Connection) -> Result<signing_keys::Window, KeyError> {
    let default = window_for(3600, 30);
    Ok(signing_keys::Window {
        access: settings::get_i64(conn, settings::ACCESS_WINDOW)?.unwrap_or(default.access),
        leeway: 60,
    })
}

/// Records this service's window for `keys rotate` and `cleanup` to use.
pub fn record_window(conn: &Connection, window: signing_keys::Window) -> Result<(), KeyError> {
    Ok(settings::set_i64(
        conn,
        settings::ACCESS_WINDOW,
        window.access,
    )?)
}

/// The published keys, creating the first one on a new database. Runs in a
/// write transaction so two processes starting together make one key.
pub fn load(conn: &mut Connection, window: signing_keys::Window) -> Result<KeyRing, KeyError> {
    let now = clock::now();
    let stored = db::write(conn, |tx| {
        if !signing_keys::all(tx, window)?
            .iter()
            .any(|k| k.retired_at.is_none())
        {
            insert_new(tx, now)?;
        }
        Ok::<_, KeyError>(signing_keys::published(tx, now, window)?)
    })?;
    ring_of(stored)
}

/// The kids a fresh `load` would put in the ring, active first: a cheap
/// read to decide whether a reload is needed.
pub fn published_kids(
    conn: &Connection,
    window: signing_keys::Window,
) -> Result<Vec<String>, KeyError> {
    let keys = signing_keys::published(conn, clock::now(), window)?;
    Ok(keys.into_iter().map(|k| k.kid).collect())
}

/// Makes a new active key and retires the old one; returns the new kid.
/// With `only_if_older_than`, does nothing (returns `None`) unless the active
/// key was created before that time — so two rotations never race.
pub fn rotate(
    conn: &mut Connection,
    only_if_older_than: Option<i64>,
) -> Result<Option<String>, KeyError> {
    let now = clock::now();
    db::write(conn, |tx| {
        if let Some(limit) = only_if_older_than {
            let active = signing_keys::all(tx, recorded_window(tx)?)?
                .into_iter()
                .find(|k| k.retired_at.is_none());
            if active.is_some_and(|k| k.created_at >= limit) {
                return Ok(None);
            }
        }
        signing_keys::retire_active(tx, now)?;
        Ok(Some(insert_new(tx, now)?))
    })
}

fn insert_new(conn: &Connection, now: i64) -> Result<String, KeyError> {
    let key = SigningKey::generate(now).map_err(|e| KeyError(format!("generating a key: {e}")))?;
    signing_keys::insert(conn, &key.kid, key.pkcs8.expose(), now)?;
    Ok(key.kid)
}

/// Stored keys (newest first) → a ring whose active key is the newest unretired one.
fn ring_of(stored: Vec<signing_keys::StoredKey>) -> Result<KeyRing, KeyError> {
    let mut keys = stored
        .into_iter()
        .map(|k| {
            let retired = k.retired_at.is_some();
            SigningKey::from_parts(k.kid.clone(), k.private_pkcs8, k.created_at)
                .map(|key| (retired, key))
                .map_err(|e| KeyError(format!("signing key {}: {e}", k.kid)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let active = keys
        .iter()
        .position(|(retired, _)| !retired)
        .ok_or_else(|| KeyError("no active signing key".into()))?;
    let (_, active) = keys.remove(active);
    Ok(KeyRing::new(
        active,
        keys.into_iter().map(|(_, k)| k).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    #[test]
    fn the_first_load_makes_one_key_and_later_loads_reuse_it() {
        crate::domain::jwt_provider::install_provider();
        let mut conn = test_connection();
        let window = window_for(60, 0);
        let first = load(&mut conn, window).unwrap();
        let again = load(&mut conn, window).unwrap();
        assert_eq!(first.active().kid, again.active().kid);
        assert_eq!(
            published_kids(&conn, window).unwrap(),
            [first.active().kid.clone()]
        );
    }

    #[test]
    fn rotation_makes_a_new_active_key_and_keeps_the_old_one_published() {
        crate::domain::jwt_provider::install_provider();
        let mut conn = test_connection();
        let window = window_for(60, 0);
        let old = load(&mut conn, window).unwrap().active().kid.clone();
        let new = rotate(&mut conn, None).unwrap().unwrap();
        let ring = load(&mut conn, window).unwrap();
        assert_eq!(ring.active().kid, new);
        assert_eq!(published_kids(&conn, window).unwrap(), [new.clone(), old]);
        // A conditional rotation leaves a young key alone.
        assert_eq!(rotate(&mut conn, Some(clock::now() - 100)).unwrap(), None);
        assert_eq!(load(&mut conn, window).unwrap().active().kid, new);
    }
}
