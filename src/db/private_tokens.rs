//! The `private_tokens` table. The token itself is a JWT that is never
//! stored; its row says it is still valid (a revoked token's row is gone).

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

#[derive(Debug, Clone, PartialEq)]
pub struct PrivateToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, created_at, expires_at, last_used_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<PrivateToken> {
    Ok(PrivateToken {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        last_used_at: r.get(5)?,
    })
}

pub struct NewPrivateToken<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub kid: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &Connection, t: &NewPrivateToken<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO private_tokens (id, user_id, name, kid, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![t.id, t.user_id, t.name, t.kid, t.now, t.expires_at])?;
    Ok(())
}

/// Token `id` if it belongs to `user_id` (the check on every use, too).
pub fn find_of_user(conn: &Connection, id: &str, user_id: &str) -> Result<Option<PrivateToken>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM private_tokens WHERE id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![id, user_id], from_row)
    .optional()
    .map_err(Into::into)
}

/// The user's tokens, newest first.
pub fn list_of_user(conn: &Connection, user_id: &str) -> Result<Vec<PrivateToken>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM private_tokens WHERE user_id = ?1
         ORDER BY created_at DESC, rowid DESC"
    ))?
    .query_map([user_id], from_row)?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

/// Revokes token `id` of `user_id`.
pub fn delete_of_user(conn: &Connection, id: &str, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM private_tokens WHERE id = ?1 AND user_id = ?2")?
        .execute(params![id, user_id])?
        > 0)
}

/// Revokes token `id`, whoever owns it (RFC 7009 revocation by the token).
pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM private_tokens WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Records use seen since the last flush (see `domain::token_use`).
pub fn touch(conn: &Connection, id: &str, at: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE private_tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
    )?
    .execute(params![id, at])?;
    Ok(())
}

/// Deletes at most `limit` private tokens that expired at or before `before`, for
/// the cleanup sweep's small batches; returns how many went.
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM private_tokens WHERE id IN
         (SELECT id FROM private_tokens WHERE expires_at <= ?1 LIMIT ?2)",
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
        for (id, user, now) in [("t1", "u1", 1), ("t2", "u1", 2), ("t3", "u2", 3)] {
            let t = NewPrivateToken {
                id,
                user_id: user,
                name: "ci",
                kid: "k",
                now,
                expires_at: 99,
            };
            insert(&conn, &t).unwrap();
        }
        conn
    }

    #[test]
    fn tokens_are_listed_newest_first_per_user() {
        let conn = setup();
        let ids: Vec<String> = list_of_user(&conn, "u1")
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["t2", "t1"]);
    }

    #[test]
    fn another_users_token_is_invisible_and_untouchable() {
        let conn = setup();
        assert!(find_of_user(&conn, "t3", "u1").unwrap().is_none());
        assert!(!delete_of_user(&conn, "t3", "u1").unwrap());
        assert!(delete_of_user(&conn, "t3", "u2").unwrap());
        assert!(find_of_user(&conn, "t3", "u2").unwrap().is_none());
    }

    #[test]
    fn touch_only_moves_forward() {
        let conn = setup();
        touch(&conn, "t1", 50).unwrap();
        touch(&conn, "t1", 40).unwrap();
        assert_eq!(
            find_of_user(&conn, "t1", "u1")
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(50)
        );
    }
}
