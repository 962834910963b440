//! latchkey: a self-hosted authentication service in one binary and one
//! SQLite file. This file parses the command line, dispatches to a command
//! and maps the outcome to an exit status: 0 done, 1 failed, 2 bad usage.

#![forbid(unsafe_code)]

mod app;
mod cli;
mod clock;
mod config;
mod db;
mod domain;
mod error;
mod ops;
mod transport;
mod web;

use cli::Command;
use ops::{admin, server};
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
    let outcome = match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        Command::Version => {
            println!("latchkey {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve(raw) => match config::Config::from_raw(&raw) {
            Ok(config) => server::run(config),
            Err(e) => {
                eprintln!("latchkey: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Migrate(raw) => admin::migrate(&config::db_path(&raw)),
        Command::KeysList(raw) => admin::keys_list(&config::db_path(&raw)),
        Command::KeysRotate(raw) => admin::keys_rotate(&config::db_path(&raw)),
        Command::UsersList { raw, json } => admin::users_list(&config::db_path(&raw), json),
        Command::UsersDelete { raw, email } => admin::users_delete(&config::db_path(&raw), &email),
        Command::UsersSetPassword { raw, email } => {
            admin::users_set_password(&config::db_path(&raw), &email)
        }
        Command::UsersMfaOff { raw, email } => admin::users_mfa_off(&config::db_path(&raw), &email),
        Command::Cleanup(raw) => admin::cleanup(&config::db_path(&raw)),
        Command::Backup { raw, dest } => admin::backup(&config::db_path(&raw), Path::new(&dest)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e}");
            ExitCode::from(1)
        }
    }
}
