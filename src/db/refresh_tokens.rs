//! The `refresh_tokens` table. Tokens are stored only as their SHA-256.

use rusqlite::{Connection, OptionalExtension, params};

/// A stored refresh token joined with the session (and user) it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub session_id: String,
    pub user_id: String,
    pub expires_at: i64,
}

pub fn insert(
    conn: &Connection,
    hash: &[u8; 32],
    session_id: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&hash[..], session_id, now, expires_at])?;
    Ok(())
}

pub fn find(conn: &Connection, hash: &[u8; 32]) -> rusqlite::Result<Option<RefreshToken>> {
    conn.prepare_cached(
        "SELECT r.session_id, s.user_id, r.expires_at
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
         WHERE r.token_hash = ?1",
    )?
    .query_row([&hash[..]], |r| {
        Ok(RefreshToken {
            session_id: r.get(0)?,
            user_id: r.get(1)?,
            expires_at: r.get(2)?,
        })
    })
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{sessions, test_connection};

    #[test]
    fn a_token_is_found_by_hash_and_dies_with_its_session() {
        let conn = test_connection();
        conn.execute_batch(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES ('u1', 'a@x.io', 'a@x.io', 'h', 'Ada', 0, 0);",
        )
        .unwrap();
        let s = sessions::NewSession {
            id: "s1",
            user_id: "u1",
            user_agent: None,
            now: 1,
            expires_at: 99,
        };
        sessions::insert(&conn, &s).unwrap();
        insert(&conn, &[7; 32], "s1", 1, 99).unwrap();
        let found = find(&conn, &[7; 32]).unwrap().unwrap();
        assert_eq!(found.user_id, "u1");
        assert_eq!(found.expires_at, 99);
        assert!(find(&conn, &[8; 32]).unwrap().is_none());
        sessions::delete(&conn, "s1").unwrap();
        assert!(find(&conn, &[7; 32]).unwrap().is_none());
    }
}
