//! When sessions and private tokens were last used. Uses are gathered in
//! memory and written in one short transaction per flush (every
//! `FLUSH_SECONDS`, and at shutdown), so that using a token is never a
//! database write on the request path.

use crate::db::{self, Connection, token_uses};
use crate::locks::Unpoisoned;
use std::collections::HashMap;
use std::sync::Mutex;

/// How often gathered uses are written.
pub const FLUSH_SECONDS: u64 = 60;

/// More distinct ids than this between two flushes are not recorded: the
/// map stays bounded whatever the traffic, and a last-use time is advisory.
const MAX_PENDING: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Session,
    PrivateToken,
}

#[derive(Default)]
pub struct TokenUse {
    pending: Mutex<HashMap<(Kind, String), i64>>,
}

impl TokenUse {
    pub fn record(&self, kind: Kind, id: &str, at: i64) {
        let mut pending = self.pending.lock().unpoisoned();
        if let Some(seen) = pending.get_mut(&(kind, id.to_string())) {
            *seen = (*seen).max(at);
        } else if pending.len() < MAX_PENDING {
            pending.insert((kind, id.to_string()), at);
        }
    }

    /// A use not yet written, so listings show it before the flush.
    pub fn pending(&self, kind: Kind, id: &str) -> Option<i64> {
        let pending = self.pending.lock().unpoisoned();
        pending.get(&(kind, id.to_string())).copied()
    }

    /// Writes what was gathered; returns how many rows it touched. On a
    /// failure the uses are put back for the next flush.
    pub fn flush(&self, conn: &mut Connection) -> db::Result<usize> {
        let taken = std::mem::take(&mut *self.pending.lock().unpoisoned());
        if taken.is_empty() {
            return Ok(0);
        }
        let of = |wanted: Kind| -> Vec<(&str, i64)> {
            taken
                .iter()
                .filter(|((kind, _), _)| *kind == wanted)
                .map(|((_, id), at)| (id.as_str(), *at))
                .collect()
        };
        let written = token_uses::write(conn, &of(Kind::Session), &of(Kind::PrivateToken));
        if written.is_err() {
            for ((kind, id), at) in taken {
                self.record(kind, &id, at);
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, test_connection};

    #[test]
    fn uses_are_kept_in_memory_until_a_flush_writes_them() {
        let mut conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        conn.execute_batch(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
             VALUES ('s1', 'u1', 1, 1, 999);",
        )
        .unwrap();
        let uses = TokenUse::default();
        uses.record(Kind::Session, "s1", 30);
        uses.record(Kind::Session, "s1", 20);
        assert_eq!(uses.pending(Kind::Session, "s1"), Some(30));
        assert_eq!(uses.flush(&mut conn).unwrap(), 1);
        assert_eq!(uses.pending(Kind::Session, "s1"), None);
        let stored: i64 = conn
            .query_row(
                "SELECT last_used_at FROM sessions WHERE id = 's1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 30);
        assert_eq!(uses.flush(&mut conn).unwrap(), 0);
    }
}
