//! The `users` table.

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, Row, params};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The profile picture's id, if there is one.
    pub image_id: Option<String>,
    /// A mailed link proved the address.
    pub email_verified: bool,
    /// An email change awaiting confirmation.
    pub pending_email: Option<String>,
    /// Whether a second factor is on.
    pub mfa_enabled: bool,
}

/// The name fields, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// The email is already registered (a UNIQUE violation on `email_key`).
#[derive(Debug)]
pub struct EmailTaken;

const SELECT: &str = "SELECT u.id, u.email, u.password_hash, u.name, u.first_name, u.last_name,
       u.created_at, u.updated_at, i.id, u.email_verified, u.pending_email,
       EXISTS (SELECT 1 FROM totp_factors t WHERE t.user_id = u.id AND t.secret IS NOT NULL)
FROM users u LEFT JOIN images i ON i.user_id = u.id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        name: r.get(3)?,
        first_name: r.get(4)?,
        last_name: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        image_id: r.get(8)?,
        email_verified: r.get(9)?,
        pending_email: r.get(10)?,
        mfa_enabled: r.get(11)?,
    })
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub email_key: &'a str,
    pub password_hash: &'a str,
    pub names: &'a Names,
    pub now: i64,
}

pub fn insert(conn: &Connection, u: &NewUser<'_>) -> Result<Result<(), EmailTaken>> {
    let result = conn
        .prepare_cached(
            "INSERT INTO users (id, email, email_key, password_hash, name, first_name,
                                last_name, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        )?
        .execute(params![
            u.id,
            u.email,
            u.email_key,
            u.password_hash,
            u.names.name,
            u.names.first_name,
            u.names.last_name,
            u.now
        ]);
    match result {
        Ok(_) => Ok(Ok(())),
        Err(e) if super::is_unique_violation(&e) => Ok(Err(EmailTaken)),
        Err(e) => Err(e.into()),
    }
}

pub fn find_by_email_key(conn: &Connection, key: &str) -> Result<Option<User>> {
    conn.prepare_cached(&format!("{SELECT} WHERE u.email_key = ?1"))?
        .query_row([key], from_row)
        .optional()
        .map_err(Into::into)
}

/// Every user, oldest first (for `latchkey users list`).
pub fn list(conn: &Connection) -> Result<Vec<User>> {
    conn.prepare(&format!("{SELECT} ORDER BY u.created_at, u.rowid"))?
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()
        .map_err(Into::into)
}

pub fn find(conn: &Connection, id: &str) -> Result<Option<User>> {
    conn.prepare_cached(&format!("{SELECT} WHERE u.id = ?1"))?
        .query_row([id], from_row)
        .optional()
        .map_err(Into::into)
}

pub fn update_names(conn: &Connection, id: &str, names: &Names, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE users SET name = ?2, first_name = ?3, last_name = ?4, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        names.name,
        names.first_name,
        names.last_name,
        now
    ])?;
    Ok(())
}

/// A mailed link proved the current address.
pub fn set_verified(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE users SET email_verified = 1, updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Records (or clears) the address of an email change awaiting its link.
pub fn set_pending_email(
    conn: &Connection,
    id: &str,
    pending: Option<&str>,
    now: i64,
) -> Result<()> {
    conn.prepare_cached("UPDATE users SET pending_email = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, pending, now])?;
    Ok(())
}

/// Applies a confirmed email change: the new address, verified, nothing pending.
pub fn apply_email_change(
    conn: &Connection,
    id: &str,
    email: &str,
    email_key: &str,
    now: i64,
) -> Result<Result<(), EmailTaken>> {
    let result = conn
        .prepare_cached(
            "UPDATE users SET email = ?2, email_key = ?3, email_verified = 1,
                              pending_email = NULL, updated_at = ?4
             WHERE id = ?1",
        )?
        .execute(params![id, email, email_key, now]);
    match result {
        Ok(_) => Ok(Ok(())),
        Err(e) if super::is_unique_violation(&e) => Ok(Err(EmailTaken)),
        Err(e) => Err(e.into()),
    }
}

/// Marks the user as changed now (a new password or picture).
pub fn touch(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE users SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Deletes the user; sessions, tokens and picture go with it (ON DELETE CASCADE).
pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM users WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Recomputes every `email_key` with `key` (a migration that changed the
/// key's rules). A user whose new key another account already holds keeps
/// the old one, with a warning: both accounts keep working, neither is merged.
pub fn rekey_emails(conn: &Connection, key: fn(&str) -> String) -> Result<()> {
    let users: Vec<(String, String, String)> = conn
        .prepare("SELECT id, email, email_key FROM users")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE OR IGNORE users SET email_key = ?2 WHERE id = ?1")?;
    for (id, email, old) in users {
        let new = key(&email);
        if new != old && update.execute(params![id, new])? == 0 {
            log::warn!("user {id} keeps its old email key: another account holds the new one");
        }
    }
    Ok(())
}

/// Replaces the stored hash (a rehash at new parameters, or a new password:
/// the caller ends the sessions in that case).
pub fn update_password_hash(conn: &Connection, id: &str, hash: &str) -> Result<()> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![id, hash])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    pub fn add(conn: &Connection, id: &str, key: &str) -> Result<(), EmailTaken> {
        let names = Names {
            name: "Ada Lovelace".into(),
            first_name: Some("Ada".into()),
            last_name: None,
        };
        insert(
            conn,
            &NewUser {
                id,
                email: key,
                email_key: key,
                password_hash: "$argon2id$x",
                names: &names,
                now: 7,
            },
        )
        .unwrap()
    }

    #[test]
    fn insert_then_find_by_id_and_email() {
        let conn = test_connection();
        add(&conn, "u1", "ada@example.com").unwrap();
        let u = find(&conn, "u1").unwrap().unwrap();
        assert_eq!(
            (u.name.as_str(), u.created_at, u.updated_at),
            ("Ada Lovelace", 7, 7)
        );
        assert_eq!(u.first_name.as_deref(), Some("Ada"));
        assert!(u.last_name.is_none());
        assert_eq!(
            find_by_email_key(&conn, "ada@example.com")
                .unwrap()
                .unwrap()
                .id,
            "u1"
        );
        assert!(find(&conn, "u2").unwrap().is_none());
    }

    #[test]
    fn a_taken_email_is_a_value_not_an_error() {
        let conn = test_connection();
        add(&conn, "u1", "ada@example.com").unwrap();
        assert!(add(&conn, "u2", "ada@example.com").is_err());
        add(&conn, "u3", "bob@example.com").unwrap();
        assert!(
            apply_email_change(&conn, "u3", "ada@example.com", "ada@example.com", 9)
                .unwrap()
                .is_err()
        );
    }
}
