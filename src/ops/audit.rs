//! `latchkey audit`: the audit log of a (live) database for the operator,
//! as a table or as one JSON object a line.

use crate::clock;
use crate::db::audit_events::{self, AuditEvent, Filter};
use crate::db::{self, settings, users};
use crate::domain::audit;
use crate::ops::admin;
use crate::ops::error::OpsError;
use std::path::Path;

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
pub fn print(
    path: &Path,
    user: Option<&str>,
    since: Option<i64>,
    json: bool,
) -> Result<(), OpsError> {
    let pool = admin::open(path)?;
    let mut conn = pool.get()?;
    let mut filter = Filter {
        since,
        ..Filter::default()
    };
    if let Some(email) = user {
        let key = audit::email_key(email);
        let secret = db::write(&mut conn, |tx| settings::secret(tx, audit::EMAIL_SECRET))?;
        filter.email_hmac = Some(audit::email_hmac(&secret, &key).to_vec());
        // An id that matches nothing keeps the filter on this user alone.
        filter.user_id =
            Some(users::find_by_email_key(&conn, &key)?.map_or_else(String::new, |u| u.id));
    }
    let events = audit_events::list(&conn, &filter)?;
    let mut emails = std::collections::HashMap::new();
    let mut email_of = |id: &str| -> Result<Option<String>, OpsError> {
        if !emails.contains_key(id) {
            let found = users::find(&conn, id)?;
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
            println!("{}", serde_json::to_string(l)?);
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
