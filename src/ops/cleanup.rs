//! Deleting what has expired: refresh tokens and sessions, device tokens,
//! private tokens, the second steps of logins, mailed-link tokens, failed
//! mails kept for the operator, audit events past `--audit-retention`, and
//! signing keys past their retirement. Each batch is its own short
//! transaction, with a pause between batches so a request waiting to write
//! gets the lock; a sweep of a million rows never holds it for long.

use crate::db::{
    self, Connection, audit_events, device_tokens, email_tokens, mfa_tokens, outbox,
    private_tokens, refresh_tokens, sessions, signing_keys,
};
use crate::domain::tokens::MAX_LEEWAY;
use std::time::{Duration, Instant};

/// Rows per transaction: a few milliseconds of work.
const BATCH: i64 = 500;

/// The shortest rest between batches, for other writers (SQLite's busy
/// handler retries after 1, 2, 5 … ms, so a waiting request gets in).
const PAUSE: Duration = Duration::from_millis(10);

/// A mail the sender gave up on stays in the outbox this long (without its
/// body), so an operator can see what failed and why.
pub const FAILED_MAIL_RETENTION: i64 = 30 * 86_400;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub sessions: usize,
    pub refresh_tokens: usize,
    pub private_tokens: usize,
    pub device_tokens: usize,
    pub signing_keys: usize,
    pub mfa_tokens: usize,
    pub audit_events: usize,
    pub email_tokens: usize,
    pub outbox: usize,
}

impl Removed {
    pub fn by_table(&self) -> [(&'static str, usize); 9] {
        [
            ("sessions", self.sessions),
            ("refresh_tokens", self.refresh_tokens),
            ("private_tokens", self.private_tokens),
            ("device_tokens", self.device_tokens),
            ("signing_keys", self.signing_keys),
            ("mfa_tokens", self.mfa_tokens),
            ("audit_events", self.audit_events),
            ("email_tokens", self.email_tokens),
            ("outbox", self.outbox),
        ]
    }
}

/// What a sweep keeps: the key window, and audit events younger than
/// `audit_retention` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub window: signing_keys::Window,
    pub audit_retention: i64,
}

/// One sweep at `now`. `stop` is asked between batches; a stopped sweep
/// returns what it removed so far.
pub fn sweep(
    conn: &mut Connection,
    now: i64,
    keep: Keep,
    stop: &dyn Fn() -> bool,
) -> Result<Removed, db::Error> {
    // Deleting expired rows needs no durability: after a power loss they are
    // just deleted again. Without an fsync per batch, each batch holds the
    // write lock for less time, so requests that write wait less.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let removed = sweep_batches(conn, now, keep, stop);
    conn.pragma_update(None, "synchronous", "FULL")?;
    removed
}

fn sweep_batches(
    conn: &mut Connection,
    now: i64,
    keep: Keep,
    stop: &dyn Fn() -> bool,
) -> Result<Removed, db::Error> {
    let mut removed = Removed {
        refresh_tokens: in_batches(conn, refresh_tokens::delete_expired, now, stop)?,
        sessions: in_batches(conn, sessions::delete_expired, now, stop)?,
        // Kept past `exp` for the longest leeway, so a token is never
        // refused as revoked while it would still verify.
        private_tokens: in_batches(
            conn,
            private_tokens::delete_expired,
            now.saturating_sub_unsigned(MAX_LEEWAY),
            stop,
        )?,
        audit_events: in_batches(
            conn,
            audit_events::delete_expired,
            now.saturating_sub(keep.audit_retention),
            stop,
        )?,
        device_tokens: in_batches(conn, device_tokens::delete_expired, now, stop)?,
        signing_keys: 0,
        mfa_tokens: in_batches(conn, mfa_tokens::delete_expired, now, stop)?,
        email_tokens: in_batches(conn, email_tokens::delete_expired, now, stop)?,
        outbox: in_batches(
            conn,
            outbox::delete_failed,
            now - FAILED_MAIL_RETENTION,
            stop,
        )?,
    };
    if stop() {
        return Ok(removed);
    }
    removed.signing_keys = db::write(conn, |tx| {
        signing_keys::delete_dropped(tx, now, keep.window)
    })?;
    Ok(removed)
}

/// One `db::*::delete_expired` statement: (connection, before, limit) → rows.
type Batch = fn(&Connection, i64, i64) -> Result<usize, db::Error>;

/// Runs a batch deletion until it removes less than a batch.
fn in_batches(
    conn: &mut Connection,
    delete: Batch,
    before: i64,
    stop: &dyn Fn() -> bool,
) -> Result<usize, db::Error> {
    let mut total = 0;
    while !stop() {
        let started = Instant::now();
        let n = db::write(conn, |tx| delete(tx, before, BATCH))?;
        total += n;
        if i64::try_from(n).is_ok_and(|n| n < BATCH) {
            break;
        }
        // Rest at least as long as the batch worked: on a small machine the
        // sweep then takes at most half a core from the requests.
        std::thread::sleep(started.elapsed().max(PAUSE));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, test_connection};

    #[test]
    fn expired_rows_go_and_live_ones_stay() {
        let mut conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        device_tokens::insert(&conn, &[1; 32], "u1", 0, 50).unwrap();
        device_tokens::insert(&conn, &[2; 32], "u1", 0, 5000).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
             VALUES ('old', 'u1', 0, 0, 50), ('live', 'u1', 0, 0, 5000);
             INSERT INTO private_tokens (id, user_id, name, kid, created_at, expires_at)
             VALUES ('p-old', 'u1', 'a', 'k', 0, 10), ('p-grace', 'u1', 'b', 'k', 0, 90),
                    ('p-live', 'u1', 'c', 'k', 0, 9000);
             INSERT INTO audit_events (id, at, event, outcome)
             VALUES ('a-old', 40, 'logout', 'success'), ('a-live', 41, 'logout', 'success');
             INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at)
             VALUES (x'01', 'u1', 'reset', 'a@x.io', 0, 99), (x'02', 'u1', 'verify', 'a@x.io', 0, 101);
             INSERT INTO mfa_tokens (token_hash, user_id, created_at, expires_at)
             VALUES (X'01', 'u1', 0, 100), (X'02', 'u1', 0, 101);",
        )
        .unwrap();
        for i in 0..1200u32 {
            let expires = if i % 2 == 0 { 10 } else { 5000 };
            conn.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
                 VALUES (?1, 'live', 0, ?2)",
                (&i.to_be_bytes()[..], expires),
            )
            .unwrap();
        }
        let keep = Keep {
            window: signing_keys::Window {
                access: 10,
                leeway: 0,
            },
            audit_retention: 60,
        };
        let removed = sweep(&mut conn, 100, keep, &|| false).unwrap();
        assert_eq!(
            removed,
            Removed {
                sessions: 1,
                refresh_tokens: 600,
                private_tokens: 1,
                device_tokens: 1,
                signing_keys: 0,
                mfa_tokens: 1,
                audit_events: 1,
                email_tokens: 1,
                outbox: 0,
            }
        );
        let left: i64 = conn
            .query_row("SELECT count(*) FROM refresh_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 600);
        let audit: String = conn
            .query_row("SELECT id FROM audit_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(audit, "a-live");
        assert_eq!(
            sweep(&mut conn, 100, keep, &|| false).unwrap(),
            Removed::default()
        );
        // The pooled connection goes back with its durability restored.
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2);
    }

    #[test]
    fn a_stopped_sweep_stops() {
        let mut conn = test_connection();
        let keep = Keep {
            window: signing_keys::Window {
                access: 10,
                leeway: 0,
            },
            audit_retention: 60,
        };
        assert_eq!(
            sweep(&mut conn, 100, keep, &|| true).unwrap(),
            Removed::default()
        );
    }
}
