//! The `email_tokens` table: tokens of mailed links, as SHA-256 only.

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, params};

/// What a link is for; stored as its `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
    Change,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
            Purpose::Change => "change",
        }
    }
}

/// A link's row, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    pub user_id: String,
    pub email: String,
    pub expires_at: i64,
}

pub struct NewLink<'a> {
    pub hash: &'a [u8; 32],
    pub user_id: &'a str,
    pub purpose: Purpose,
    pub email: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Stores a new link and deletes the user's older ones of that purpose
/// (a newer link supersedes them).
pub fn replace(conn: &Connection, link: &NewLink<'_>) -> Result<()> {
    delete_for_user(conn, link.user_id, link.purpose)?;
    conn.prepare_cached(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &link.hash[..],
        link.user_id,
        link.purpose.as_str(),
        link.email,
        link.now,
        link.expires_at
    ])?;
    Ok(())
}

/// Deletes the link and returns it, if it exists with this purpose: a link
/// is spent by its first use, whatever that use's outcome.
pub fn take(conn: &Connection, hash: &[u8; 32], purpose: Purpose) -> Result<Option<LinkToken>> {
    conn.prepare_cached(
        "DELETE FROM email_tokens WHERE token_hash = ?1 AND purpose = ?2
         RETURNING user_id, email, expires_at",
    )?
    .query_row(params![&hash[..], purpose.as_str()], |r| {
        Ok(LinkToken {
            user_id: r.get(0)?,
            email: r.get(1)?,
            expires_at: r.get(2)?,
        })
    })
    .optional()
    .map_err(Into::into)
}

/// Deletes every link of this purpose for the user.
pub fn delete_for_user(conn: &Connection, user_id: &str, purpose: Purpose) -> Result<usize> {
    conn.prepare_cached("DELETE FROM email_tokens WHERE user_id = ?1 AND purpose = ?2")?
        .execute(params![user_id, purpose.as_str()])
        .map_err(Into::into)
}

/// Up to `limit` links that expired by `before` (for cleanup).
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM email_tokens WHERE token_hash IN
         (SELECT token_hash FROM email_tokens WHERE expires_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![before, limit])
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    fn user(conn: &Connection, id: &str) {
        conn.execute(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES (?1, ?1, ?1, 'h', 'Ada', 0, 0)",
            [id],
        )
        .unwrap();
    }

    fn link<'a>(hash: &'a [u8; 32], user_id: &'a str, purpose: Purpose) -> NewLink<'a> {
        NewLink {
            hash,
            user_id,
            purpose,
            email: "ada@example.com",
            now: 10,
            expires_at: 100,
        }
    }

    #[test]
    fn a_link_is_taken_once_and_only_for_its_purpose() {
        let conn = test_connection();
        user(&conn, "u1");
        replace(&conn, &link(&[1; 32], "u1", Purpose::Verify)).unwrap();
        assert_eq!(take(&conn, &[1; 32], Purpose::Reset).unwrap(), None);
        let taken = take(&conn, &[1; 32], Purpose::Verify).unwrap().unwrap();
        assert_eq!((taken.user_id.as_str(), taken.expires_at), ("u1", 100));
        assert_eq!(take(&conn, &[1; 32], Purpose::Verify).unwrap(), None);
    }

    #[test]
    fn a_newer_link_supersedes_older_ones_of_its_purpose() {
        let conn = test_connection();
        user(&conn, "u1");
        replace(&conn, &link(&[1; 32], "u1", Purpose::Reset)).unwrap();
        replace(&conn, &link(&[2; 32], "u1", Purpose::Verify)).unwrap();
        replace(&conn, &link(&[3; 32], "u1", Purpose::Reset)).unwrap();
        assert_eq!(take(&conn, &[1; 32], Purpose::Reset).unwrap(), None);
        assert!(take(&conn, &[2; 32], Purpose::Verify).unwrap().is_some());
        assert!(take(&conn, &[3; 32], Purpose::Reset).unwrap().is_some());
    }
}
