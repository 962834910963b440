//! The `refresh_tokens` table and the refresh state machine. Tokens are
//! stored only as their SHA-256.
//!
//! With rotation, a refresh replaces the presented token by its successor in
//! one transaction. The successor is derived from the presented token by the
//! caller (`Secret::successor`: HMAC-SHA256 under a server secret), so
//! a retry with the immediately previous token can be answered with the very
//! same successor without ever storing a token: the retry proves possession
//! of the previous token, and the stored `successor_hash` proves it is the
//! one that was rotated. The retry is honoured only within the reuse interval
//! and only while that successor is still the session's current token; any
//! other reuse ends the session (RFC 9700 §4.14).

use crate::db::Result;
use crate::domain::ids::Secret;
use rusqlite::{Connection, OptionalExtension, params};

pub fn insert(
    conn: &Connection,
    hash: &[u8; 32],
    session_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&hash[..], session_id, now, expires_at])?;
    Ok(())
}

/// A stored refresh token joined with its session.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub session_id: String,
    pub user_id: String,
    /// The session's `amr` (see `sessions`).
    pub amr: String,
    pub expires_at: i64,
    pub replaced_at: Option<i64>,
    pub successor_hash: Option<Vec<u8>>,
}

pub fn find(conn: &Connection, hash: &[u8; 32]) -> Result<Option<RefreshToken>> {
    conn.prepare_cached(
        "SELECT r.session_id, s.user_id, s.amr, r.expires_at, r.replaced_at, r.successor_hash
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
         WHERE r.token_hash = ?1",
    )?
    .query_row([&hash[..]], |r| {
        Ok(RefreshToken {
            session_id: r.get(0)?,
            user_id: r.get(1)?,
            amr: r.get(2)?,
            expires_at: r.get(3)?,
            replaced_at: r.get(4)?,
            successor_hash: r.get(5)?,
        })
    })
    .optional()
    .map_err(Into::into)
}

/// What a refresh with a presented token comes to.
#[derive(Debug, PartialEq)]
pub enum Refreshed {
    /// Non-rotating mode: the token stays as it is.
    Kept {
        session_id: String,
        user_id: String,
        amr: String,
    },
    /// Rotating mode: use `successor` from now on (the same one on a retry).
    Rotated {
        session_id: String,
        user_id: String,
        amr: String,
        successor: Secret,
    },
    /// Unknown, expired, or replaced (in non-rotating mode).
    Refused,
    /// A replaced token came back outside the retry rule: the session ended.
    ReuseDetected { session_id: String, user_id: String },
}

/// The rules of a refresh, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub rotate: bool,
    pub reuse_interval: i64,
    pub refresh_ttl: i64,
}

/// One refresh; `next` is the presented token's successor (see the module
/// doc). Call inside a write transaction (`db::write`), so concurrent
/// refreshes with one token are serialised and all see the same successor.
pub fn refresh(
    conn: &Connection,
    presented: &Secret,
    next: &Secret,
    policy: Policy,
    now: i64,
) -> Result<Refreshed> {
    let Some(token) = find(conn, &presented.hash())? else {
        return Ok(Refreshed::Refused);
    };
    let RefreshToken {
        session_id,
        user_id,
        amr,
        ..
    } = token.clone();
    match token.replaced_at {
        None if token.expires_at <= now => Ok(Refreshed::Refused),
        None if !policy.rotate => Ok(Refreshed::Kept {
            session_id,
            user_id,
            amr,
        }),
        None => {
            let expires_at = now + policy.refresh_ttl;
            insert(conn, &next.hash(), &session_id, now, expires_at)?;
            conn.prepare_cached(
                "UPDATE refresh_tokens SET replaced_at = ?2, successor_hash = ?3
                 WHERE token_hash = ?1",
            )?
            .execute(params![&presented.hash()[..], now, &next.hash()[..]])?;
            super::sessions::extend(conn, &session_id, now, expires_at)?;
            Ok(Refreshed::Rotated {
                session_id,
                user_id,
                amr,
                successor: next.clone(),
            })
        }
        Some(_) if !policy.rotate => Ok(Refreshed::Refused),
        Some(replaced_at) => {
            let is_current =
                |hash: &[u8; 32]| -> Result<bool> {
                    Ok(find(conn, hash)?
                        .is_some_and(|t| t.replaced_at.is_none() && t.expires_at > now))
                };
            if now - replaced_at <= policy.reuse_interval
                && token.successor_hash.as_deref() == Some(&next.hash()[..])
                && is_current(&next.hash())?
            {
                return Ok(Refreshed::Rotated {
                    session_id,
                    user_id,
                    amr,
                    successor: next.clone(),
                });
            }
            super::sessions::delete(conn, &session_id)?;
            Ok(Refreshed::ReuseDetected {
                session_id,
                user_id,
            })
        }
    }
}

/// Deletes at most `limit` refresh tokens that expired at or before `before`, for
/// the cleanup sweep's small batches; returns how many went.
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM refresh_tokens WHERE token_hash IN
         (SELECT token_hash FROM refresh_tokens WHERE expires_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![before, limit])
    .map_err(Into::into)
}

/// Live (current, unexpired) refresh tokens of a session.
#[cfg(test)]
pub fn live_count(conn: &Connection, session_id: &str, now: i64) -> Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM refresh_tokens
         WHERE session_id = ?1 AND replaced_at IS NULL AND expires_at > ?2",
    )?
    .query_row(params![session_id, now], |r| r.get(0))
    .map_err(Into::into)
}

#[cfg(test)]
mod tests;
