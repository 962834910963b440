//! The `signing_keys` table: Ed25519 key pairs as PKCS#8 documents.

use rusqlite::{Connection, Row, params};

#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub private_pkcs8: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub drop_after: Option<i64>,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        kid: r.get(0)?,
        private_pkcs8: r.get(1)?,
        created_at: r.get(2)?,
        retired_at: r.get(3)?,
        drop_after: r.get(4)?,
    })
}

pub fn insert(conn: &Connection, kid: &str, pkcs8: &[u8], now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO signing_keys (kid, private_pkcs8, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![kid, pkcs8, now])?;
    Ok(())
}

/// Keys still published at `now`: the active ones and retired ones not yet
/// past `drop_after`, newest first.
pub fn published(conn: &Connection, now: i64) -> rusqlite::Result<Vec<StoredKey>> {
    conn.prepare_cached(
        "SELECT kid, private_pkcs8, created_at, retired_at, drop_after FROM signing_keys
         WHERE retired_at IS NULL OR drop_after IS NULL OR drop_after > ?1
         ORDER BY created_at DESC, rowid DESC",
    )?
    .query_map([now], from_row)?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    #[test]
    fn published_keys_exclude_dropped_ones_newest_first() {
        let conn = test_connection();
        insert(&conn, "old", b"k1", 1).unwrap();
        insert(&conn, "mid", b"k2", 2).unwrap();
        insert(&conn, "new", b"k3", 3).unwrap();
        conn.execute_batch(
            "UPDATE signing_keys SET retired_at = 2, drop_after = 10 WHERE kid = 'old';
             UPDATE signing_keys SET retired_at = 3, drop_after = 50 WHERE kid = 'mid';",
        )
        .unwrap();
        let kids: Vec<String> = published(&conn, 20)
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(kids, ["new", "mid"]);
    }
}
