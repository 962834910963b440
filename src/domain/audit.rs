//! The audit log's vocabulary: the security events latchkey records, who and
//! where they concern, and `record`, which appends one inside the caller's
//! write transaction (so a change and its event commit or vanish together).
//!
//! Never recorded: a password, a token, a code or a link token. A failed
//! login for an address with no account keeps only `email_hmac`, a keyed
//! hash of the normalised address, so the log holds no stranger's typing
//! but the operator can still ask "what happened to this address?".

use crate::app::App;
use crate::clock;
use crate::db::{
    self, Connection,
    audit_events::{self, NewEvent},
};
use crate::domain::accounts::Client;
use crate::domain::{ids, throttle, validate};
use crate::error::ApiError;
use crate::locks::Unpoisoned;
use ring::hmac;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Name of the per-database secret behind `email_hmac` in `settings`.
pub const EMAIL_SECRET: &str = "audit_email_secret";

/// Characters of a User-Agent kept with an event.
pub const USER_AGENT_CHARS: usize = 256;

/// Every recorded event. Its `name` is what the table, the API and the
/// metric label hold: snake_case, stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SignUp,
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    RefreshReuseDetected,
    LogOut,
    SessionEnded,
    PasswordChanged,
    PrivateTokenCreated,
    PrivateTokenRotated,
    PrivateTokenRevoked,
    AccountDeleted,
    AdminUserDeleted,
    AdminPasswordSet,
    AdminKeyRotated,
    AdminKeyRevoked,
    SecondFactorRequired,
    SecondFactorOn,
    SecondFactorOff,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    AdminSecondFactorOff,
}

/// Every variant, for the tests.
#[cfg(test)]
pub const ALL: &[Event] = &[
    Event::SignUp,
    Event::LoginSucceeded,
    Event::LoginFailed,
    Event::LoginThrottled,
    Event::RefreshReuseDetected,
    Event::LogOut,
    Event::SessionEnded,
    Event::PasswordChanged,
    Event::PrivateTokenCreated,
    Event::PrivateTokenRotated,
    Event::PrivateTokenRevoked,
    Event::AccountDeleted,
    Event::AdminUserDeleted,
    Event::AdminPasswordSet,
    Event::AdminKeyRotated,
    Event::AdminKeyRevoked,
    Event::SecondFactorRequired,
    Event::SecondFactorOn,
    Event::SecondFactorOff,
    Event::RecoveryCodeUsed,
    Event::RecoveryCodesRegenerated,
    Event::AdminSecondFactorOff,
];

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::SignUp => "sign_up",
            Event::LoginSucceeded => "login_succeeded",
            Event::LoginFailed => "login_failed",
            Event::LoginThrottled => "login_throttled",
            Event::RefreshReuseDetected => "refresh_reuse_detected",
            Event::LogOut => "logout",
            Event::SessionEnded => "session_ended",
            Event::PasswordChanged => "password_changed",
            Event::PrivateTokenCreated => "private_token_created",
            Event::PrivateTokenRotated => "private_token_rotated",
            Event::PrivateTokenRevoked => "private_token_revoked",
            Event::AccountDeleted => "account_deleted",
            Event::AdminUserDeleted => "admin_user_deleted",
            Event::AdminPasswordSet => "admin_password_set",
            Event::AdminKeyRotated => "admin_key_rotated",
            Event::AdminKeyRevoked => "admin_key_revoked",
            Event::SecondFactorRequired => "second_factor_required",
            Event::SecondFactorOn => "second_factor_on",
            Event::SecondFactorOff => "second_factor_off",
            Event::RecoveryCodeUsed => "recovery_code_used",
            Event::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Event::AdminSecondFactorOff => "admin_second_factor_off",
        }
    }

    /// `failure` for an attempt that was refused, `success` for a change made.
    pub fn outcome(self) -> &'static str {
        match self {
            Event::LoginFailed | Event::LoginThrottled | Event::RefreshReuseDetected => "failure",
            Event::SignUp
            | Event::LoginSucceeded
            | Event::LogOut
            | Event::SessionEnded
            | Event::PasswordChanged
            | Event::PrivateTokenCreated
            | Event::PrivateTokenRotated
            | Event::PrivateTokenRevoked
            | Event::AccountDeleted
            | Event::AdminUserDeleted
            | Event::AdminPasswordSet
            | Event::AdminKeyRotated
            | Event::AdminKeyRevoked
            | Event::SecondFactorRequired
            | Event::SecondFactorOn
            | Event::SecondFactorOff
            | Event::RecoveryCodeUsed
            | Event::RecoveryCodesRegenerated
            | Event::AdminSecondFactorOff => "success",
        }
    }
}

/// One event to record. Built with `Entry::new(event, now, &client)` and the
/// setters for what it concerns; `client` is where the request came from
/// (address after `--trusted-proxy`, User-Agent), empty for the command line.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub event: Event,
    pub at: i64,
    pub origin: &'a Client,
    pub user_id: Option<&'a str>,
    pub email_hmac: Option<[u8; 32]>,
    pub session_id: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub detail: Option<Value>,
}

impl<'a> Entry<'a> {
    pub fn new(event: Event, at: i64, origin: &'a Client) -> Entry<'a> {
        Entry {
            event,
            at,
            origin,
            user_id: None,
            email_hmac: None,
            session_id: None,
            token_id: None,
            detail: None,
        }
    }

    pub fn user(mut self, user_id: &'a str) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// A stranger's address, kept only as `email_hmac(secret, email_key)`.
    pub fn unknown_email(mut self, secret: &[u8], email_key: &str) -> Self {
        self.email_hmac = Some(email_hmac(secret, email_key));
        self
    }

    pub fn session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub fn token(mut self, token_id: &'a str) -> Self {
        self.token_id = Some(token_id);
        self
    }

    /// A small JSON object of facts that are no secret (a token's name, a
    /// key id, a count); never anything a client typed as a credential.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Appends `entry` on `conn`, which should be the caller's write
/// transaction. `App::record` also counts it in the metrics.
pub fn record(conn: &Connection, entry: &Entry<'_>) -> db::Result<()> {
    let id = ids::uuid();
    let address = entry.origin.address.map(|a| a.to_string());
    let detail = entry.detail.as_ref().map(Value::to_string);
    let user_agent: Option<String> = entry
        .origin
        .user_agent
        .as_ref()
        .map(|ua| ua.chars().take(USER_AGENT_CHARS).collect());
    audit_events::insert(
        conn,
        &NewEvent {
            id: &id,
            at: entry.at,
            event: entry.event.name(),
            outcome: entry.event.outcome(),
            user_id: entry.user_id,
            email_hmac: entry.email_hmac.as_ref().map(|h| &h[..]),
            session_id: entry.session_id,
            token_id: entry.token_id,
            address: address.as_deref(),
            user_agent: user_agent.as_deref(),
            detail: detail.as_deref(),
        },
    )
}

/// Records a refused login in a transaction of its own (there is no change
/// to join): under the account's id when the email has one, else only as
/// the email's keyed hash; within the daily budget for refusals
/// (`FailureBudget`), beyond which it is only counted.
pub fn refused_login(
    app: &App,
    event: Event,
    client: &Client,
    user_id: Option<&str>,
    email_key: &str,
) -> Result<(), ApiError> {
    let now = clock::now();
    if !app.failure_budget.take(now) {
        app.metrics.audit_suppressed(event.name());
        return Ok(());
    }
    let entry = Entry::new(event, now, client);
    let entry = match user_id {
        Some(id) => entry.user(id),
        None => entry.unknown_email(&app.audit_secret, email_key),
    };
    db::write(&mut *app.conn()?, |tx| app.record(tx, &entry))?;
    Ok(())
}

/// HMAC-SHA-256 of a normalised email (its uniqueness key) under the
/// database's `EMAIL_SECRET`: equal addresses match, the log reveals none.
pub fn email_hmac(secret: &[u8], email_key: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, email_key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The normalised form of a typed email that login throttles and hashes:
/// its uniqueness key when it is a valid address, else trimmed and
/// lower-cased (it then belongs to no account).
pub fn email_key(raw: &str) -> String {
    validate::email(raw).map_or_else(|_| validate::email_key(raw.trim()), |e| e.key)
}

/// Refused logins recorded per day at most, over every account and client
/// (see `FailureBudget`).
pub const FAILURES_PER_DAY: u32 = 100_000;

/// The burst `FailureBudget` allows above its daily rate.
const FAILURE_BURST: u32 = 10_000;

/// A token bucket over the events of refused logins. Each failed login
/// costs an argon2 run, so the hasher bounds them (about 65 a second on a
/// 2-core machine, 5.6 million a day), and the per-address throttle bounds
/// one client; a botnet spread over many addresses could still write
/// gigabytes a day. Beyond `FAILURES_PER_DAY` (with a burst of 10,000)
/// refusals are only counted (`latchkey_audit_events_suppressed_total`),
/// so the table's worst case is bounded whatever the attack. Successful
/// logins and every change are always recorded.
pub struct FailureBudget {
    state: Mutex<(f64, i64)>,
}

impl Default for FailureBudget {
    fn default() -> Self {
        FailureBudget {
            state: Mutex::new((f64::from(FAILURE_BURST), i64::MIN)),
        }
    }
}

impl FailureBudget {
    /// Whether one more refused login may be recorded at `now`.
    pub fn take(&self, now: i64) -> bool {
        let mut state = self.state.lock().unpoisoned();
        let (tokens, last) = &mut *state;
        if *last != i64::MIN && now > *last {
            let rate = f64::from(FAILURES_PER_DAY) / 86_400.0;
            *tokens = (*tokens + (now - *last) as f64 * rate).min(f64::from(FAILURE_BURST));
        }
        *last = (*last).max(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Entries kept at most by `ThrottleNotes` (about 100 bytes each).
const MAX_NOTES: usize = 100_000;

/// Keeps refused (429) logins from writing a row each: a refusal costs the
/// client nothing, so a flood of them would otherwise grow the table
/// without bound. One `login_throttled` event is written per blocked email
/// and per blocked client network per window; the rest are only counted
/// in the metrics. Bounded in memory: when full of live notes, refusals
/// are not recorded (an attacker can at worst hide refusals, never fill
/// the disk or the memory).
pub struct ThrottleNotes {
    window: i64,
    noted: Mutex<HashMap<Note, i64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Note {
    Email(String),
    Network(IpAddr),
}

impl ThrottleNotes {
    pub fn new(window_seconds: i64) -> ThrottleNotes {
        ThrottleNotes {
            window: window_seconds,
            noted: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this refusal is the first for its email and its network in
    /// the current window, and so worth an event; notes both either way.
    pub fn first(&self, email_key: &str, address: Option<IpAddr>, now: i64) -> bool {
        let mut noted = self.noted.lock().unpoisoned();
        let mut notes = vec![Note::Email(email_key.to_string())];
        notes.extend(address.map(|a| Note::Network(throttle::network_of(a))));
        let fresh = notes
            .iter()
            .all(|n| noted.get(n).is_none_or(|&until| until <= now));
        if noted.len() + notes.len() > MAX_NOTES {
            noted.retain(|_, until| *until > now);
            if noted.len() + notes.len() > MAX_NOTES {
                return false;
            }
        }
        // A live note keeps its end, so a sustained flood still yields one
        // event per window.
        for note in notes {
            let until = noted.entry(note).or_insert(now + self.window);
            if *until <= now {
                *until = now + self.window;
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests;
