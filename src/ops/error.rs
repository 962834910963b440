//! `OpsError`: why the service or an operator's subcommand failed. `main`
//! prints it as one line and exits 1. Each variant keeps its cause as a value,
//! so nothing is flattened into a string before it is shown.

use crate::db::{self, OpenError};
use crate::domain::key_ring::KeyRingError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug)]
pub enum OpsError {
    /// The database file could not be opened or brought to this schema.
    Open {
        path: PathBuf,
        error: OpenError,
    },
    Database(db::Error),
    Pool(r2d2::Error),
    Keys(KeyRingError),
    /// The listening socket could not be bound (`--listen`).
    Bind {
        addr: SocketAddr,
        error: io::Error,
    },
    /// A file (the backup's destination, …) could not be written.
    File {
        path: PathBuf,
        error: io::Error,
    },
    /// Signals, standard input, the socket: any other I/O.
    Io(io::Error),
    Json(serde_json::Error),
    /// `users …` named an email no account has.
    NoSuchUser(String),
    /// An argument broke a field rule (`EMAIL must …`, `the password must …`).
    Invalid {
        what: &'static str,
        problem: &'static str,
    },
    /// The password hasher refused work.
    HasherBusy,
    /// `backup DEST` names a directory, not a file.
    NotAFile(PathBuf),
    /// A backup copy failed `PRAGMA integrity_check`.
    Corrupt(String),
    /// `mail-test`: the relay refused the mail (`permanent`) or could not be
    /// reached; the reason never holds credentials.
    Mail {
        to: String,
        permanent: bool,
        reason: String,
    },
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsError::Open { path, error } => write!(f, "{}: {error}", path.display()),
            OpsError::Database(e) => write!(f, "database: {e}"),
            OpsError::Pool(e) => write!(f, "database: {e}"),
            OpsError::Keys(e) => write!(f, "{e}"),
            OpsError::Bind { addr, error } => write!(f, "--listen {addr}: {error}"),
            OpsError::File { path, error } => write!(f, "{}: {error}", path.display()),
            OpsError::Io(e) => write!(f, "{e}"),
            OpsError::Json(e) => write!(f, "{e}"),
            OpsError::NoSuchUser(email) => write!(f, "no user with email {email}"),
            OpsError::Invalid { what, problem } => write!(f, "{what} {problem}"),
            OpsError::HasherBusy => f.write_str("the hasher is busy"),
            OpsError::NotAFile(path) => write!(f, "{}: DEST must name a file", path.display()),
            OpsError::Corrupt(verdict) => {
                write!(f, "the copy failed its integrity check: {verdict}")
            }
            OpsError::Mail {
                to,
                permanent,
                reason,
            } => {
                let outcome = if *permanent { "refused" } else { "failed" };
                write!(f, "mail to {to} {outcome}: {reason}")
            }
        }
    }
}

impl std::error::Error for OpsError {}

impl From<db::Error> for OpsError {
    fn from(e: db::Error) -> Self {
        OpsError::Database(e)
    }
}

impl From<r2d2::Error> for OpsError {
    fn from(e: r2d2::Error) -> Self {
        OpsError::Pool(e)
    }
}

impl From<KeyRingError> for OpsError {
    fn from(e: KeyRingError) -> Self {
        OpsError::Keys(e)
    }
}

impl From<io::Error> for OpsError {
    fn from(e: io::Error) -> Self {
        OpsError::Io(e)
    }
}

impl From<serde_json::Error> for OpsError {
    fn from(e: serde_json::Error) -> Self {
        OpsError::Json(e)
    }
}
