//! The caller's own audit events: `GET /account/events/`, a page at a time.

use crate::app::App;
use crate::clock;
use crate::db::audit_events::{self, AuditEvent};
use crate::error::ApiError;
use crate::web::auth;
use crate::web::http;
use rouille::{Request, Response};
use serde::Serialize;

/// Events per page (the contract's 50).
pub const PAGE: usize = 50;

#[derive(Serialize)]
struct EventView {
    id: String,
    at: String,
    event: String,
    session_id: Option<String>,
    address: Option<String>,
    user_agent: Option<String>,
}

impl From<AuditEvent> for EventView {
    fn from(e: AuditEvent) -> EventView {
        EventView {
            id: e.id,
            at: clock::rfc3339(e.at),
            event: e.event,
            session_id: e.session_id,
            address: e.address,
            user_agent: e.user_agent,
        }
    }
}

#[derive(Serialize)]
struct EventsResponse {
    events: Vec<EventView>,
    /// The `before` of the next page; null on the last one.
    next: Option<String>,
}

/// `GET /account/events/[?before=NEXT]` (login access token; a private token
/// gets 403): the caller's events, newest first. The cursor is the event's
/// insertion order (`seq`), which has no ties, so paging never skips or
/// repeats an event even when several share a second; it is opaque to
/// clients. One row beyond the page is read to know whether `next` exists.
pub fn list_events(app: &App, request: &Request) -> Result<Response, ApiError> {
    let (caller, _) = auth::session_caller(app, request)?;
    let before = match request.get_param("before") {
        None => None,
        Some(cursor) => Some(parse_cursor(&cursor)?),
    };
    let mut rows =
        audit_events::page_of_user(&*app.conn()?, &caller.user_id, before, PAGE as i64 + 1)?;
    let next = if rows.len() > PAGE {
        rows.truncate(PAGE);
        rows.last().map(|e| cursor(e.seq))
    } else {
        None
    };
    let events = rows.into_iter().map(EventView::from).collect();
    Ok(http::json_response(200, &EventsResponse { events, next }))
}

/// `seq` as a cursor. Opaque by contract: clients pass it back unchanged.
fn cursor(seq: i64) -> String {
    format!("e{seq}")
}

fn parse_cursor(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .strip_prefix('e')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::field("before", "must be a `next` value of an earlier page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(parse_cursor(&cursor(42)).ok(), Some(42));
        for junk in ["", "e", "42", "e-1", "e1x", "e99999999999999999999", "e 1"] {
            assert!(parse_cursor(junk).is_err(), "{junk:?}");
        }
    }
}
