//! The `signing_keys` table: Ed25519 key pairs as PKCS#8 documents, when each
//! signs (`signs_at` until `retired_at`), and when a retired key may be dropped.

use crate::db::Result;
use rusqlite::{Connection, Row, params};

#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub private_pkcs8: Vec<u8>,
    pub created_at: i64,
    /// When the key starts signing: at once for the first key and after
    /// `keys rotate --now`, else once it has been published long enough.
    pub signs_at: i64,
    /// When it stops signing (its successor's `signs_at`); `None` while it
    /// has no successor.
    pub retired_at: Option<i64>,
    /// For a retired key: the latest expiry (plus leeway) of anything it
    /// signed; it is published until then. `None` while not retired.
    pub drop_after: Option<i64>,
}

/// How long after its retirement a key's access tokens may still be live:
/// the longest access-token lifetime plus leeway plus the time a running
/// service may take to notice the rotation. Private tokens are counted from
/// the `private_tokens` table instead.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub access: i64,
    pub leeway: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        kid: r.get(0)?,
        private_pkcs8: r.get(1)?,
        created_at: r.get(2)?,
        signs_at: r.get(3)?,
        retired_at: r.get(4)?,
        drop_after: r.get(5)?,
    })
}

pub fn insert(
    conn: &Connection,
    kid: &str,
    pkcs8: &[u8],
    created_at: i64,
    signs_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO signing_keys (kid, private_pkcs8, created_at, signs_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![kid, pkcs8, created_at, signs_at])?;
    Ok(())
}

/// Every key, newest first, with its drop time.
pub fn all(conn: &Connection, window: Window) -> Result<Vec<StoredKey>> {
    conn.prepare_cached(
        "SELECT k.kid, k.private_pkcs8, k.created_at, k.signs_at, k.retired_at,
                CASE WHEN k.retired_at IS NULL THEN NULL ELSE max(
                    k.retired_at + ?1,
                    coalesce((SELECT max(p.expires_at) FROM private_tokens p
                              WHERE p.kid = k.kid), 0) + ?2)
                END
         FROM signing_keys k
         ORDER BY k.created_at DESC, k.rowid DESC",
    )?
    .query_map(params![window.access, window.leeway], from_row)?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

/// Keys still published at `now`: every key but retired ones whose tokens
/// have all expired.
pub fn published(conn: &Connection, now: i64, window: Window) -> Result<Vec<StoredKey>> {
    let mut keys = all(conn, window)?;
    keys.retain(|k| k.drop_after.is_none_or(|t| t > now));
    Ok(keys)
}

/// Every key but `keep` stops signing at `at` (or earlier, if it already
/// does): `keep` is the one that signs from then on.
pub fn retire_others(conn: &Connection, keep: &str, at: i64) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE signing_keys SET retired_at = ?2
         WHERE kid <> ?1 AND (retired_at IS NULL OR retired_at > ?2)",
    )?
    .execute(params![keep, at])
    .map_err(Into::into)
}

/// `kid` signs from `at` (or from its own earlier start) with no end.
pub fn sign_from(conn: &Connection, kid: &str, at: i64) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE signing_keys SET signs_at = min(signs_at, ?2), retired_at = NULL
         WHERE kid = ?1",
    )?
    .execute(params![kid, at])
    .map_err(Into::into)
}

/// Deletes one key; returns how many rows went (0 or 1).
pub fn delete(conn: &Connection, kid: &str) -> Result<usize> {
    conn.prepare_cached("DELETE FROM signing_keys WHERE kid = ?1")?
        .execute([kid])
        .map_err(Into::into)
}

/// Deletes retired keys past their drop time; returns how many.
pub fn delete_dropped(conn: &Connection, now: i64, window: Window) -> Result<usize> {
    let mut removed = 0;
    for key in all(conn, window)? {
        if key.drop_after.is_some_and(|t| t <= now) {
            removed += delete(conn, &key.kid)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, test_connection};

    const WINDOW: Window = Window {
        access: 100,
        leeway: 5,
    };

    fn kids(keys: Vec<StoredKey>) -> Vec<String> {
        keys.into_iter().map(|k| k.kid).collect()
    }

    /// The old way to rotate at `at`: a new key signing at once.
    fn rotate_now(conn: &Connection, kid: &str, at: i64) {
        insert(conn, kid, b"k", at, at).unwrap();
        retire_others(conn, kid, at).unwrap();
    }

    #[test]
    fn a_retired_key_is_published_until_its_access_tokens_expire() {
        let conn = test_connection();
        insert(&conn, "old", b"k1", 1, 1).unwrap();
        rotate_now(&conn, "new", 10);
        assert_eq!(kids(published(&conn, 109, WINDOW).unwrap()), ["new", "old"]);
        assert_eq!(kids(published(&conn, 110, WINDOW).unwrap()), ["new"]);
        let all = all(&conn, WINDOW).unwrap();
        assert_eq!((all[0].drop_after, all[1].drop_after), (None, Some(110)));
    }

    #[test]
    fn a_private_token_keeps_its_key_published_until_it_expires() {
        let conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        conn.execute_batch(
            "INSERT INTO private_tokens (id, user_id, name, kid, created_at, expires_at)
             VALUES ('t1', 'u1', 'ci', 'old', 5, 5000);",
        )
        .unwrap();
        insert(&conn, "old", b"k1", 1, 1).unwrap();
        rotate_now(&conn, "new", 10);
        assert_eq!(
            kids(published(&conn, 5004, WINDOW).unwrap()),
            ["new", "old"]
        );
        assert_eq!(delete_dropped(&conn, 5004, WINDOW).unwrap(), 0);
        assert_eq!(kids(published(&conn, 5005, WINDOW).unwrap()), ["new"]);
        assert_eq!(delete_dropped(&conn, 5005, WINDOW).unwrap(), 1);
        assert_eq!(kids(all(&conn, WINDOW).unwrap()), ["new"]);
    }

    #[test]
    fn retiring_never_postpones_an_earlier_retirement() {
        let conn = test_connection();
        insert(&conn, "a", b"k", 0, 0).unwrap();
        insert(&conn, "b", b"k", 10, 310).unwrap();
        retire_others(&conn, "b", 310).unwrap();
        insert(&conn, "c", b"k", 20, 320).unwrap();
        retire_others(&conn, "c", 320).unwrap();
        let keys = all(&conn, WINDOW).unwrap();
        let retired: Vec<Option<i64>> = keys.iter().map(|k| k.retired_at).collect();
        assert_eq!(retired, [None, Some(320), Some(310)]);
        assert_eq!(sign_from(&conn, "b", 30).unwrap(), 1);
        let b = &all(&conn, WINDOW).unwrap()[1];
        assert_eq!((b.signs_at, b.retired_at), (30, None));
        assert_eq!(delete(&conn, "b").unwrap(), 1);
        assert_eq!(delete(&conn, "b").unwrap(), 0);
    }
}
