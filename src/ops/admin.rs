//! The operator's subcommands. Each opens the database itself and works
//! while a service is running on the same file (SQLite's WAL and busy
//! timeout let them share it).

use crate::clock;
use crate::db::audit_events::{self, AuditEvent, Filter};
use crate::db::{self, Pool, sessions, settings, signing_keys, users};
use crate::domain::audit::{self, Entry, Event, Origin};
use crate::domain::key_ring;
use crate::domain::password::Hasher;
use crate::domain::validate;
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
    let kid = key_ring::rotate(&mut conn, None)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    // The rotation commits inside `key_ring`; its event follows at once.
    record_admin(
        &mut conn,
        Entry::new(Event::AdminKeyRotated, clock::now(), &Origin::default())
            .detail(serde_json::json!({ "kid": kid })),
    )?;
    println!("new signing key {kid}");
    Ok(())
}

/// Appends an operator's event in a transaction of its own.
fn record_admin(conn: &mut rusqlite::Connection, entry: Entry<'_>) -> Result<(), String> {
    db::write(conn, |tx| audit::record(tx, &entry)).map_err(|e| e.to_string())
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
    db::write(&mut conn, |tx| {
        users::delete(tx, &user.id)?;
        let origin = Origin::default();
        audit::record(
            tx,
            &Entry::new(Event::AdminUserDeleted, clock::now(), &origin).user(&user.id),
        )
    })
    .map_err(|e| e.to_string())?;
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
        let now = clock::now();
        users::update_password_hash(tx, &user.id, &hash)?;
        users::touch(tx, &user.id, now)?;
        let ended = sessions::delete_all_of_user(tx, &user.id)?;
        let origin = Origin::default();
        let entry = Entry::new(Event::AdminPasswordSet, now, &origin)
            .user(&user.id)
            .detail(serde_json::json!({ "sessions_ended": ended }));
        audit::record(tx, &entry)?;
        Ok::<_, rusqlite::Error>(ended)
    })
    .map_err(|e| e.to_string())?;
    println!("password set for {}; {ended} session(s) ended", user.email);
    Ok(())
}

/// `latchkey cleanup`: one sweep, printing what it removed. Audit events
/// are kept for `retention` seconds if given, else as long as the service
/// last started on this database keeps them (else the default).
pub fn cleanup(path: &Path, retention: Option<u64>) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let window = key_ring::recorded_window(&conn).map_err(|e| e.to_string())?;
    let audit_retention = match retention {
        Some(seconds) => seconds as i64,
        None => settings::get_i64(&conn, settings::AUDIT_RETENTION)
            .map_err(|e| e.to_string())?
            .unwrap_or(crate::config::DEFAULT_AUDIT_RETENTION as i64),
    };
    let keep = cleanup::Keep {
        window,
        audit_retention,
    };
    let removed =
        cleanup::sweep(&mut conn, clock::now(), keep, &|| false).map_err(|e| e.to_string())?;
    for (table, rows) in removed.by_table() {
        println!("{table}: {rows} removed");
    }
    Ok(())
}

/// One audit event as `latchkey audit --json` prints it.
#[derive(serde::Serialize)]
struct EventLine {
    id: String,
    at: String,
    event: String,
    outcome: String,
    user_id: Option<String>,
    email: Option<String>,
    /// For a stranger's address: its keyed hash, hex (see `domain::audit`).
    email_hmac: Option<String>,
    session_id: Option<String>,
    token_id: Option<String>,
    address: Option<String>,
    user_agent: Option<String>,
    detail: Option<serde_json::Value>,
}

/// `latchkey audit [--user EMAIL] [--since T] [--json]`: the events, oldest
/// first. `--user` finds the account's events and the failed logins that
/// named the address without an account (by its keyed hash).
pub fn audit(
    path: &Path,
    user: Option<&str>,
    since: Option<i64>,
    json: bool,
) -> Result<(), String> {
    let pool = open(path)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let mut filter = Filter {
        since,
        ..Filter::default()
    };
    if let Some(email) = user {
        let key = audit::email_key(email);
        let secret = db::write(&mut conn, |tx| settings::secret(tx, audit::EMAIL_SECRET))
            .map_err(|e| e.to_string())?;
        filter.email_hmac = Some(audit::email_hmac(&secret, &key).to_vec());
        // An id that matches nothing keeps the filter on this user alone.
        filter.user_id = Some(
            users::find_by_email_key(&conn, &key)
                .map_err(|e| e.to_string())?
                .map_or_else(String::new, |u| u.id),
        );
    }
    let events = audit_events::list(&conn, &filter).map_err(|e| e.to_string())?;
    let mut emails = std::collections::HashMap::new();
    let mut email_of = |id: &str| -> Result<Option<String>, String> {
        if !emails.contains_key(id) {
            let found = users::find(&conn, id).map_err(|e| e.to_string())?;
            emails.insert(id.to_string(), found.map(|u| u.email));
        }
        Ok(emails[id].clone())
    };
    let mut lines = Vec::with_capacity(events.len());
    for e in events {
        let email = match &e.user_id {
            Some(id) => email_of(id)?,
            None => None,
        };
        lines.push(line(e, email));
    }
    if json {
        for l in &lines {
            println!("{}", serde_json::to_string(l).map_err(|e| e.to_string())?);
        }
        return Ok(());
    }
    println!(
        "{:<20}  {:<22}  {:<7}  {:<32}  {:<15}  USER AGENT / DETAIL",
        "AT", "EVENT", "OUTCOME", "USER", "ADDRESS"
    );
    for l in &lines {
        let who = match (&l.email, &l.user_id, &l.email_hmac) {
            (Some(email), _, _) => email.clone(),
            (None, Some(id), _) => id.clone(),
            (None, None, Some(hash)) => format!("unknown email #{}", &hash[..12]),
            (None, None, None) => "-".into(),
        };
        let mut rest = l.user_agent.clone().unwrap_or_default();
        if let Some(detail) = &l.detail {
            rest = format!("{rest} {detail}");
        }
        println!(
            "{:<20}  {:<22}  {:<7}  {:<32}  {:<15}  {}",
            l.at,
            l.event,
            l.outcome,
            printable(&who),
            l.address.as_deref().unwrap_or("-"),
            printable(rest.trim())
        );
    }
    println!("{} event(s)", lines.len());
    Ok(())
}

fn line(e: AuditEvent, email: Option<String>) -> EventLine {
    EventLine {
        at: clock::rfc3339(e.at),
        email_hmac: e
            .email_hmac
            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect()),
        detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
        id: e.id,
        event: e.event,
        outcome: e.outcome,
        user_id: e.user_id,
        email,
        session_id: e.session_id,
        token_id: e.token_id,
        address: e.address,
        user_agent: e.user_agent,
    }
}

/// Text a client chose (a User-Agent) with control characters replaced, so
/// it cannot drive the operator's terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
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
