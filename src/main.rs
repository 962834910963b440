//! latchkey: a self-hosted authentication service in one binary and one
//! SQLite file. This file parses the command line, dispatches to a command
//! and maps the outcome to an exit status: 0 done, 1 failed, 2 bad usage.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod app;
mod cli;
mod clock;
mod config;
mod db;
mod domain;
mod error;
mod locks;
mod mail;
mod ops;
mod transport;
mod web;

use cli::{Command, Raw, UsageError};
use ops::error::OpsError;
use ops::{admin, audit, server};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let env = |name: &str| std::env::var(name).ok();
    let command = match cli::parse(std::env::args_os().skip(1).collect(), &env) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("latchkey: {e} (see latchkey --help)");
            return ExitCode::from(2);
        }
    };
    // Outer `Err`: a bad value (exit 2); inner: the command failed (exit 1).
    let outcome: Result<Result<(), OpsError>, UsageError> = match command {
        Command::Help => {
            print!("{}", cli::usage());
            Ok(Ok(()))
        }
        Command::Version => {
            println!("latchkey {}", env!("CARGO_PKG_VERSION"));
            Ok(Ok(()))
        }
        Command::Serve(raw) => config::Config::from_raw(&raw).map(server::run),
        Command::Migrate(raw) => with_db(&raw, admin::migrate),
        Command::KeysList(raw) => with_db(&raw, admin::keys_list),
        Command::KeysRotate { raw, now } => with_db(&raw, |db| admin::keys_rotate(db, now)),
        Command::KeysRevoke { raw, kid } => with_db(&raw, |db| admin::keys_revoke(db, &kid)),
        Command::UsersList { raw, json } => with_db(&raw, |db| admin::users_list(db, json)),
        Command::UsersDelete { raw, email } => with_db(&raw, |db| admin::users_delete(db, &email)),
        Command::UsersSetPassword { raw, email } => {
            with_db(&raw, |db| admin::users_set_password(db, &email))
        }
        Command::UsersMfaOff { raw, email } => with_db(&raw, |db| admin::users_mfa_off(db, &email)),
        Command::Audit {
            raw,
            user,
            since,
            json,
        } => config::since(since.as_deref())
            .and_then(|since| with_db(&raw, |db| audit::print(db, user.as_deref(), since, json))),
        Command::Cleanup(raw) => config::audit_retention(&raw)
            .and_then(|retention| with_db(&raw, |db| admin::cleanup(db, retention))),
        Command::Backup { raw, dest } => with_db(&raw, |db| admin::backup(db, Path::new(&dest))),
        Command::MailTest { raw, to } => {
            config::mail_settings(&raw).map(|settings| admin::mail_test(&settings, &to))
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs a subcommand on the database that `--db` names.
fn with_db(
    raw: &Raw,
    command: impl FnOnce(&Path) -> Result<(), OpsError>,
) -> Result<Result<(), OpsError>, UsageError> {
    config::db_path(raw).map(|db| command(&db))
}
