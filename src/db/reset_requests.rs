//! The `reset_requests` table: forgotten-password requests waiting for the
//! sender thread (see `domain::email::forgot`).

use crate::db::Result;
use rusqlite::{Connection, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub id: String,
    pub email_key: String,
    pub address: Option<String>,
    pub device: Option<String>,
    pub requested_at: i64,
}

pub fn insert(conn: &Connection, r: &ResetRequest) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO reset_requests (id, email_key, address, device, requested_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        r.id,
        r.email_key,
        r.address,
        r.device,
        r.requested_at
    ])?;
    Ok(())
}

/// The oldest `limit` requests.
pub fn oldest(conn: &Connection, limit: i64) -> Result<Vec<ResetRequest>> {
    conn.prepare_cached(
        "SELECT id, email_key, address, device, requested_at FROM reset_requests
         ORDER BY requested_at, rowid LIMIT ?1",
    )?
    .query_map([limit], |r| {
        Ok(ResetRequest {
            id: r.get(0)?,
            email_key: r.get(1)?,
            address: r.get(2)?,
            device: r.get(3)?,
            requested_at: r.get(4)?,
        })
    })?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM reset_requests WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
