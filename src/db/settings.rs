//! The `settings` table: small named values shared by the service and the
//! command line.

use crate::db::Result;
use crate::domain::ids;
use rusqlite::{Connection, OptionalExtension, params};

/// The secret behind rotated refresh tokens (see `refresh_tokens::successor`).
pub const ROTATION_SECRET: &str = "refresh_rotation_secret";
/// The access window of the last service started: how long after a key's
/// retirement its access tokens may live (see `signing_keys::Window`).
pub const ACCESS_WINDOW: &str = "access_window";
/// The `--jwks-max-age` of the last service started: how long `keys rotate`
/// lets a new key be published before it signs.
pub const JWKS_MAX_AGE: &str = "jwks_max_age";
/// The `--audit-retention` of the last service started, so `latchkey
/// cleanup` prunes as the service would.
pub const AUDIT_RETENTION: &str = "audit_retention";

pub fn get_i64(conn: &Connection, name: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
        .map_err(Into::into)
}

pub fn set_i64(conn: &Connection, name: &str, value: i64) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)")?
        .execute(params![name, value])?;
    Ok(())
}

/// The 32-byte secret `name`, made on first use. Call inside a write
/// transaction so two processes agree on one value.
pub fn secret(conn: &Connection, name: &str) -> Result<Vec<u8>> {
    conn.prepare_cached("INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)")?
        .execute(params![name, &ids::random_bytes::<32>()[..]])?;
    conn.prepare_cached("SELECT value FROM settings WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    #[test]
    fn a_secret_is_made_once() {
        let conn = test_connection();
        let first = secret(&conn, ROTATION_SECRET).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(secret(&conn, ROTATION_SECRET).unwrap(), first);
    }

    #[test]
    fn numbers_round_trip() {
        let conn = test_connection();
        assert_eq!(get_i64(&conn, ACCESS_WINDOW).unwrap(), None);
        set_i64(&conn, ACCESS_WINDOW, 3640).unwrap();
        set_i64(&conn, ACCESS_WINDOW, 100).unwrap();
        assert_eq!(get_i64(&conn, ACCESS_WINDOW).unwrap(), Some(100));
    }
}
