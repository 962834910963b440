//! The `sessions` table: one row per login.

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A session as listed to its user.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        user_agent: r.get(1)?,
        created_at: r.get(2)?,
        last_used_at: r.get(3)?,
    })
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub user_agent: Option<&'a str>,
    /// RFC 8176 values, space-separated (`pwd`; `pwd otp` after a second factor).
    pub amr: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &Connection, s: &NewSession<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, user_id, user_agent, created_at, last_used_at, expires_at, amr)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
    )?
    .execute(params![
        s.id,
        s.user_id,
        s.user_agent,
        s.now,
        s.expires_at,
        s.amr
    ])?;
    Ok(())
}

/// Whether session `id` of `user_id` still exists: the check that makes
/// latchkey refuse the access tokens of an ended session (ASVS 7.4.1).
pub fn is_live(conn: &Connection, id: &str, user_id: &str) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2")?
        .exists(params![id, user_id])
        .map_err(Into::into)
}

/// The user's unexpired sessions, newest first.
pub fn list_of_user(conn: &Connection, user_id: &str, now: i64) -> Result<Vec<Session>> {
    conn.prepare_cached(
        "SELECT id, user_agent, created_at, last_used_at FROM sessions
         WHERE user_id = ?1 AND expires_at > ?2
         ORDER BY created_at DESC, rowid DESC",
    )?
    .query_map(params![user_id, now], from_row)?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

/// A rotation moved the session's horizon.
pub fn extend(conn: &Connection, id: &str, now: i64, expires_at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET last_used_at = ?2, expires_at = ?3 WHERE id = ?1")?
        .execute(params![id, now, expires_at])?;
    Ok(())
}

/// Records use seen since the last flush (see `domain::token_use`); never moves back.
pub fn touch(conn: &Connection, id: &str, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET last_used_at = max(last_used_at, ?2) WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// Ends session `id` if it belongs to `user_id`.
pub fn delete_of_user(conn: &Connection, id: &str, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id, user_id])?
        > 0)
}

/// Ends one session; its refresh tokens go with it (ON DELETE CASCADE).
pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Ends the session that refresh token `hash` belongs to, if any.
/// A session that was ended, and whose it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub session_id: String,
    pub user_id: String,
}

/// Ends the session of a refresh token, if it has one.
pub fn delete_by_refresh_token(conn: &Connection, hash: &[u8; 32]) -> Result<Option<Ended>> {
    conn.prepare_cached(
        "DELETE FROM sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = ?1)
         RETURNING id, user_id",
    )?
    .query_row([&hash[..]], |r| {
        Ok(Ended {
            session_id: r.get(0)?,
            user_id: r.get(1)?,
        })
    })
    .optional().map_err(Into::into)
}

/// Ends every session of a user; returns how many.
pub fn delete_all_of_user(conn: &Connection, user_id: &str) -> Result<usize> {
    conn.prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute([user_id])
        .map_err(Into::into)
}

/// Deletes at most `limit` sessions that expired at or before `before`, for
/// the cleanup sweep's small batches; returns how many went.
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM sessions WHERE id IN
         (SELECT id FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![before, limit])
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, test_connection};

    fn setup() -> Connection {
        let conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        add_test_user(&conn, "u2", "b@x.io");
        for (id, user) in [("s1", "u1"), ("s2", "u1"), ("s3", "u2")] {
            let s = NewSession {
                id,
                user_id: user,
                user_agent: Some("curl"),
                amr: "pwd",
                now: 1,
                expires_at: 9,
            };
            insert(&conn, &s).unwrap();
        }
        conn
    }

    #[test]
    fn a_session_is_live_only_for_its_own_user() {
        let conn = setup();
        assert!(is_live(&conn, "s1", "u1").unwrap());
        assert!(!is_live(&conn, "s1", "u2").unwrap());
        assert!(delete(&conn, "s1").unwrap());
        assert!(!is_live(&conn, "s1", "u1").unwrap());
        assert!(!delete(&conn, "s1").unwrap());
    }

    #[test]
    fn ending_all_sessions_spares_other_users() {
        let conn = setup();
        assert_eq!(delete_all_of_user(&conn, "u1").unwrap(), 2);
        assert!(is_live(&conn, "s3", "u2").unwrap());
    }

    #[test]
    fn deleting_a_user_ends_their_sessions() {
        let conn = setup();
        conn.execute("DELETE FROM users WHERE id = 'u1'", [])
            .unwrap();
        assert!(!is_live(&conn, "s2", "u1").unwrap());
    }
}
