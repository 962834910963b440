//! The operator's subcommands. Each opens the database itself and works
//! while a service is running on the same file (SQLite's WAL and busy
//! timeout let them share it).

use crate::clock;
use crate::db::{self, Pool, signing_keys};
use crate::keystore;
use std::path::Path;

fn open(path: &Path) -> Result<Pool, String> {
    let pool = db::open(path, 1).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    db::migrate(&mut conn).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(pool)
}

/// `latchkey migrate`: create or upgrade the schema and the first key.
pub fn migrate(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let window = keystore::recorded_window(&conn).map_err(|e| e.to_string())?;
    keystore::load(&mut conn, window).map_err(|e| e.to_string())?;
    println!("{}: schema version {}", path.display(), db::SCHEMA_VERSION);
    Ok(())
}

/// `latchkey keys list`: every key, newest first, with its state.
pub fn keys_list(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let conn = pool.get().map_err(|e| e.to_string())?;
    let window = keystore::recorded_window(&conn).map_err(|e| e.to_string())?;
    let keys = signing_keys::all(&conn, window).map_err(|e| e.to_string())?;
    let now = clock::now();
    println!(
        "{:<44}  {:<20}  {:<8}  DROPPED AFTER",
        "KID", "CREATED", "STATE"
    );
    for key in keys {
        let state = match key.drop_after {
            None => "active",
            Some(t) if t > now => "retiring",
            Some(_) => "dropped",
        };
        let drop = key
            .drop_after
            .map_or_else(|| "-".to_string(), clock::rfc3339);
        println!(
            "{:<44}  {:<20}  {state:<8}  {drop}",
            key.kid,
            clock::rfc3339(key.created_at)
        );
    }
    Ok(())
}

/// `latchkey keys rotate`: a new active key; the old one retires and stays
/// published until nothing it signed is alive. A running service picks the
/// new key up within `keystore::RELOAD_SECONDS`.
pub fn keys_rotate(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let window = keystore::recorded_window(&conn).map_err(|e| e.to_string())?;
    keystore::load(&mut conn, window).map_err(|e| e.to_string())?;
    let kid = keystore::rotate(&mut conn, None).map_err(|e| e.to_string())?;
    println!("new signing key {}", kid.unwrap_or_default());
    Ok(())
}
