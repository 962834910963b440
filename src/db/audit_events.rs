//! The `audit_events` table: security events, appended in the transaction of
//! the change they record, read a page at a time by their user and in full
//! by the operator, and pruned by `ops::cleanup` after `--audit-retention`.

use crate::db::Result;
use rusqlite::{Connection, Row, params};

/// A row to append. `detail` is a small JSON object, already serialised.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub at: i64,
    pub event: &'a str,
    pub outcome: &'a str,
    pub user_id: Option<&'a str>,
    pub email_hmac: Option<&'a [u8]>,
    pub session_id: Option<&'a str>,
    pub token_id: Option<&'a str>,
    pub address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// A stored event. `seq` orders events (it only grows) and is the cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub email_hmac: Option<Vec<u8>>,
    pub session_id: Option<String>,
    pub token_id: Option<String>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

const COLUMNS: &str = "seq, id, at, event, outcome, user_id, email_hmac, session_id, \
                       token_id, address, user_agent, detail";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        seq: r.get(0)?,
        id: r.get(1)?,
        at: r.get(2)?,
        event: r.get(3)?,
        outcome: r.get(4)?,
        user_id: r.get(5)?,
        email_hmac: r.get(6)?,
        session_id: r.get(7)?,
        token_id: r.get(8)?,
        address: r.get(9)?,
        user_agent: r.get(10)?,
        detail: r.get(11)?,
    })
}

pub fn insert(conn: &Connection, e: &NewEvent<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_events (id, at, event, outcome, user_id, email_hmac, session_id,
                                   token_id, address, user_agent, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.id,
        e.at,
        e.event,
        e.outcome,
        e.user_id,
        e.email_hmac,
        e.session_id,
        e.token_id,
        e.address,
        e.user_agent,
        e.detail
    ])?;
    Ok(())
}

/// Deletes up to `limit` events recorded at or before `before` (retention).
pub fn delete_expired(conn: &Connection, before: i64, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM audit_events WHERE seq IN
         (SELECT seq FROM audit_events WHERE at <= ?1 LIMIT ?2)",
    )?
    .execute(params![before, limit])
    .map_err(Into::into)
}

/// Up to `limit` events of `user_id` with `seq` below `before` (all when
/// `None`), newest first: one range scan of `audit_events_by_user`.
pub fn page_of_user(
    conn: &Connection,
    user_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_events
         WHERE user_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
    ))?
    .query_map(
        params![user_id, before.unwrap_or(i64::MAX), limit],
        from_row,
    )?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

/// Which events the operator asked for (`latchkey audit`).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Events of this user id, or (`email_hmac`) failed logins naming an
    /// address that has no account; both when both are given.
    pub user_id: Option<String>,
    pub email_hmac: Option<Vec<u8>>,
    /// Events at or after this time.
    pub since: Option<i64>,
}

/// Every event that passes `filter`, oldest first (as a log reads).
pub fn list(conn: &Connection, filter: &Filter) -> Result<Vec<AuditEvent>> {
    let anyone = filter.user_id.is_none() && filter.email_hmac.is_none();
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_events
         WHERE at >= ?1 AND (?2 OR user_id = ?3 OR email_hmac = ?4)
         ORDER BY seq"
    ))?
    .query_map(
        params![
            filter.since.unwrap_or(i64::MIN),
            anyone,
            filter.user_id,
            filter.email_hmac
        ],
        from_row,
    )?
    .collect::<rusqlite::Result<_>>()
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_connection;

    fn event<'a>(id: &'a str, at: i64, user_id: Option<&'a str>) -> NewEvent<'a> {
        NewEvent {
            id,
            at,
            event: "login_succeeded",
            outcome: "success",
            user_id,
            email_hmac: None,
            session_id: Some("s"),
            token_id: None,
            address: Some("127.0.0.1"),
            user_agent: Some("curl/8"),
            detail: None,
        }
    }

    #[test]
    fn pages_run_newest_first_without_gaps_or_repeats() {
        let conn = test_connection();
        let ids: Vec<String> = (0..7).map(|i| format!("e{i}")).collect();
        for id in &ids {
            // Equal times: the order comes from `seq`, not `at`.
            insert(&conn, &event(id, 100, Some("u1"))).unwrap();
            insert(&conn, &event("other", 100, Some("u2"))).unwrap();
        }
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = page_of_user(&conn, "u1", before, 3).unwrap();
            seen.extend(page.iter().map(|e| e.id.clone()));
            if page.len() < 3 {
                break;
            }
            before = page.last().map(|e| e.seq);
        }
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(seen, newest_first);
    }

    #[test]
    fn the_operator_filters_by_user_hash_and_time() {
        let conn = test_connection();
        insert(&conn, &event("a", 100, Some("u1"))).unwrap();
        insert(&conn, &event("b", 200, Some("u2"))).unwrap();
        let hash = [7u8; 32];
        let stranger = NewEvent {
            user_id: None,
            email_hmac: Some(&hash),
            ..event("c", 300, None)
        };
        insert(&conn, &stranger).unwrap();
        let ids = |f: Filter| -> Vec<String> {
            list(&conn, &f).unwrap().into_iter().map(|e| e.id).collect()
        };
        assert_eq!(ids(Filter::default()), ["a", "b", "c"]);
        assert_eq!(
            ids(Filter {
                user_id: Some("u2".into()),
                ..Filter::default()
            }),
            ["b"]
        );
        assert_eq!(
            ids(Filter {
                email_hmac: Some(hash.to_vec()),
                ..Filter::default()
            }),
            ["c"]
        );
        assert_eq!(
            ids(Filter {
                since: Some(200),
                ..Filter::default()
            }),
            ["b", "c"]
        );
        let round_trip = list(&conn, &Filter::default()).unwrap().remove(2);
        assert_eq!(round_trip.email_hmac.as_deref(), Some(&hash[..]));
        assert_eq!(round_trip.user_agent.as_deref(), Some("curl/8"));
    }
}
