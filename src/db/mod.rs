//! The SQLite database: opening it with the pragmas latchkey relies on, the
//! connection pool, the schema and its migrations, and the write-transaction
//! helper. One submodule per table, one function per statement.

pub mod audit_events;
pub mod backup;
pub mod device_tokens;
pub mod email_tokens;
pub mod images;
pub mod mfa_tokens;
pub mod outbox;
pub mod private_tokens;
pub mod recovery_codes;
pub mod refresh_tokens;
pub mod reset_requests;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod token_uses;
pub mod totp_factors;
pub mod users;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Transaction, TransactionBehavior};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// A database connection, for code above `db` that passes one along.
pub use rusqlite::Connection;
/// A database failure: SQLite's or the pool's. Always an internal error for
/// the layers above, which see this type and never rusqlite's or r2d2's.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Pool(r2d2::Error),
}

/// What every statement function returns (`E` defaults to [`Error`]).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "{e}"),
            Error::Pool(e) => write!(f, "pool: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::Pool(e)
    }
}

const SCHEMA: &str = include_str!("../../schema.sql");

/// The `PRAGMA user_version` that `schema.sql` describes.
pub const SCHEMA_VERSION: i64 = 6;

/// Numbered migrations: `MIGRATIONS[i]` upgrades version `i + 1` to `i + 2`.
/// Each leaves the database as `schema.sql` would make it (a test checks).
const MIGRATIONS: &[&str] = &[
    // 1 → 2: a key signs from `signs_at`, so a new key can be published
    // before it signs. Existing keys signed from their creation. (A rebuild,
    // since ADD COLUMN cannot add a NOT NULL column without a default.)
    "CREATE TABLE signing_keys_v2 (
         kid           TEXT PRIMARY KEY,
         private_pkcs8 BLOB NOT NULL,
         created_at    INTEGER NOT NULL,
         signs_at      INTEGER NOT NULL,
         retired_at    INTEGER
     ) STRICT;
     INSERT INTO signing_keys_v2 (kid, private_pkcs8, created_at, signs_at, retired_at)
         SELECT kid, private_pkcs8, created_at, created_at, retired_at
         FROM signing_keys ORDER BY rowid;
     DROP TABLE signing_keys;
     ALTER TABLE signing_keys_v2 RENAME TO signing_keys;",
    // 2 → 3: device tokens, a session's `amr`; emails re-keyed (see `rekey_emails`).
    "CREATE TABLE device_tokens (
         token_hash BLOB PRIMARY KEY,
         user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
         created_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX device_tokens_by_user ON device_tokens (user_id);
     CREATE INDEX device_tokens_by_expiry ON device_tokens (expires_at);
     ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';",
    // 3 → 4: the audit log.
    include_str!("migrations/4_audit_events.sql"),
    // 4 → 5: mail — the outbox, link tokens, reset requests, and the users'
    // address state.
    include_str!("migrations/5_mail.sql"),
    // 5 → 6: the second factor (TOTP, recovery codes, the login's MFA step).
    include_str!("migrations/6_second_factor.sql"),
];

/// The version whose migration changed the email key to NFKC + case fold;
/// SQL can't compute that, so `migrate` re-keys in Rust after the SQL step.
const EMAIL_KEY_VERSION: i64 = 3;

/// Why the database could not be used.
#[derive(Debug)]
pub enum OpenError {
    Io(std::io::Error),
    Sqlite(rusqlite::Error),
    Pool(r2d2::Error),
    TooNew(i64),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Sqlite(e) => write!(f, "{e}"),
            OpenError::Pool(e) => write!(f, "{e}"),
            OpenError::TooNew(v) => write!(
                f,
                "the database has schema version {v}, newer than this latchkey understands ({SCHEMA_VERSION}); upgrade latchkey"
            ),
        }
    }
}

impl From<Error> for OpenError {
    fn from(e: Error) -> Self {
        match e {
            Error::Sqlite(e) => OpenError::Sqlite(e),
            Error::Pool(e) => OpenError::Pool(e),
        }
    }
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Sqlite(e)
    }
}

/// Creates the file readable by its owner only (it holds password hashes and
/// the private signing keys), then opens a pool of `size` connections.
pub fn open(path: &Path, size: u32) -> Result<Pool, OpenError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(OpenError::Io)?;
    let manager = SqliteConnectionManager::file(path).with_init(configure);
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        // The pool is sized to the workers, so a checkout waits only when
        // a step-aside worker holds a connection; don't wait forever.
        .connection_timeout(Duration::from_secs(10))
        .test_on_check_out(false)
        .build(manager)
        .map_err(OpenError::Pool)
}

/// Pragmas for every connection. WAL lets readers run beside the one writer;
/// `synchronous=FULL` makes an answered signup or logout survive power loss.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
}

/// Brings the schema to `SCHEMA_VERSION` in one transaction; refuses a newer one.
pub fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => tx.execute_batch(SCHEMA)?,
        v if v > SCHEMA_VERSION => return Err(OpenError::TooNew(v)),
        v => {
            for step in &MIGRATIONS[(v - 1) as usize..] {
                tx.execute_batch(step)?;
            }
            if v < EMAIL_KEY_VERSION {
                users::rekey_emails(&tx, crate::domain::validate::email_key)?;
            }
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction (taking the write lock up front,
/// so two writers never deadlock upgrading from read locks): commit on `Ok`,
/// roll back on `Err`. Nothing slow (hashing) belongs inside.
pub fn write<T, E>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<Error>,
{
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::from)?;
    let value = f(&tx)?;
    tx.commit().map_err(Error::from)?;
    Ok(value)
}

/// A query that succeeds when the database answers (the health check).
pub fn ping(conn: &Connection) -> Result<()> {
    conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// Whether `e` is a UNIQUE constraint violation.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// A user row with just the required columns, for unit tests of other tables.
#[cfg(test)]
pub fn add_test_user(conn: &Connection, id: &str, email: &str) {
    conn.execute(
        "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
         VALUES (?1, ?2, ?2, 'h', 'Test User', 0, 0)",
        [id, email],
    )
    .unwrap();
}

/// An in-memory database with the schema, for unit tests of `db::*`.
#[cfg(test)]
pub fn test_connection() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    configure(&mut conn).unwrap();
    migrate(&mut conn).unwrap();
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_is_idempotent_and_sets_the_version() {
        let mut conn = test_connection();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    /// Tables, columns, indexes and STRICT-ness of a database.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let tables: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, type, strict FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (table, kind, strict) in tables {
            out.push(format!("{kind} {table} strict={strict}"));
            let columns = conn
                .prepare("SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
                .unwrap()
                .query_map([&table], |r| {
                    Ok(format!(
                        "  {} {} {} {} {:?} {}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            out.extend(columns);
        }
        let indexes = conn
            .prepare(
                "SELECT tbl_name, name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| {
                Ok(format!(
                    "index {} {} {:?}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        out.extend(indexes);
        out
    }

    #[test]
    fn a_migrated_database_equals_a_fresh_one() {
        let fresh = test_connection();
        let mut old = Connection::open_in_memory().unwrap();
        configure(&mut old).unwrap();
        old.execute_batch(include_str!("schema_v1.sql")).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO signing_keys (kid, private_pkcs8, created_at, retired_at)
             VALUES ('old', x'00', 1, 10), ('new', x'01', 10, NULL);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        assert_eq!(shape(&old), shape(&fresh));
        let keys: Vec<(String, i64, Option<i64>)> = old
            .prepare("SELECT kid, signs_at, retired_at FROM signing_keys ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            keys,
            [
                ("old".to_string(), 1, Some(10)),
                ("new".to_string(), 10, None)
            ]
        );
    }

    #[test]
    fn migration_3_rekeys_emails_and_gives_sessions_amr() {
        let mut old = Connection::open_in_memory().unwrap();
        configure(&mut old).unwrap();
        old.execute_batch(include_str!("schema_v1.sql")).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
             VALUES ('u1', 'Ａlice@Example.com', 'ａlice@example.com', 'h', 'Al', 0, 0),
                    ('u2', 'alice@example.com', 'alice@example.com', 'h', 'Al', 0, 0),
                    ('u3', 'STRASSE@x.io', 'strasse@x.io', 'h', 'St', 0, 0);
             INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
             VALUES ('s1', 'u3', 0, 0, 9);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        assert_eq!(shape(&old), shape(&test_connection()));
        let key = |id: &str| -> String {
            old.query_row("SELECT email_key FROM users WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!(key("u3"), "strasse@x.io");
        // Two accounts that only the new key joins: one is re-keyed, the
        // other keeps its old key (both still work; neither is lost).
        let mut keys = [key("u1"), key("u2")];
        keys.sort();
        assert_eq!(keys, ["alice@example.com", "ａlice@example.com"]);
        let amr: String = old
            .query_row("SELECT amr FROM sessions WHERE id = 's1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(amr, "pwd");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = test_connection();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(OpenError::TooNew(_))));
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let conn = test_connection();
        let err = conn
            .execute(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
                 VALUES ('s', 'nobody', 0, 0, 0)",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    }
}
