//! Accounts: signing up, logging in (throttled, with device tokens),
//! refreshing a session, changing the profile or the password, deleting the
//! account. The JSON handlers call these and so will the web pages, so each
//! rule lives once, here. Inputs arrive validated; answers are rows and
//! secrets, never HTTP.

use std::net::IpAddr;

use crate::app::App;
use crate::clock;
use crate::db::{self, device_tokens, images, refresh_tokens, sessions, totp_factors, users};
use crate::domain::audit::{self, Entry, Event};
use crate::domain::email;
use crate::domain::ids::{self, Secret};
use crate::domain::images::CleanImage;
use crate::domain::keys::base64url_encode;
use crate::domain::mfa;
use crate::domain::throttle::Account;
use crate::domain::validate::{self, Email};
use crate::error::ApiError;
use crate::mail::compose::Details;
use crate::ops::metrics::Issued;

/// RFC 8176 §2 `pwd`: the session's login checked a password.
pub const AMR_PASSWORD: &str = "pwd";

/// Who is asking, as far as accounts care: the address throttling counts,
/// and the user agent a new session records.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    /// When, from where and with what a change was made, for mails.
    pub fn details(&self, now: i64) -> Details {
        Details::new(now, self.address, self.user_agent.as_deref())
    }
}

/// A sign-up whose fields passed the rules.
pub struct NewAccount {
    pub email: Email,
    pub password: String,
    pub names: users::Names,
}

/// A new account. 409 `email_exists` when the email's key is taken.
pub fn sign_up(app: &App, client: &Client, new: NewAccount) -> Result<users::User, ApiError> {
    // 409 is the contract's answer anyway, so checking first reveals nothing
    // and saves an argon2 run; the UNIQUE index still decides under races.
    if users::find_by_email_key(&*app.conn()?, &new.email.key)?.is_some() {
        return Err(ApiError::EmailExists);
    }
    let hash = app.hasher.hash(&new.password)?;
    let id = ids::uuid();
    let now = clock::now();
    let row = users::NewUser {
        id: &id,
        email: &new.email.address,
        email_key: &new.email.key,
        password_hash: &hash,
        names: &new.names,
        now,
    };
    // The verification mail is queued with the account, in one transaction.
    db::write(&mut *app.conn()?, |tx| {
        users::insert(tx, &row)?.map_err(|_| ApiError::EmailExists)?;
        app.record(tx, &Entry::new(Event::SignUp, row.now, client).user(&id))?;
        let user = users::find(tx, &id)?.ok_or(ApiError::TokenNotValid)?;
        email::send_verification(tx, &app.links(), &user, &client.details(now), now)?;
        Ok(user)
    })
}

/// What a login presents.
pub struct Credentials {
    pub email: String,
    pub password: String,
    pub device_token: Option<Secret>,
}

/// A new session.
pub struct LoggedIn {
    pub user: users::User,
    pub session_id: String,
    pub amr: String,
    pub refresh_token: Secret,
    /// The presented device token if it counted as one, else a new one.
    pub device_token: Secret,
}

/// Opens a session. The attempt counts against the email — or against the
/// presented device token, if it is valid for this account and has failures
/// left — and against the client address, before the password is checked.
/// With a second factor on, the right password opens no session yet: the
/// answer is 401 `mfa_required` with the token of the second step
/// (`mfa::complete_login`).
pub fn log_in(app: &App, client: &Client, login: Credentials) -> Result<LoggedIn, ApiError> {
    let now = clock::now();
    // An address that isn't valid can't belong to anyone, but it still costs a
    // (dummy) verification, so timing never tells which emails exist.
    let key = validate::email(&login.email)
        .map_or_else(|_| validate::email_key(login.email.trim()), |e| e.key);
    let user = users::find_by_email_key(&*app.conn()?, &key)?;
    let device = match (&login.device_token, &user) {
        (Some(token), Some(user))
            if device_tokens::is_valid_for(&*app.conn()?, &token.hash(), &user.id, now)? =>
        {
            Some(token.hash())
        }
        _ => None,
    };
    let account = match &device {
        Some(hash) => Account::Device { hash, email: &key },
        None => Account::Email(&key),
    };
    let second_factor = match &user {
        Some(user) => totp_factors::is_on(&*app.conn()?, &user.id)?,
        None => false,
    };
    let stored = user.as_ref().map(|u| u.password_hash.as_str());
    let checked = match check_password(app, client, account, &login.password, stored, second_factor)
    {
        Err(ApiError::TooManyRequests { retry_after }) => {
            if app.throttle_notes.first(&key, client.address, now) {
                let user_id = user.as_ref().map(|u| u.id.as_str());
                audit::refused_login(app, Event::LoginThrottled, client, user_id, &key)?;
            }
            return Err(ApiError::TooManyRequests { retry_after });
        }
        checked => checked?,
    };
    if !(checked.ok && second_factor) {
        app.metrics.login(checked.ok);
    }
    // `ok` implies a stored hash, so an account.
    let (true, Some(user)) = (checked.ok, &user) else {
        let user_id = user.as_ref().map(|u| u.id.as_str());
        audit::refused_login(app, Event::LoginFailed, client, user_id, &key)?;
        return Err(ApiError::InvalidCredentials);
    };
    let user = user.clone();
    // Only now, after the right password, may the answer tell anything.
    if app.config.require_verified_email && !user.email_verified {
        return Err(ApiError::EmailNotVerified);
    }
    // New parameters take effect at the next successful login (OWASP); a busy
    // hasher just postpones that.
    let rehash = checked
        .needs_rehash
        .then(|| app.hasher.hash(&login.password).ok())
        .flatten();
    if second_factor {
        let device = device.filter(|_| checked.by_device);
        let started =
            mfa::start_second_step(app, client, &user, device.as_ref(), rehash.as_deref())?;
        return Err(ApiError::MfaRequired(started));
    }
    let kept = login.device_token.filter(|_| checked.by_device);
    open_session(
        app,
        client,
        user,
        kept,
        rehash.as_deref(),
        now,
        AMR_PASSWORD,
    )
}

/// The rows of a new session (and a new device token unless one is `kept`);
/// `amr` is how the login authenticated (RFC 8176, space-separated).
pub fn open_session(
    app: &App,
    client: &Client,
    user: users::User,
    kept: Option<Secret>,
    rehash: Option<&str>,
    now: i64,
    amr: &'static str,
) -> Result<LoggedIn, ApiError> {
    let user_id = user.id.as_str();
    let session_id = ids::uuid();
    let refresh_token = Secret::generate();
    let new_device = kept.is_none();
    let device_token = kept.unwrap_or_else(Secret::generate);
    let expires_at = now.saturating_add(refresh_ttl(app));
    db::write(&mut *app.conn()?, |tx| {
        let session = sessions::NewSession {
            id: &session_id,
            user_id,
            user_agent: client.user_agent.as_deref(),
            amr,
            now,
            expires_at,
        };
        sessions::insert(tx, &session)?;
        refresh_tokens::insert(tx, &refresh_token.hash(), &session_id, now, expires_at)?;
        if new_device {
            device_tokens::insert(tx, &device_token.hash(), user_id, now, expires_at)?;
        }
        if let Some(hash) = rehash {
            users::update_password_hash(tx, user_id, hash)?;
        }
        let entry = Entry::new(Event::LoginSucceeded, now, client)
            .user(user_id)
            .session(&session_id);
        app.record(tx, &entry)?;
        Ok::<_, ApiError>(())
    })?;
    app.metrics.issued(Issued::Refresh);
    Ok(LoggedIn {
        user,
        session_id,
        amr: amr.to_owned(),
        refresh_token,
        device_token,
    })
}

fn refresh_ttl(app: &App) -> i64 {
    app.config.refresh_ttl
}

/// A session that a refresh token proved.
pub struct Renewed {
    pub session_id: String,
    pub user_id: String,
    pub amr: String,
    /// With `--rotate-refresh-tokens`: the token to use from now on.
    pub successor: Option<Secret>,
}

/// A refresh. By default the token stays valid and this only reads; with
/// rotation it is replaced (see `db::refresh_tokens` for retries and reuse).
/// A refresh is no audit event (it would dominate the log); a detected
/// reuse is, in the transaction that ends the session.
pub fn refresh(app: &App, client: &Client, token: &Secret) -> Result<Renewed, ApiError> {
    let policy = refresh_tokens::Policy {
        rotate: app.config.rotate_refresh_tokens,
        reuse_interval: app.config.refresh_reuse_interval,
        refresh_ttl: refresh_ttl(app),
    };
    let now = clock::now();
    let next = token.successor(&app.rotation_secret);
    let outcome = if policy.rotate {
        db::write(&mut *app.conn()?, |tx| {
            let outcome = refresh_tokens::refresh(tx, token, &next, policy, now)?;
            if let refresh_tokens::Refreshed::ReuseDetected {
                session_id,
                user_id,
            } = &outcome
            {
                let entry = Entry::new(Event::RefreshReuseDetected, now, client)
                    .user(user_id)
                    .session(session_id);
                app.record(tx, &entry)?;
            }
            Ok::<_, db::Error>(outcome)
        })?
    } else {
        refresh_tokens::refresh(&*app.conn()?, token, &next, policy, now)?
    };
    let renewed = match outcome {
        refresh_tokens::Refreshed::Kept {
            session_id,
            user_id,
            amr,
        } => Renewed {
            session_id,
            user_id,
            amr,
            successor: None,
        },
        refresh_tokens::Refreshed::Rotated {
            session_id,
            user_id,
            amr,
            successor,
        } => {
            app.metrics.issued(Issued::Refresh);
            Renewed {
                session_id,
                user_id,
                amr,
                successor: Some(successor),
            }
        }
        refresh_tokens::Refreshed::Refused => return Err(ApiError::InvalidRefreshToken),
        refresh_tokens::Refreshed::ReuseDetected { .. } => {
            log::warn!("a replaced refresh token was reused: its session was ended");
            app.metrics.refresh_reuse();
            return Err(ApiError::InvalidRefreshToken);
        }
    };
    Ok(renewed)
}

/// A profile update whose fields passed the rules (only given fields change).
#[derive(Default)]
pub struct ProfileChange {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub current_password: Option<String>,
}

/// Who may change what: a login may change the email, a private token not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    Login,
    PrivateToken,
}

/// Applies a profile update. When `first_name` or `last_name` changes and
/// `name` is not given, `name` follows as "first last", as at sign-up. A new
/// email needs a login and the current password.
pub fn update_profile(
    app: &App,
    client: &Client,
    user_id: &str,
    authority: Authority,
    change: ProfileChange,
    picture: Option<CleanImage>,
) -> Result<users::User, ApiError> {
    let user = user(app, user_id)?;
    let email = change.email.filter(|e| e.address != user.email);
    if email.is_some() {
        if authority != Authority::Login {
            return Err(ApiError::PermissionDenied);
        }
        let password = change.current_password.as_deref().ok_or_else(|| {
            ApiError::field("current_password", "is required to change the email")
        })?;
        confirm_password(app, client, &user, password, "current_password")?;
        // The change waits for its link, but an address already taken is
        // refused now (and again, under races, when the link is confirmed).
        if let Some(new) = &email
            && users::find_by_email_key(&*app.conn()?, &new.key)?.is_some()
        {
            return Err(ApiError::EmailExists);
        }
    }
    let names = renamed(&user, change.name, change.first_name, change.last_name)?;
    let picture = picture.map(Picture::from);
    let now = clock::now();
    db::write(&mut *app.conn()?, |tx| {
        users::update_names(tx, &user.id, &names, now)?;
        // A new email is pending until the link mailed to it is confirmed.
        if let Some(new) = &email {
            let details = client.details(now);
            email::request_change(tx, &app.links(), &user, &new.address, &details, now)?;
        }
        if let Some(p) = &picture {
            images::replace(tx, &p.row(&user.id, now))?;
        }
        Ok::<_, ApiError>(())
    })?;
    self::user(app, user_id)
}

/// The names after an update (see [`update_profile`]).
fn renamed(
    user: &users::User,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
) -> Result<users::Names, ApiError> {
    let renamed = first_name.is_some() || last_name.is_some();
    let first_name = first_name.or_else(|| user.first_name.clone());
    let last_name = last_name.or_else(|| user.last_name.clone());
    let name = match (name, &first_name, &last_name) {
        (Some(name), _, _) => name,
        (None, Some(first), Some(last)) if renamed => validate::full_name_of(first, last)
            .map_err(|problem| ApiError::field("name", problem))?,
        _ => user.name.clone(),
    };
    Ok(users::Names {
        name,
        first_name,
        last_name,
    })
}

/// A cleaned picture under a new unguessable id, with its entity tag.
struct Picture {
    id: String,
    etag: String,
    image: CleanImage,
}

impl From<CleanImage> for Picture {
    fn from(image: CleanImage) -> Picture {
        let digest = base64url_encode(&ids::sha256(&image.bytes));
        Picture {
            id: ids::uuid(),
            etag: format!("\"{}\"", &digest[..22]),
            image,
        }
    }
}

impl Picture {
    fn row<'a>(&'a self, user_id: &'a str, now: i64) -> images::NewImage<'a> {
        images::NewImage {
            id: &self.id,
            user_id,
            content_type: self.image.content_type,
            bytes: &self.image.bytes,
            etag: &self.etag,
            now,
        }
    }
}

/// A new password; every session of the user ends, so their refresh and
/// access tokens are refused from now on. `session_id`: the login it was
/// changed in, for the audit log.
pub fn change_password(
    app: &App,
    client: &Client,
    (user_id, session_id): (&str, &str),
    current: &str,
    new: &str,
) -> Result<(), ApiError> {
    let user = user(app, user_id)?;
    confirm_password(app, client, &user, current, "current_password")?;
    let hash = app.hasher.hash(new)?;
    let now = clock::now();
    db::write(&mut *app.conn()?, |tx| {
        users::update_password_hash(tx, &user.id, &hash)?;
        users::touch(tx, &user.id, now)?;
        let ended = sessions::delete_all_of_user(tx, &user.id)?;
        let entry = Entry::new(Event::PasswordChanged, now, client)
            .user(&user.id)
            .session(session_id)
            .detail(serde_json::json!({ "sessions_ended": ended }));
        app.record(tx, &entry)?;
        email::notice_password_changed(tx, &user, false, &client.details(now), now)
    })?;
    Ok(())
}

/// Deletes the user with their sessions, tokens and picture, in one
/// transaction; the email may sign up again.
pub fn delete_account(
    app: &App,
    client: &Client,
    (user_id, session_id): (&str, &str),
    password: &str,
) -> Result<(), ApiError> {
    let user = user(app, user_id)?;
    confirm_password(app, client, &user, password, "password")?;
    db::write(&mut *app.conn()?, |tx| {
        users::delete(tx, &user.id)?;
        let entry = Entry::new(Event::AccountDeleted, clock::now(), client)
            .user(&user.id)
            .session(session_id);
        app.record(tx, &entry)
    })?;
    Ok(())
}

/// The caller's user; gone means their token no longer names anyone.
pub fn user(app: &App, user_id: &str) -> Result<users::User, ApiError> {
    users::find(&*app.conn()?, user_id)?.ok_or(ApiError::TokenNotValid)
}

/// The password of an authenticated user, checked (and throttled) as at
/// login under the account's email. A wrong one is 400 `validation_error`
/// naming `field`: a 401 would tell clients their token is bad.
pub fn confirm_password(
    app: &App,
    client: &Client,
    user: &users::User,
    password: &str,
    field: &'static str,
) -> Result<(), ApiError> {
    let key = validate::email_key(&user.email);
    let stored = Some(user.password_hash.as_str());
    match check_password(app, client, Account::Email(&key), password, stored, false)?.ok {
        true => Ok(()),
        false => Err(ApiError::field(field, "is not the current password")),
    }
}

/// The outcome of a throttled password check.
struct Checked {
    ok: bool,
    needs_rehash: bool,
    /// The attempt counted against a device token.
    by_device: bool,
}

/// Checks a password against the stored hash (`None`: an unknown account,
/// checked against a dummy hash so the time is the same) under login
/// throttling: the attempt is counted before any hashing (429 if the account
/// or address is blocked), so parallel guesses cannot exceed the limit; a
/// success gives the count back. Before a `second_step`, the right password
/// neither clears the count (wrong codes must add up to the limit) nor
/// counts as a failure.
fn check_password(
    app: &App,
    client: &Client,
    account: Account<'_>,
    password: &str,
    stored: Option<&str>,
    second_step: bool,
) -> Result<Checked, ApiError> {
    let attempt = app
        .throttle
        .attempt(account, client.address, clock::now())
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let by_device = attempt.by_device();
    // Overloaded: the attempt is dropped, so given back.
    let verdict = app.hasher.verify(password, stored)?;
    let ok = verdict.ok && stored.is_some();
    if ok && second_step {
        drop(attempt);
    } else if ok {
        attempt.succeeded();
    } else {
        attempt.failed();
    }
    Ok(Checked {
        ok,
        needs_rehash: verdict.needs_rehash,
        by_device,
    })
}
