//! Online copies of the database: SQLite's backup API in small steps, and
//! the check a copy passes before it is put in place.

use crate::db::Result;
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};
use std::path::Path;

/// Pages copied per step: each step holds a read lock only briefly.
const PAGES_PER_STEP: std::os::raw::c_int = 256;

/// The tables whose row counts a backup reports.
const TABLES: [&str; 6] = [
    "users",
    "sessions",
    "refresh_tokens",
    "private_tokens",
    "images",
    "signing_keys",
];

/// Copies `source` into a new database file at `target`.
pub fn copy_online(source: &Connection, target: &Path) -> Result<()> {
    let mut target = Connection::open(target)?;
    let backup = Backup::new(source, &mut target)?;
    // A write by another connection restarts a stepwise backup. After a few
    // restarts, copy the rest in one step: in WAL mode that read transaction
    // still blocks no writer, so a busy service cannot starve the backup.
    let (mut restarts, mut left) = (0, i32::MAX);
    loop {
        let pages = if restarts < 3 { PAGES_PER_STEP } else { -1 };
        if backup.step(pages)? == StepResult::Done {
            return Ok(());
        }
        let remaining = backup.progress().remaining;
        if remaining > left {
            restarts += 1;
        }
        left = remaining;
    }
}

/// What `check` found in a copy.
pub enum Checked {
    /// `PRAGMA integrity_check` passed; the row count of each table.
    Sound(Vec<(&'static str, i64)>),
    /// What `PRAGMA integrity_check` reported.
    Corrupt(String),
}

/// `PRAGMA integrity_check` on the file at `path`, and its row counts.
pub fn check(path: &Path) -> Result<Checked> {
    let conn = Connection::open(path)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Ok(Checked::Corrupt(verdict));
    }
    let counts = TABLES
        .into_iter()
        .map(|table| {
            // The table name is one of the constants above, never input.
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .map(|n| (table, n))
        })
        .collect::<rusqlite::Result<_>>()?;
    Ok(Checked::Sound(counts))
}
