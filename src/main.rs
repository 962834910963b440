//! latchkey: a self-hosted authentication service in one binary and one
//! SQLite file. This file parses the command line, dispatches to a command
//! and maps the outcome to an exit status: 0 done, 1 failed, 2 bad usage.

#![forbid(unsafe_code)]

mod app;
mod auth;
mod cli;
mod clock;
mod config;
mod db;
mod error;
mod handlers;
mod http;
mod http1;
mod ids;
mod jwt;
mod keys;
mod password;
mod router;
mod server;
mod tokens;
mod validate;
mod workers;

use cli::Command;
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
        Command::Migrate(raw) => admin_migrate(&config::db_path(&raw)),
        Command::KeysList(raw) | Command::KeysRotate(raw) => {
            let _ = raw;
            Err("the keys commands are not available yet".to_string())
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

/// `latchkey migrate`: create or upgrade the schema and the first key.
fn admin_migrate(path: &std::path::Path) -> Result<(), String> {
    let pool = db::open(path, 1).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    db::migrate(&mut conn).map_err(|e| e.to_string())?;
    app::load_key_ring(&mut conn).map_err(|e| e.to_string())?;
    println!("{}: schema version {}", path.display(), db::SCHEMA_VERSION);
    Ok(())
}
