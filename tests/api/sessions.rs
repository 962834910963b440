//! Sessions and revocation: `GET /sessions/` (newest first, `current` marking the
//! caller's own session, `user_agent` recorded at login, `last_used_at` kept in
//! memory until the flush), `DELETE /sessions/{id}` (404 for another user's), and
//! `POST /revoke` (RFC 7009): unauthenticated, always 200 `{}`, ending a refresh
//! token's session or a private token at once.

use serde_json::{Value, json};

use crate::harness::tokens::*;
use crate::harness::*;

fn assert_session_shape(session: &Value) {
    assert_keys(
        session,
        &["created_at", "current", "id", "last_used_at", "user_agent"],
    );
    assert!(is_uuid(session["id"].as_str().unwrap_or_default()));
    for key in ["created_at", "last_used_at"] {
        assert!(
            is_rfc3339_utc(session[key].as_str().unwrap_or_default()),
            "{key}: {session}"
        );
    }
    assert!(session["current"].is_boolean(), "{session}");
}

fn ids(sessions: &[Value]) -> Vec<&str> {
    sessions.iter().map(|s| s["id"].as_str().unwrap()).collect()
}

fn delete_session(srv: &Server, access: &str, id: &str) -> Response {
    srv.request("DELETE", &format!("/sessions/{id}"))
        .bearer(access)
        .send()
}

#[test]
fn sessions_are_listed_newest_first_with_current_and_user_agent() {
    let srv = Server::start();
    let account = new_account(&srv, "sessions");
    let phone = log_in_with_agent(&srv, &account.email, PASSWORD, "Phone/1.0 (Android)");
    let laptop = log_in_with_agent(&srv, &account.email, PASSWORD, "Firefox/140.0");
    let bare = log_in(&srv, &account.email, PASSWORD);
    // Creation times apart (the test owns the file): phone oldest.
    for (id, age) in [(&phone.session_id, 20), (&laptop.session_id, 10)] {
        srv.sql_execute(
            "UPDATE sessions SET created_at = created_at - ?2 WHERE id = ?1",
            rusqlite::params![id, age],
        );
    }
    for path in ["/sessions/", "/sessions"] {
        let resp = srv.get(path).bearer(&laptop.access).send();
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        let sessions = resp.json()["sessions"].as_array().unwrap().clone();
        assert_eq!(
            ids(&sessions),
            [&bare.session_id, &laptop.session_id, &phone.session_id],
            "newest first"
        );
        for session in &sessions {
            assert_session_shape(session);
        }
        let current: Vec<bool> = sessions.iter().map(|s| s["current"] == true).collect();
        assert_eq!(current, [false, true, false]);
        assert!(sessions[0]["user_agent"].is_null(), "no User-Agent sent");
        assert_eq!(sessions[1]["user_agent"], "Firefox/140.0");
        assert_eq!(sessions[2]["user_agent"], "Phone/1.0 (Android)");
        for token in [&phone, &laptop, &bare] {
            assert!(!resp.raw_text().contains(&token.refresh), "lists a secret");
        }
    }
    let sessions = list_sessions(&srv, &phone.access);
    let current: Vec<bool> = sessions.iter().map(|s| s["current"] == true).collect();
    assert_eq!(current, [false, false, true], "current follows the caller");
    // The User-Agent of a later request does not rewrite the recorded one.
    let resp = srv
        .get("/sessions/")
        .bearer(&phone.access)
        .header("User-Agent", "curl/8.0")
        .send();
    assert_eq!(
        resp.json()["sessions"][2]["user_agent"],
        "Phone/1.0 (Android)"
    );
    // Another account sees only its own.
    let (_, other) = new_session(&srv, "sessions-other");
    assert_eq!(
        ids(&list_sessions(&srv, &other.access)),
        [&other.session_id]
    );
}

#[test]
fn last_used_at_follows_use_without_a_write_per_request() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "session-used");
    // The session was last used an hour ago, as stored.
    let hour_ago = now() - 3600;
    srv.sql_execute(
        "UPDATE sessions SET created_at = ?2, last_used_at = ?2 WHERE id = ?1",
        rusqlite::params![&tokens.session_id, hour_ago],
    );
    let before = now();
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    let sessions = list_sessions(&srv, &tokens.access);
    let seen = unix_of(sessions[0]["last_used_at"].as_str().unwrap());
    assert!(seen >= before - 1 && seen <= now() + 1, "{}", sessions[0]);
    assert_eq!(
        unix_of(sessions[0]["created_at"].as_str().unwrap()),
        hour_ago
    );
    let stored = srv.sql_i64(
        "SELECT last_used_at FROM sessions WHERE id = ?1",
        [&tokens.session_id],
    );
    assert_eq!(
        stored,
        Some(hour_ago),
        "a use is not a write on the request path"
    );
}

#[test]
fn deleting_a_session_ends_it_at_once() {
    let srv = Server::start();
    let account = new_account(&srv, "session-delete");
    let old = log_in(&srv, &account.email, PASSWORD);
    let new = log_in(&srv, &account.email, PASSWORD);
    // The doomed session is in use on a keep-alive connection.
    let mut conn = Conn::open(srv.addr);
    let profile = srv.get("/profile/").bearer(&old.access);
    assert_eq!(profile.send_on(&mut conn).status, 200);

    let resp = delete_session(&srv, &new.access, &old.session_id);
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_error(&profile.send_on(&mut conn), 401, "token_not_valid");
    assert_error(&refresh(&srv, &old.refresh), 400, "invalid_refresh_token");
    assert_eq!(ids(&list_sessions(&srv, &new.access)), [&new.session_id]);
    assert_error(
        &delete_session(&srv, &new.access, &old.session_id),
        404,
        "not_found",
    );
    // Ending one's own session, with the trailing slash.
    let resp = srv
        .request("DELETE", &format!("/sessions/{}/", new.session_id))
        .bearer(&new.access)
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_error(&get_profile(&srv, &new.access), 401, "token_not_valid");
    assert_error(&refresh(&srv, &new.refresh), 400, "invalid_refresh_token");
    let refresh_rows = srv.sql_i64(
        "SELECT count(*) FROM refresh_tokens WHERE session_id IN (?1, ?2)",
        [&old.session_id, &new.session_id],
    );
    assert_eq!(refresh_rows, Some(0), "the refresh tokens went with them");
}

#[test]
fn another_users_session_is_not_found() {
    let srv = Server::start();
    let (_, ada) = new_session(&srv, "session-owner");
    let (_, eve) = new_session(&srv, "session-other");
    for id in [
        ada.session_id.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
        "1",
    ] {
        assert_error(&delete_session(&srv, &eve.access, id), 404, "not_found");
    }
    assert_eq!(get_profile(&srv, &ada.access).status, 200, "still live");
    assert_eq!(refresh(&srv, &ada.refresh).status, 200);
    assert_eq!(ids(&list_sessions(&srv, &ada.access)), [&ada.session_id]);
    // Without a token there is nothing to list or end.
    assert_error(&srv.get("/sessions/").send(), 401, "not_authenticated");
    let resp = srv
        .request("DELETE", &format!("/sessions/{}", ada.session_id))
        .send();
    assert_error(&resp, 401, "not_authenticated");
}

#[test]
fn revoke_a_refresh_token_ends_its_session() {
    let srv = Server::start();
    let account = new_account(&srv, "revoke-refresh");
    let doomed = log_in(&srv, &account.email, PASSWORD);
    let kept = log_in(&srv, &account.email, PASSWORD);
    let resp = srv
        .post("/revoke/")
        .json(&json!({"token": doomed.refresh, "token_type_hint": "refresh_token"}))
        .send();
    assert_revoked_answer(&resp);
    assert!(!resp.raw_text().contains(&doomed.refresh));
    assert_error(
        &refresh(&srv, &doomed.refresh),
        400,
        "invalid_refresh_token",
    );
    assert_error(&get_profile(&srv, &doomed.access), 401, "token_not_valid");
    assert_eq!(ids(&list_sessions(&srv, &kept.access)), [&kept.session_id]);
    assert_eq!(
        refresh(&srv, &kept.refresh).status,
        200,
        "other sessions live"
    );
    // Again: nothing left to revoke, the same answer.
    assert_revoked_answer(&post_revoke(&srv, &doomed.refresh));
}

#[test]
fn revoke_a_private_token_with_no_authentication() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "revoke-private");
    let pt = issue_private_token(&srv, &tokens.access, "leaked", 600);
    let kept = issue_private_token(&srv, &tokens.access, "kept", 600);
    assert_eq!(get_profile(&srv, &pt.token).status, 200);
    let resp = srv
        .post("/revoke")
        .json(&json!({"token": pt.token, "token_type_hint": "access_token"}))
        .send();
    assert_revoked_answer(&resp);
    assert_error(&get_profile(&srv, &pt.token), 401, "token_not_valid");
    let resp = srv
        .get(&format!("/tokens/{}", pt.id))
        .bearer(&tokens.access)
        .send();
    assert_error(&resp, 404, "not_found");
    assert_eq!(get_profile(&srv, &kept.token).status, 200);
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    assert_eq!(refresh(&srv, &tokens.refresh).status, 200);
    assert_revoked_answer(&post_revoke(&srv, &pt.token));
}

#[test]
fn revoke_always_answers_200_with_an_empty_object() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "revoke-any");
    let pt = issue_private_token(&srv, &tokens.access, "p", 600);
    let expired_pt = forge(&srv, &pt.token, |_, c| {
        c["iat"] = json!(now() - 700);
        c["exp"] = json!(now() - 600);
    });
    let altered_pt = tamper(&pt.token, pt.token.rfind('.').unwrap() + 5);
    let altered_refresh = tamper(&tokens.refresh, 10);
    let long = "x".repeat(5000);
    for token in [
        "",
        "nonsense",
        "A".repeat(43).as_str(),
        long.as_str(),
        altered_refresh.as_str(),
        altered_pt.as_str(),
        expired_pt.as_str(),
        tokens.access.as_str(),
    ] {
        let resp = post_revoke(&srv, token);
        assert_revoked_answer(&resp);
        if token.len() > 8 {
            assert!(!resp.raw_text().contains(token), "echoes the token");
        }
    }
    // Even with a bad Authorization header: revoke takes none.
    let resp = srv
        .post("/revoke")
        .header("Authorization", "Bearer nonsense")
        .json(&json!({"token": "nonsense"}))
        .send();
    assert_revoked_answer(&resp);
    // Nothing genuine was touched by the look-alikes.
    assert_eq!(get_profile(&srv, &pt.token).status, 200);
    assert_eq!(refresh(&srv, &tokens.refresh).status, 200);
    assert_error(&srv.get("/revoke").send(), 405, "method_not_allowed");
}
