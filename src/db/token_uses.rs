//! Last-use times of sessions and private tokens, gathered in memory by
//! `domain::token_use` and written here in one short transaction.

use crate::db::{self, Connection, Result, private_tokens, sessions};

/// Writes `(id, at)` uses of sessions and private tokens; returns how many.
pub fn write(
    conn: &mut Connection,
    sessions: &[(&str, i64)],
    private_tokens: &[(&str, i64)],
) -> Result<usize> {
    db::write(conn, |tx| {
        for (id, at) in sessions {
            sessions::touch(tx, id, *at)?;
        }
        for (id, at) in private_tokens {
            private_tokens::touch(tx, id, *at)?;
        }
        Ok(sessions.len() + private_tokens.len())
    })
}
