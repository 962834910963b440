//! `App`: the one shared state of a running service — configuration, the
//! database pool, the signing keys, and the password hasher.

use crate::clock;
use crate::config::Config;
use crate::db::{self, Pool, signing_keys};
use crate::error::ApiError;
use crate::keys::SigningKey;
use crate::password::Hasher;
use crate::tokens::{Expectations, KeyRing};
use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use std::sync::{Arc, RwLock};

pub type Conn = PooledConnection<SqliteConnectionManager>;

pub struct App {
    pub config: Config,
    pub db: Pool,
    pub hasher: Hasher,
    pub expect: Expectations,
    keys: RwLock<Arc<KeyRing>>,
}

impl App {
    pub fn new(config: Config, db: Pool, hasher: Hasher, keys: KeyRing) -> App {
        let expect = Expectations {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
        };
        App {
            config,
            db,
            hasher,
            expect,
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    pub fn conn(&self) -> Result<Conn, ApiError> {
        Ok(self.db.get()?)
    }

    /// The signing keys in force now.
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Why the signing keys could not be loaded.
#[derive(Debug)]
pub struct KeyLoadError(pub String);

impl std::fmt::Display for KeyLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The published keys, creating the first one on a new database. Runs in a
/// write transaction so two processes starting together make one key.
pub fn load_key_ring(conn: &mut rusqlite::Connection) -> Result<KeyRing, KeyLoadError> {
    let now = clock::now();
    let stored = db::write(conn, |tx| {
        let mut stored = signing_keys::published(tx, now)?;
        if !stored.iter().any(|k| k.retired_at.is_none()) {
            let key = SigningKey::generate(now)
                .map_err(|e| KeyLoadError(format!("generating a signing key: {e:?}")))?;
            signing_keys::insert(tx, &key.kid, key.pkcs8.expose(), now)?;
            stored = signing_keys::published(tx, now)?;
        }
        Ok::<_, KeyLoadError>(stored)
    })?;
    let mut keys = stored
        .into_iter()
        .map(|k| {
            let retired = k.retired_at.is_some();
            SigningKey::from_parts(k.kid.clone(), k.private_pkcs8, k.created_at)
                .map(|key| (retired, key))
                .map_err(|e| KeyLoadError(format!("signing key {}: {e:?}", k.kid)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // `published` lists newest first, so the first unretired key signs.
    let active = keys
        .iter()
        .position(|(retired, _)| !retired)
        .ok_or_else(|| KeyLoadError("no active signing key".into()))?;
    let (_, active) = keys.remove(active);
    Ok(KeyRing::new(
        active,
        keys.into_iter().map(|(_, k)| k).collect(),
    ))
}

impl From<rusqlite::Error> for KeyLoadError {
    fn from(e: rusqlite::Error) -> Self {
        KeyLoadError(format!("database: {e}"))
    }
}
