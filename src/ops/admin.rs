//! The operator's subcommands. Each opens the database itself and works
//! while a service is running on the same file (SQLite's WAL and busy
//! timeout let them share it).

use crate::clock;
use crate::db::{self, Pool, backup, sessions, settings, users};
use crate::domain::accounts::Client;
use crate::domain::audit::{self, Entry, Event};
use crate::domain::key_ring::{self, KeyState};
use crate::domain::password::Hasher;
use crate::domain::validate;
use crate::domain::{email, mfa};
use crate::mail;
use crate::mail::compose::Details;
use crate::ops::cleanup;
use crate::ops::error::OpsError;
use std::path::Path;

pub(crate) fn open(path: &Path) -> Result<Pool, OpsError> {
    let opened = |error| OpsError::Open {
        path: path.to_path_buf(),
        error,
    };
    let pool = db::open(path, 1).map_err(opened)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn).map_err(opened)?;
    Ok(pool)
}

/// `latchkey migrate`: create or upgrade the schema and the first key.
pub fn migrate(path: &Path) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let window = key_ring::recorded(&conn)?.window;
    key_ring::load(&mut conn, window)?;
    println!("{}: schema version {}", path.display(), db::SCHEMA_VERSION);
    Ok(())
}

/// `latchkey keys list`: every key, newest first, with its state (next,
/// signing, retired) and when that changes.
pub fn keys_list(path: &Path) -> Result<(), OpsError> {
    let pool = open(path)?;
    let conn = pool.get()?;
    let now = clock::now();
    println!(
        "{:<44}  {:<20}  {:<8}  {:<20}  THEN",
        "KID", "CREATED", "STATE", "UNTIL"
    );
    for (key, state) in key_ring::list(&conn, now)? {
        let (name, until, then) = match state {
            KeyState::Next { signs_at } => ("next", Some(signs_at), "signing"),
            KeyState::Signing { until } => ("signing", until, "retired"),
            KeyState::Retired { dropped_after } => ("retired", Some(dropped_after), "dropped"),
        };
        let (until, then) = match until {
            Some(t) => (clock::rfc3339(t), then),
            None => ("-".to_string(), "-"),
        };
        println!(
            "{:<44}  {:<20}  {name:<8}  {until:<20}  {then}",
            key.kid,
            clock::rfc3339(key.created_at)
        );
    }
    Ok(())
}

/// `latchkey keys rotate [--now]`: a new key, published at once; it signs
/// once it has been published for the service's `--jwks-max-age` (`--now`:
/// at once), and the key signing until then retires. A running service
/// picks the change up within `key_ring::RELOAD_SECONDS`.
pub fn keys_rotate(path: &Path, now: bool) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let recorded = key_ring::recorded(&conn)?;
    key_ring::load(&mut conn, recorded.window)?;
    let delay = if now {
        0
    } else {
        key_ring::publication_delay(recorded.jwks_max_age)
    };
    let kid = key_ring::rotate(&mut conn, delay, None)?.unwrap_or_default();
    // The rotation commits inside `key_ring`; its event follows at once.
    record_admin(
        &mut conn,
        Entry::new(Event::AdminKeyRotated, clock::now(), &Client::default())
            .detail(serde_json::json!({ "kid": kid, "now": now })),
    )?;
    if now {
        println!("new signing key {kid}: signs from now on");
    } else {
        let at = clock::rfc3339(clock::now().saturating_add(delay));
        println!("new signing key {kid}: published now, signs from {at}");
    }
    Ok(())
}

/// `latchkey keys revoke KID`: the key is deleted at once, so every token it
/// signed is refused from then on (a running service within
/// `key_ring::RELOAD_SECONDS`); if it was signing, another key takes over.
pub fn keys_revoke(path: &Path, kid: &str) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let revoked = key_ring::revoke(&mut conn, kid)?;
    record_admin(
        &mut conn,
        Entry::new(Event::AdminKeyRevoked, clock::now(), &Client::default())
            .detail(serde_json::json!({ "kid": kid, "successor": revoked.successor })),
    )?;
    match revoked.successor {
        Some(successor) => println!("revoked {kid}; {successor} signs from now on"),
        None => println!("revoked {kid}"),
    }
    Ok(())
}

/// Appends an operator's event in a transaction of its own.
fn record_admin(conn: &mut db::Connection, entry: Entry<'_>) -> Result<(), OpsError> {
    db::write(conn, |tx| audit::record(tx, &entry))?;
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
pub fn users_list(path: &Path, json: bool) -> Result<(), OpsError> {
    let pool = open(path)?;
    let conn = pool.get()?;
    let rows: Vec<UserRow> = users::list(&conn)?
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            email: u.email,
            name: u.name,
            created_at: clock::rfc3339(u.created_at),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
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

fn find_user(conn: &db::Connection, email: &str) -> Result<users::User, OpsError> {
    let key = validate::email(email)
        .map_err(|problem| OpsError::Invalid {
            what: "EMAIL",
            problem,
        })?
        .key;
    users::find_by_email_key(conn, &key)?.ok_or_else(|| OpsError::NoSuchUser(email.to_string()))
}

/// `latchkey users delete EMAIL`: the user and everything they own.
pub fn users_delete(path: &Path, email: &str) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let user = find_user(&conn, email)?;
    db::write(&mut conn, |tx| {
        users::delete(tx, &user.id)?;
        let origin = Client::default();
        audit::record(
            tx,
            &Entry::new(Event::AdminUserDeleted, clock::now(), &origin).user(&user.id),
        )
    })?;
    println!("deleted {} ({})", user.email, user.id);
    Ok(())
}

/// `latchkey users set-password EMAIL`: the new password is the first line
/// of standard input (so it never appears in `ps` or shell history); the
/// same rules as sign-up apply, and the user's sessions end.
pub fn users_set_password(path: &Path, email: &str) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let user = find_user(&conn, email)?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    validate::new_password(password).map_err(|problem| OpsError::Invalid {
        what: "the password",
        problem,
    })?;
    let hash = Hasher::new(1, 0)
        .hash(password)
        .map_err(|_| OpsError::HasherBusy)?;
    let ended = db::write(&mut conn, |tx| {
        let now = clock::now();
        users::update_password_hash(tx, &user.id, &hash)?;
        users::touch(tx, &user.id, now)?;
        let ended = sessions::delete_all_of_user(tx, &user.id)?;
        let origin = Client::default();
        let entry = Entry::new(Event::AdminPasswordSet, now, &origin)
            .user(&user.id)
            .detail(serde_json::json!({ "sessions_ended": ended }));
        audit::record(tx, &entry)?;
        Ok::<_, db::Error>(ended)
    })?;
    println!("password set for {}; {ended} session(s) ended", user.email);
    Ok(())
}

/// `latchkey users mfa-off EMAIL`: an operator's answer to a user who lost
/// both their authenticator and their recovery codes (after checking who
/// they are by other means). The factor, its recovery codes and any pending
/// second login step go; the password stays.
pub fn users_mfa_off(path: &Path, email: &str) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let user = find_user(&conn, email)?;
    let was_on = db::write(&mut conn, |tx| {
        let was_on = mfa::turn_off(tx, &user.id)?;
        if was_on {
            let origin = Client::default();
            let entry =
                Entry::new(Event::AdminSecondFactorOff, clock::now(), &origin).user(&user.id);
            audit::record(tx, &entry)?;
            let details = Details::new(clock::now(), None, None);
            email::notice_second_factor(tx, &user, false, &details, clock::now())?;
        }
        Ok::<_, db::Error>(was_on)
    })?;
    if was_on {
        println!("second factor turned off for {}", user.email);
    } else {
        println!("{} had no second factor", user.email);
    }
    Ok(())
}

/// `latchkey cleanup`: one sweep, printing what it removed. Audit events
/// are kept for `retention` seconds if given, else as long as the service
/// last started on this database keeps them (else the default).
pub fn cleanup(path: &Path, retention: Option<i64>) -> Result<(), OpsError> {
    let pool = open(path)?;
    let mut conn = pool.get()?;
    let window = key_ring::recorded(&conn)?.window;
    let audit_retention = match retention {
        Some(seconds) => seconds,
        None => settings::get_i64(&conn, settings::AUDIT_RETENTION)?
            .unwrap_or_else(crate::config::default_audit_retention),
    };
    let keep = cleanup::Keep {
        window,
        audit_retention,
    };
    let removed = cleanup::sweep(&mut conn, clock::now(), keep, &|| false)?;
    for (table, rows) in removed.by_table() {
        println!("{table}: {rows} removed");
    }
    Ok(())
}

/// `latchkey backup DEST`: SQLite's online backup in small steps (a writer
/// is never blocked for the whole copy), checked with `integrity_check`,
/// written to a temporary name, synced and renamed into place.
pub fn backup(path: &Path, dest: &Path) -> Result<(), OpsError> {
    let pool = open(path)?;
    let source = pool.get()?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| OpsError::NotAFile(dest.to_path_buf()))?
        .to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let checked = backup::copy_online(&source, &temp).and_then(|()| backup::check(&temp));
    let counts = match checked {
        Ok(backup::Checked::Sound(counts)) => counts,
        Ok(backup::Checked::Corrupt(verdict)) => {
            let _ = std::fs::remove_file(&temp);
            return Err(OpsError::Corrupt(verdict));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e.into());
        }
    };
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| OpsError::File { path, error }
    };
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(file_error(&temp))?;
    std::fs::rename(&temp, dest).map_err(file_error(dest))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(file_error(&dir))?;
    let size = std::fs::metadata(dest).map_err(file_error(dest))?.len();
    println!("backup {}: {size} bytes, integrity ok", dest.display());
    for (table, rows) in counts {
        println!("  {table}: {rows} rows");
    }
    Ok(())
}

/// `latchkey mail-test ADDR`: one mail through the configured delivery, at
/// once (not through the outbox), printing the relay's answer or the file.
pub fn mail_test(settings: &mail::settings::Settings, to: &str) -> Result<(), OpsError> {
    let now = clock::now();
    let composed = mail::compose::test(&mail::compose::Details::new(now, None, None));
    let message = mail::Mail {
        id: crate::domain::ids::uuid(),
        to: to.to_string(),
        subject: composed.subject,
        text: composed.text,
        html: composed.html,
        created_at: now,
    };
    match mail::delivery::deliver(settings, &message) {
        Ok(answer) => {
            println!("sent to {to}: {answer}");
            Ok(())
        }
        Err(failure) => Err(OpsError::Mail {
            to: to.to_string(),
            permanent: failure.permanent,
            reason: failure.reason,
        }),
    }
}
