//! The email flows' rules, once for the JSON API and the link pages:
//! mailing a link (verification, password reset, email change) and spending
//! it, and the security notices. Every function runs inside the caller's
//! write transaction, so a mail is queued exactly when its change commits.
//!
//! A link token is 256 random bits, sent only in the mail and stored only as
//! SHA-256. It is single use (`email_tokens::take` deletes it whatever the
//! outcome), a newer link of the same purpose supersedes older ones, and it
//! is void once the account's address is no longer the one it was sent to.

use crate::db::email_tokens::{self, NewLink, Purpose};
use crate::db::reset_requests::{self, ResetRequest};
use crate::db::{self, Connection};
use crate::db::{sessions, users};
use crate::domain::ids::{self, Secret};
use crate::domain::validate;
use crate::error::ApiError;
use crate::mail;
use crate::mail::compose::{self, Composed, Details};

/// Where links point and how long they work.
#[derive(Debug, Clone)]
pub struct Links {
    /// `--public-url`, without a trailing `/`.
    pub public_url: String,
    pub verify_ttl: i64,
    pub reset_ttl: i64,
}

/// The page each purpose's link opens.
pub fn page(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Verify => "/account/verify-email",
        Purpose::Reset => "/account/reset-password",
        Purpose::Change => "/account/confirm-email",
    }
}

/// Stores a new link for `user_id` (superseding older ones of its purpose)
/// and returns its URL.
fn new_link(
    conn: &Connection,
    links: &Links,
    user_id: &str,
    purpose: Purpose,
    email: &str,
    now: i64,
) -> db::Result<String> {
    let token = Secret::generate();
    let ttl = match purpose {
        Purpose::Reset => links.reset_ttl,
        Purpose::Verify | Purpose::Change => links.verify_ttl,
    };
    email_tokens::replace(
        conn,
        &NewLink {
            hash: &token.hash(),
            user_id,
            purpose,
            email,
            now,
            expires_at: now + ttl,
        },
    )?;
    Ok(format!(
        "{}{}?token={}",
        links.public_url,
        page(purpose),
        token.expose()
    ))
}

/// Sign-up and `POST /email/verify/resend/`: a verification link to the
/// account's address.
pub fn send_verification(
    conn: &Connection,
    links: &Links,
    user: &users::User,
    details: &Details,
    now: i64,
) -> db::Result<()> {
    let url = new_link(conn, links, &user.id, Purpose::Verify, &user.email, now)?;
    let m = compose::verify(&user.name, url, links.verify_ttl, details);
    mail::queue(conn, &user.email, m, now)
}

/// `POST /password/forgot/`: records the request, and nothing else, so the
/// answer costs the same whether or not the address has an account (no
/// lookup, one insert). The sender thread turns it into a reset link with
/// `answer_forgot`.
pub fn forgot(conn: &Connection, email_key: &str, details: &Details, now: i64) -> db::Result<()> {
    reset_requests::insert(
        conn,
        &ResetRequest {
            id: ids::uuid(),
            email_key: email_key.to_string(),
            address: details.address.clone(),
            device: details.device.clone(),
            requested_at: now,
        },
    )
}

/// The sender thread's half of `forgot`: a reset link mailed to the account
/// with that address, if there is one; the request is gone either way.
pub fn answer_forgot(
    conn: &Connection,
    links: &Links,
    request: &ResetRequest,
    now: i64,
) -> db::Result<()> {
    reset_requests::delete(conn, &request.id)?;
    let Some(user) = users::find_by_email_key(conn, &request.email_key)? else {
        return Ok(());
    };
    let details = Details {
        when: crate::clock::rfc3339(request.requested_at),
        address: request.address.clone(),
        device: request.device.clone(),
    };
    let url = new_link(conn, links, &user.id, Purpose::Reset, &user.email, now)?;
    let m = compose::reset(&user.name, url, links.reset_ttl, &details);
    mail::queue(conn, &user.email, m, now)
}

/// Answers every waiting `forgot` request, each in its own transaction.
pub fn answer_all_forgot(
    conn: &mut Connection,
    links: &Links,
    now: &dyn Fn() -> i64,
) -> db::Result<()> {
    loop {
        let waiting = reset_requests::oldest(conn, 20)?;
        if waiting.is_empty() {
            return Ok(());
        }
        for request in &waiting {
            crate::db::write(conn, |tx| answer_forgot(tx, links, request, now()))?;
        }
    }
}

/// A profile update that changes the email: the new address becomes
/// pending and gets a confirmation link; nothing else changes yet.
pub fn request_change(
    conn: &Connection,
    links: &Links,
    user: &users::User,
    new_address: &str,
    details: &Details,
    now: i64,
) -> db::Result<()> {
    users::set_pending_email(conn, &user.id, Some(new_address), now)?;
    let url = new_link(conn, links, &user.id, Purpose::Change, new_address, now)?;
    let m = compose::confirm_change(&user.name, new_address, url, links.verify_ttl, details);
    mail::queue(conn, new_address, m, now)
}

/// Spends a link: the account it belongs to, if the token is known, of this
/// purpose, unexpired and still meant for the account's address.
fn spend(
    conn: &Connection,
    token: &str,
    purpose: Purpose,
    now: i64,
) -> Result<(users::User, String), ApiError> {
    let hash = Secret::from_presented(token.to_string()).hash();
    let link = email_tokens::take(conn, &hash, purpose)?.ok_or(ApiError::InvalidEmailToken)?;
    let user = users::find(conn, &link.user_id)?.ok_or(ApiError::InvalidEmailToken)?;
    let meant_for = match purpose {
        Purpose::Verify | Purpose::Reset => Some(&user.email),
        Purpose::Change => user.pending_email.as_ref(),
    };
    if link.expires_at <= now || meant_for != Some(&link.email) {
        return Err(ApiError::InvalidEmailToken);
    }
    Ok((user, link.email))
}

/// `POST /email/verify/`.
pub fn verify(conn: &Connection, token: &str, now: i64) -> Result<(), ApiError> {
    let (user, _) = spend(conn, token, Purpose::Verify, now)?;
    users::set_verified(conn, &user.id, now)?;
    Ok(())
}

/// `POST /password/reset/` with the new password already hashed: the
/// password changes, every session ends, the address counts as verified
/// (the link proved it), and a notice is mailed.
pub fn reset_password(
    conn: &Connection,
    token: &str,
    new_hash: &str,
    details: &Details,
    now: i64,
) -> Result<users::User, ApiError> {
    let (user, _) = spend(conn, token, Purpose::Reset, now)?;
    users::update_password_hash(conn, &user.id, new_hash)?;
    users::set_verified(conn, &user.id, now)?;
    sessions::delete_all_of_user(conn, &user.id)?;
    notice_password_changed(conn, &user, true, details, now)?;
    Ok(user)
}

/// `POST /email/confirm/`: the pending address becomes the account's,
/// verified; the old address gets a notice. Another account that took the
/// address meanwhile → 409.
pub fn confirm_change(
    conn: &Connection,
    token: &str,
    details: &Details,
    now: i64,
) -> Result<(), ApiError> {
    let (user, new_address) = spend(conn, token, Purpose::Change, now)?;
    let key = validate::email(&new_address)
        .map_err(|_| ApiError::InvalidEmailToken)?
        .key;
    users::apply_email_change(conn, &user.id, &new_address, &key, now)?
        .map_err(|_| ApiError::EmailExists)?;
    // Links sent to the old address are void now (see `spend`); drop them.
    email_tokens::delete_for_user(conn, &user.id, Purpose::Verify)?;
    email_tokens::delete_for_user(conn, &user.id, Purpose::Reset)?;
    let m = compose::email_changed(&user.name, &user.email, &new_address, details);
    mail::queue(conn, &user.email, m, now)?;
    Ok(())
}

/// A notice to the account's address; never a token.
pub fn notice_password_changed(
    conn: &Connection,
    user: &users::User,
    reset: bool,
    details: &Details,
    now: i64,
) -> db::Result<()> {
    let m = compose::password_changed(&user.name, reset, details);
    mail::queue(conn, &user.email, m, now)
}

pub fn notice_token_created(
    conn: &Connection,
    user: &users::User,
    token_name: &str,
    expires_at: i64,
    details: &Details,
    now: i64,
) -> db::Result<()> {
    let m: Composed = compose::token_created(
        &user.name,
        token_name,
        &crate::clock::rfc3339(expires_at),
        details,
    );
    mail::queue(conn, &user.email, m, now)
}

/// The second factor was turned on or off (by the user, or by an operator).
pub fn notice_second_factor(
    conn: &Connection,
    user: &users::User,
    on: bool,
    details: &Details,
    now: i64,
) -> db::Result<()> {
    let m = compose::second_factor_changed(&user.name, on, details);
    mail::queue(conn, &user.email, m, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, outbox, test_connection};

    fn links() -> Links {
        Links {
            public_url: "https://auth.example".into(),
            verify_ttl: 100,
            reset_ttl: 10,
        }
    }

    /// The token in the newest queued mail's link to `page`.
    fn mailed_token(conn: &Connection, page: &str) -> String {
        let mail = outbox::due(conn, i64::MAX, 100)
            .unwrap()
            .pop()
            .unwrap()
            .mail;
        let at = mail.text.find(&format!("{page}?token=")).unwrap() + page.len() + 7;
        mail.text[at..at + 43].to_string()
    }

    fn user(conn: &Connection) -> users::User {
        users::find(conn, "u1").unwrap().unwrap()
    }

    #[test]
    fn a_link_is_void_once_the_address_moved_on() {
        let conn = test_connection();
        add_test_user(&conn, "u1", "ada@example.com");
        send_verification(&conn, &links(), &user(&conn), &Details::default(), 0).unwrap();
        let token = mailed_token(&conn, page(Purpose::Verify));
        conn.execute("UPDATE users SET email = 'bob@example.com'", [])
            .unwrap();
        assert!(matches!(
            verify(&conn, &token, 1),
            Err(ApiError::InvalidEmailToken)
        ));
    }

    #[test]
    fn a_link_works_until_it_expires() {
        let conn = test_connection();
        add_test_user(&conn, "u1", "ada@example.com");
        send_verification(&conn, &links(), &user(&conn), &Details::default(), 0).unwrap();
        let token = mailed_token(&conn, page(Purpose::Verify));
        assert!(matches!(
            verify(&conn, &token, 100),
            Err(ApiError::InvalidEmailToken)
        ));
        send_verification(&conn, &links(), &user(&conn), &Details::default(), 0).unwrap();
        let token = mailed_token(&conn, page(Purpose::Verify));
        verify(&conn, &token, 99).unwrap();
        assert!(user(&conn).email_verified);
    }

    #[test]
    fn forgot_mails_only_an_existing_account() {
        let mut conn = test_connection();
        add_test_user(&conn, "u1", "ada@example.com");
        forgot(&conn, "nobody@example.com", &Details::default(), 0).unwrap();
        forgot(&conn, "ada@example.com", &Details::default(), 0).unwrap();
        answer_all_forgot(&mut conn, &links(), &|| 5).unwrap();
        let queued = outbox::due(&conn, i64::MAX, 100).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].mail.to, "ada@example.com");
        assert!(reset_requests::oldest(&conn, 10).unwrap().is_empty());
        let token = mailed_token(&conn, page(Purpose::Reset));
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
