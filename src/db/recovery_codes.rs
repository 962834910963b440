//! The `recovery_codes` table: a user's single-use recovery codes, stored only
//! as keyed hashes (see `domain::mfa::RecoveryCode`).

use crate::db::Result;
use rusqlite::{Connection, params};

/// Replaces the user's codes with these hashes: the old codes stop working.
pub fn replace(conn: &Connection, user_id: &str, hashes: &[[u8; 32]], now: i64) -> Result<()> {
    delete_all_of_user(conn, user_id)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO recovery_codes (code_hash, user_id, created_at) VALUES (?1, ?2, ?3)",
    )?;
    for hash in hashes {
        insert.execute(params![&hash[..], user_id, now])?;
    }
    Ok(())
}

/// Spends one code: `true` if it was the user's and unused.
pub fn take(conn: &Connection, user_id: &str, hash: &[u8; 32]) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM recovery_codes WHERE code_hash = ?1 AND user_id = ?2")?
        .execute(params![&hash[..], user_id])?
        > 0)
}

pub fn delete_all_of_user(conn: &Connection, user_id: &str) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
        .execute([user_id])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    #[test]
    fn a_code_works_once_and_a_new_set_replaces_the_old() {
        let conn = test_connection();
        conn.execute_batch(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES ('u1', 'a@x.io', 'a@x.io', 'h', 'Ada', 0, 0),
                    ('u2', 'b@x.io', 'b@x.io', 'h', 'Bob', 0, 0);",
        )
        .unwrap();
        replace(&conn, "u1", &[[1; 32], [2; 32]], 0).unwrap();
        assert!(!take(&conn, "u2", &[1; 32]).unwrap(), "another user's code");
        assert!(take(&conn, "u1", &[1; 32]).unwrap());
        assert!(!take(&conn, "u1", &[1; 32]).unwrap());
        replace(&conn, "u1", &[[3; 32]], 0).unwrap();
        assert!(!take(&conn, "u1", &[2; 32]).unwrap());
        assert!(take(&conn, "u1", &[3; 32]).unwrap());
    }
}
