//! The `device_tokens` table: the SHA-256 of each device token (OWASP
//! "device cookies"), the account it is bound to and when it expires.

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, params};

pub fn insert(
    conn: &Connection,
    hash: &[u8; 32],
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_tokens (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&hash[..], user_id, now, expires_at])?;
    Ok(())
}

/// Whether the token with this hash is bound to `user_id` and unexpired.
pub fn is_valid_for(conn: &Connection, hash: &[u8; 32], user_id: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM device_tokens
             WHERE token_hash = ?1 AND user_id = ?2 AND expires_at > ?3",
        )?
        .query_row(params![&hash[..], user_id, now], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Deletes at most `limit` device tokens that expired at or before `before`,
/// for the cleanup sweep's small batches; returns how many went.
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM device_tokens WHERE token_hash IN
         (SELECT token_hash FROM device_tokens WHERE expires_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![before, limit])
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, test_connection};

    #[test]
    fn a_token_is_valid_for_its_own_user_until_it_expires() {
        let conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        add_test_user(&conn, "u2", "b@x.io");
        insert(&conn, &[1; 32], "u1", 0, 10).unwrap();
        assert!(is_valid_for(&conn, &[1; 32], "u1", 9).unwrap());
        assert!(!is_valid_for(&conn, &[1; 32], "u1", 10).unwrap());
        assert!(!is_valid_for(&conn, &[1; 32], "u2", 9).unwrap());
        assert!(!is_valid_for(&conn, &[2; 32], "u1", 9).unwrap());
    }

    #[test]
    fn expired_tokens_are_deleted_in_batches() {
        let conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        for n in 0..5u8 {
            insert(&conn, &[n; 32], "u1", 0, i64::from(n)).unwrap();
        }
        assert_eq!(delete_expired(&conn, 3, 2).unwrap(), 2);
        assert_eq!(delete_expired(&conn, 3, 2).unwrap(), 2);
        assert_eq!(delete_expired(&conn, 3, 2).unwrap(), 0);
        assert!(is_valid_for(&conn, &[4; 32], "u1", 3).unwrap());
    }
}
