//! Mail: what each mail says (`compose`), where it goes (`settings`,
//! `delivery`), and the outbox sender (`sender`). A mail is queued with
//! `queue` inside the write transaction of the change that causes it, so it
//! is sent exactly when that change is committed, and survives a restart.

pub mod compose;
pub mod delivery;
pub mod sender;
pub mod settings;

pub use delivery::Mail;

use crate::db::outbox;
use crate::db::{self, Connection};
use crate::domain::ids;
use compose::Composed;

/// Queues `mail` for `to`; call inside the caller's write transaction.
pub fn queue(conn: &Connection, to: &str, mail: Composed, now: i64) -> db::Result<()> {
    outbox::insert(
        conn,
        &Mail {
            id: ids::uuid(),
            to: to.to_string(),
            subject: mail.subject,
            text: mail.text,
            html: mail.html,
            created_at: now,
        },
    )
}
