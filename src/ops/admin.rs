//! The operator's subcommands. Each opens the database itself and works
//! while a service is running on the same file (SQLite's WAL and busy
//! timeout let them share it).

use crate::clock;
use crate::db::{self, Pool, sessions, signing_keys, users};
use crate::domain::password::Hasher;
use crate::domain::validate;
use crate::domain::{key_ring, mfa};
use crate::ops::cleanup;
use std::path::Path;

fn open(path: &Path) -> Result<Pool, String> {
    let pool = db::open(path, 1).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    db::migrate(&mut conn).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(pool)
}

/// `latchkey migrate`: create or upgrade the schema and the first key.
pub fn migrate(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let window = key_ring::recorded_window(&conn).map_err(|e| e.to_string())?;
    key_ring::load(&mut conn, window).map_err(|e| e.to_string())?;
    println!("{}: schema version {}", path.display(), db::SCHEMA_VERSION);
    Ok(())
}

/// `latchkey keys list`: every key, newest first, with its state.
pub fn keys_list(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let conn = pool.get().map_err(|e| e.to_string())?;
    let window = key_ring::recorded_window(&conn).map_err(|e| e.to_string())?;
    let keys = signing_keys::all(&conn, window).map_err(|e| e.to_string())?;
    let now = clock::now();
    println!(
        "{:<44}  {:<20}  {:<8}  DROPPED AFTER",
        "KID", "CREATED", "STATE"
    );
    for key in keys {
        let state = match key.drop_after {
            None => "active",
            Some(t) if t > now => "retiring",
            Some(_) => "dropped",
        };
        let drop = key
            .drop_after
            .map_or_else(|| "-".to_string(), clock::rfc3339);
        println!(
            "{:<44}  {:<20}  {state:<8}  {drop}",
            key.kid,
            clock::rfc3339(key.created_at)
        );
    }
    Ok(())
}

/// `latchkey keys rotate`: a new active key; the old one retires and stays
/// published until nothing it signed is alive. A running service picks the
/// new key up within `key_ring::RELOAD_SECONDS`.
pub fn keys_rotate(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let window = key_ring::recorded_window(&conn).map_err(|e| e.to_string())?;
    key_ring::load(&mut conn, window).map_err(|e| e.to_string())?;
    let kid = key_ring::rotate(&mut conn, None).map_err(|e| e.to_string())?;
    println!("new signing key {}", kid.unwrap_or_default());
    Ok(())
}

#[derive(serde::Serialize)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    created_at: String,
}

/// `latchkey users list [--json]`: a readable table, or one JSON array.
pub fn users_list(path: &Path, json: bool) -> Result<(), String> {
    let pool = open(path)?;
    let conn = pool.get().map_err(|e| e.to_string())?;
    let rows: Vec<UserRow> = users::list(&conn)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            email: u.email,
            name: u.name,
            created_at: clock::rfc3339(u.created_at),
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("{:<36}  {:<20}  {:<32}  NAME", "ID", "CREATED", "EMAIL");
    for u in &rows {
        println!(
            "{:<36}  {:<20}  {:<32}  {}",
            u.id, u.created_at, u.email, u.name
        );
    }
    println!("{} user(s)", rows.len());
    Ok(())
}

fn find_user(conn: &rusqlite::Connection, email: &str) -> Result<users::User, String> {
    let key = validate::email(email)
        .map_err(|problem| format!("EMAIL {problem}"))?
        .key;
    users::find_by_email_key(conn, &key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user with email {email}"))
}

/// `latchkey users delete EMAIL`: the user and everything they own.
pub fn users_delete(path: &Path, email: &str) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let user = find_user(&conn, email)?;
    db::write(&mut conn, |tx| users::delete(tx, &user.id)).map_err(|e| e.to_string())?;
    println!("deleted {} ({})", user.email, user.id);
    Ok(())
}

/// `latchkey users set-password EMAIL`: the new password is the first line
/// of standard input (so it never appears in `ps` or shell history); the
/// same rules as sign-up apply, and the user's sessions end.
pub fn users_set_password(path: &Path, email: &str) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let user = find_user(&conn, email)?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    validate::new_password(password).map_err(|problem| format!("the password {problem}"))?;
    let hash = Hasher::new(1, 0)
        .hash(password)
        .map_err(|_| "the hasher is busy".to_string())?;
    let ended = db::write(&mut conn, |tx| {
        users::update_password_hash(tx, &user.id, &hash)?;
        users::touch(tx, &user.id, clock::now())?;
        sessions::delete_all_of_user(tx, &user.id)
    })
    .map_err(|e| e.to_string())?;
    println!("password set for {}; {ended} session(s) ended", user.email);
    Ok(())
}

/// `latchkey users mfa-off EMAIL`: an operator's answer to a user who lost
/// both their authenticator and their recovery codes (after checking who
/// they are by other means). The factor, its recovery codes and any pending
/// second login step go; the password stays.
pub fn users_mfa_off(path: &Path, email: &str) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let user = find_user(&conn, email)?;
    let was_on =
        db::write(&mut conn, |tx| mfa::turn_off(tx, &user.id)).map_err(|e| e.to_string())?;
    if was_on {
        println!("second factor turned off for {}", user.email);
    } else {
        println!("{} had no second factor", user.email);
    }
    Ok(())
}

/// `latchkey cleanup`: one sweep, printing what it removed.
pub fn cleanup(path: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let window = key_ring::recorded_window(&conn).map_err(|e| e.to_string())?;
    let removed =
        cleanup::sweep(&mut conn, clock::now(), window, &|| false).map_err(|e| e.to_string())?;
    for (table, rows) in removed.by_table() {
        println!("{table}: {rows} removed");
    }
    Ok(())
}

/// `latchkey backup DEST`: SQLite's online backup in small steps (a writer
/// is never blocked for the whole copy), checked with `integrity_check`,
/// written to a temporary name, synced and renamed into place.
pub fn backup(path: &Path, dest: &Path) -> Result<(), String> {
    let pool = open(path)?;
    let source = pool.get().map_err(|e| e.to_string())?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or("DEST must name a file")?
        .to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let copied = copy_online(&source, &temp).and_then(|()| check(&temp));
    let counts = match copied {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&temp, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())?;
    let size = std::fs::metadata(dest).map_err(|e| e.to_string())?.len();
    println!("backup {}: {size} bytes, integrity ok", dest.display());
    for (table, rows) in counts {
        println!("  {table}: {rows} rows");
    }
    Ok(())
}

/// Pages copied per step: each step holds a read lock only briefly.
const BACKUP_PAGES_PER_STEP: std::os::raw::c_int = 256;

fn copy_online(source: &rusqlite::Connection, temp: &Path) -> Result<(), String> {
    use rusqlite::backup::{Backup, StepResult};
    let mut target = rusqlite::Connection::open(temp).map_err(|e| e.to_string())?;
    let backup = Backup::new(source, &mut target).map_err(|e| e.to_string())?;
    // A write by another connection restarts a stepwise backup. After a few
    // restarts, copy the rest in one step: in WAL mode that read transaction
    // still blocks no writer, so a busy service cannot starve the backup.
    let (mut restarts, mut left) = (0, i32::MAX);
    loop {
        let pages = if restarts < 3 {
            BACKUP_PAGES_PER_STEP
        } else {
            -1
        };
        match backup.step(pages).map_err(|e| e.to_string())? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {}
            _ => {}
        }
        let remaining = backup.progress().remaining;
        if remaining > left {
            restarts += 1;
        }
        left = remaining;
    }
}

/// `PRAGMA integrity_check` on the copy, and its row counts.
fn check(temp: &Path) -> Result<Vec<(&'static str, i64)>, String> {
    let conn = rusqlite::Connection::open(temp).map_err(|e| e.to_string())?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if verdict != "ok" {
        return Err(format!("the copy failed its integrity check: {verdict}"));
    }
    [
        "users",
        "sessions",
        "refresh_tokens",
        "private_tokens",
        "images",
        "signing_keys",
    ]
    .into_iter()
    .map(|table| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map(|n| (table, n))
            .map_err(|e| e.to_string())
    })
    .collect()
}
