//! The `mfa_tokens` table: the pending second step of a login (see
//! `handlers::mfa::log_in_mfa`).

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, params};

/// Wrong codes after which an MFA token is spent.
pub const MAX_FAILURES: i64 = 5;

pub struct NewMfaToken<'a> {
    pub hash: &'a [u8; 32],
    pub user_id: &'a str,
    pub address: Option<&'a str>,
    pub device_token_hash: Option<&'a [u8; 32]>,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &Connection, t: &NewMfaToken<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO mfa_tokens (token_hash, user_id, address, device_token_hash,
                                 created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &t.hash[..],
        t.user_id,
        t.address,
        t.device_token_hash.map(|h| &h[..]),
        t.now,
        t.expires_at
    ])?;
    Ok(())
}

/// An unexpired MFA token.
#[derive(Debug, Clone)]
pub struct MfaToken {
    pub user_id: String,
    pub address: Option<String>,
    pub device_token_hash: Option<Vec<u8>>,
}

pub fn find(conn: &Connection, hash: &[u8; 32], now: i64) -> Result<Option<MfaToken>> {
    Ok(conn
        .prepare_cached(
            "SELECT user_id, address, device_token_hash FROM mfa_tokens
         WHERE token_hash = ?1 AND expires_at > ?2 AND failures < ?3",
        )?
        .query_row(params![&hash[..], now, MAX_FAILURES], |r| {
            Ok(MfaToken {
                user_id: r.get(0)?,
                address: r.get(1)?,
                device_token_hash: r.get(2)?,
            })
        })
        .optional()?)
}

/// Spends the token (a success, or its last allowed failure): `false` if
/// another request spent it first.
pub fn delete(conn: &Connection, hash: &[u8; 32]) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM mfa_tokens WHERE token_hash = ?1")?
        .execute([&hash[..]])?
        > 0)
}

/// Counts a wrong code; the token is spent once it has `MAX_FAILURES`.
pub fn fail(conn: &Connection, hash: &[u8; 32]) -> Result<()> {
    conn.prepare_cached("UPDATE mfa_tokens SET failures = failures + 1 WHERE token_hash = ?1")?
        .execute([&hash[..]])?;
    conn.prepare_cached("DELETE FROM mfa_tokens WHERE token_hash = ?1 AND failures >= ?2")?
        .execute(params![&hash[..], MAX_FAILURES])?;
    Ok(())
}

/// The user's pending logins (the factor was turned off, or the account
/// changed): none may complete.
pub fn delete_all_of_user(conn: &Connection, user_id: &str) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM mfa_tokens WHERE user_id = ?1")?
        .execute([user_id])?)
}

/// Cleanup: at most `limit` tokens expired by `before`.
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM mfa_tokens WHERE token_hash IN
             (SELECT token_hash FROM mfa_tokens WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![before, limit])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    #[test]
    fn a_token_is_spent_by_its_fifth_failure_or_its_expiry() {
        let conn = test_connection();
        conn.execute_batch(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES ('u1', 'a@x.io', 'a@x.io', 'h', 'Ada', 0, 0);",
        )
        .unwrap();
        let new = NewMfaToken {
            hash: &[7; 32],
            user_id: "u1",
            address: Some("127.0.0.1"),
            device_token_hash: None,
            now: 0,
            expires_at: 300,
        };
        insert(&conn, &new).unwrap();
        assert!(find(&conn, &[7; 32], 300).unwrap().is_none(), "expired");
        for _ in 0..MAX_FAILURES - 1 {
            fail(&conn, &[7; 32]).unwrap();
        }
        let found = find(&conn, &[7; 32], 1).unwrap().unwrap();
        assert_eq!(found.address.as_deref(), Some("127.0.0.1"));
        fail(&conn, &[7; 32]).unwrap();
        assert!(find(&conn, &[7; 32], 1).unwrap().is_none());
        assert!(!delete(&conn, &[7; 32]).unwrap());
    }
}
