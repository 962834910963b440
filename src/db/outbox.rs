//! The `outbox` table: mails waiting for the sender thread. A mail is
//! inserted in the transaction of the change that causes it; a sent mail's
//! row is deleted (its body may hold a link); a failed one keeps its
//! recipient, subject and last error, without the body, until cleanup.

use crate::db::Result;
use crate::mail::Mail;
use rusqlite::{Connection, Row, params};

/// A queued mail and how often it has been tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub mail: Mail,
    pub attempts: i64,
}

pub fn insert(conn: &Connection, mail: &Mail) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, recipient, subject, text_body, html_body, created_at,
                             attempts, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?6)",
    )?
    .execute(params![
        mail.id,
        mail.to,
        mail.subject,
        mail.text,
        mail.html,
        mail.created_at
    ])?;
    Ok(())
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Queued> {
    Ok(Queued {
        mail: Mail {
            id: r.get(0)?,
            to: r.get(1)?,
            subject: r.get(2)?,
            text: r.get(3)?,
            html: r.get(4)?,
            created_at: r.get(5)?,
        },
        attempts: r.get(6)?,
    })
}

/// Up to `limit` mails due at `now`, oldest first.
pub fn due(conn: &Connection, now: i64, limit: i64) -> Result<Vec<Queued>> {
    conn.prepare_cached(
        "SELECT id, recipient, subject, text_body, html_body, created_at, attempts
         FROM outbox
         WHERE failed_at IS NULL AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, created_at, rowid LIMIT ?2",
    )?
    .query_map(params![now, limit], from_row)?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

/// The mail went out: nothing of it is kept.
pub fn delete_sent(conn: &Connection, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A failed try; the next one at `next_attempt_at`.
pub fn postpone(conn: &Connection, id: &str, next_attempt_at: i64, error: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, next_attempt_at, error])?;
    Ok(())
}

/// Given up: kept for the operator without its body (which may hold a link).
pub fn mark_failed(conn: &Connection, id: &str, now: i64, error: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, failed_at = ?2, last_error = ?3,
                           text_body = '', html_body = ''
         WHERE id = ?1",
    )?
    .execute(params![id, now, error])?;
    Ok(())
}

/// Up to `limit` mails given up on by `before` (for cleanup).
pub fn delete_failed(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM outbox WHERE id IN
         (SELECT id FROM outbox WHERE failed_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![before, limit])
    .map_err(Into::into)
}

/// Mails still to be sent.
pub fn count_waiting(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM outbox WHERE failed_at IS NULL")?
        .query_row([], |r| r.get(0))
        .map_err(Into::into)
}

/// Each mail's recipient, attempts, failure time and last error (for tests
/// and the operator).
#[cfg(test)]
pub fn all(conn: &Connection) -> Result<Vec<(String, i64, Option<i64>)>> {
    conn.prepare("SELECT recipient, attempts, failed_at FROM outbox ORDER BY created_at")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    fn mail(id: &str, at: i64) -> Mail {
        Mail {
            id: id.into(),
            to: "ada@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            created_at: at,
        }
    }

    #[test]
    fn a_mail_is_due_until_sent_postponed_or_failed() {
        let conn = test_connection();
        insert(&conn, &mail("a", 100)).unwrap();
        insert(&conn, &mail("b", 101)).unwrap();
        assert!(due(&conn, 99, 10).unwrap().is_empty());
        let ids = |now| -> Vec<String> {
            due(&conn, now, 10)
                .unwrap()
                .into_iter()
                .map(|q| q.mail.id)
                .collect()
        };
        assert_eq!(ids(101), ["a", "b"]);
        assert_eq!(due(&conn, 101, 10).unwrap()[0].mail, mail("a", 100));
        postpone(&conn, "a", 200, "connection refused").unwrap();
        assert_eq!(ids(150), ["b"]);
        assert_eq!(due(&conn, 200, 10).unwrap()[1].attempts, 1);
        delete_sent(&conn, "b").unwrap();
        assert_eq!(count_waiting(&conn).unwrap(), 1);
        mark_failed(&conn, "a", 300, "550 no such user").unwrap();
        assert!(ids(1000).is_empty());
        assert_eq!(count_waiting(&conn).unwrap(), 0);
        let body: String = conn
            .query_row("SELECT text_body FROM outbox WHERE id = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(body, "");
    }
}
