//! The `totp_factors` table: a user's TOTP secret (on once confirmed), an
//! enrolment awaiting its first code, and the last time step accepted.

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, params};

/// A user's row: `secret` is the factor in force (on), `pending` an
/// enrolment not yet confirmed.
#[derive(Clone, Default)]
pub struct Factor {
    pub secret: Option<Vec<u8>>,
    pub pending: Option<Vec<u8>>,
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for Factor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factor")
            .field("on", &self.secret.is_some())
            .field("pending", &self.pending.is_some())
            .field("last_step", &self.last_step)
            .finish()
    }
}

pub fn find(conn: &Connection, user_id: &str) -> Result<Option<Factor>> {
    Ok(conn
        .prepare_cached(
            "SELECT secret, pending_secret, last_step FROM totp_factors WHERE user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok(Factor {
                secret: r.get(0)?,
                pending: r.get(1)?,
                last_step: r.get(2)?,
            })
        })
        .optional()?)
}

/// Whether the user's second factor is on.
pub fn is_on(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM totp_factors WHERE user_id = ?1 AND secret IS NOT NULL")?
        .exists([user_id])?)
}

/// Starts (or restarts) an enrolment: `pending` awaits its first code. A
/// factor already on stays on until the new one is confirmed.
pub fn set_pending(conn: &Connection, user_id: &str, pending: &[u8], now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO totp_factors (user_id, pending_secret, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET pending_secret = ?2",
    )?
    .execute(params![user_id, pending, now])?;
    Ok(())
}

/// Makes the pending secret the factor in force, with `step` (the step of
/// the code that confirmed it) as the last one accepted.
pub fn confirm(conn: &Connection, user_id: &str, step: i64, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE totp_factors
             SET secret = pending_secret, pending_secret = NULL, last_step = ?2,
                 confirmed_at = ?3
             WHERE user_id = ?1 AND pending_secret IS NOT NULL",
        )?
        .execute(params![user_id, step, now])?
        > 0)
}

/// Records `step` as accepted, unless it (or a later one) already was:
/// `false` means the code is a replay and must be refused. Run in the same
/// transaction as whatever the code unlocks, so two parallel requests with
/// one code cannot both succeed.
pub fn accept_step(conn: &Connection, user_id: &str, step: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE totp_factors SET last_step = ?2
             WHERE user_id = ?1 AND secret IS NOT NULL
               AND (last_step IS NULL OR last_step < ?2)",
        )?
        .execute(params![user_id, step])?
        > 0)
}

/// Turns the factor off (and drops any pending enrolment).
pub fn delete(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM totp_factors WHERE user_id = ?1")?
        .execute([user_id])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    fn setup() -> Connection {
        let conn = test_connection();
        conn.execute_batch(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES ('u1', 'a@x.io', 'a@x.io', 'h', 'Ada', 0, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn an_enrolment_is_off_until_confirmed() {
        let conn = setup();
        assert!(!is_on(&conn, "u1").unwrap());
        set_pending(&conn, "u1", b"one", 1).unwrap();
        assert!(!is_on(&conn, "u1").unwrap());
        assert!(confirm(&conn, "u1", 10, 2).unwrap());
        assert!(is_on(&conn, "u1").unwrap());
        let f = find(&conn, "u1").unwrap().unwrap();
        assert_eq!(
            (f.secret.as_deref(), f.pending, f.last_step),
            (Some(&b"one"[..]), None, Some(10))
        );
        // Nothing pending: nothing to confirm.
        assert!(!confirm(&conn, "u1", 11, 3).unwrap());
        // A new enrolment leaves the factor in force until it is confirmed.
        set_pending(&conn, "u1", b"two", 4).unwrap();
        assert_eq!(find(&conn, "u1").unwrap().unwrap().secret.unwrap(), b"one");
        assert!(delete(&conn, "u1").unwrap());
        assert!(!is_on(&conn, "u1").unwrap());
    }

    #[test]
    fn a_step_is_accepted_once_and_never_an_earlier_one() {
        let conn = setup();
        set_pending(&conn, "u1", b"s", 1).unwrap();
        assert!(!accept_step(&conn, "u1", 5).unwrap(), "not on yet");
        confirm(&conn, "u1", 5, 1).unwrap();
        assert!(!accept_step(&conn, "u1", 5).unwrap());
        assert!(accept_step(&conn, "u1", 6).unwrap());
        assert!(!accept_step(&conn, "u1", 6).unwrap());
        assert!(!accept_step(&conn, "u1", 4).unwrap());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let f = Factor {
            secret: Some(b"very secret".to_vec()),
            ..Factor::default()
        };
        assert!(!format!("{f:?}").contains("118"), "{f:?}");
    }
}
