//! The audit log (API.md "Audit log"): each security event appears after its
//! action with the session, client address (after `--trusted-proxy`) and
//! User-Agent of the request; `GET /account/events/` shows a user their own
//! events only, newest first, in pages without gaps or repeats; no password,
//! token or stranger's email reaches the log, the database or its WAL;
//! retention prunes; `latchkey audit` reads a live database.

use serde_json::{Value, json};

use crate::harness::lifecycle::{admin, admin_ok, metric, scrape};
use crate::harness::tokens::{issue_private_token, post_revoke, rfc3339_of};
use crate::harness::*;

/// The client every request of these tests claims to be, behind the proxy
/// 127.0.0.1 (the test itself).
const CLIENT: &str = "203.0.113.9";
const AGENT: &str = "audit-test/1.0 (contract)";

/// A request as that client sends it through the proxy.
fn via_proxy(request: Request) -> Request {
    request
        .header("User-Agent", AGENT)
        .header("X-Forwarded-For", CLIENT)
}

fn proxied_server(extra: &[&str]) -> Server {
    let mut args = vec!["--trusted-proxy", "127.0.0.1"];
    args.extend_from_slice(extra);
    Server::with_args(&args)
}

fn sign_up_via_proxy(srv: &Server, tag: &str) -> Account {
    let email = unique_email(tag);
    let resp = via_proxy(srv.post("/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": NAME}))
        .send();
    assert_eq!(resp.status, 201, "{}", resp.text());
    Account {
        email,
        password: PASSWORD.into(),
        user: resp.json()["user"].clone(),
    }
}

fn log_in_via_proxy(srv: &Server, email: &str, password: &str) -> Response {
    via_proxy(srv.post("/login/"))
        .json(&json!({"email": email, "password": password}))
        .send()
}

fn session_via_proxy(srv: &Server, account: &Account) -> Tokens {
    let resp = log_in_via_proxy(srv, &account.email, &account.password);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let text = |k: &str| body[k].as_str().expect(k).to_string();
    Tokens {
        access: text("access_token"),
        refresh: text("refresh_token"),
        session_id: text("session_id"),
        user: body["user"].clone(),
        body: body.clone(),
    }
}

/// One page of `GET /account/events/`, asserting 200 and the shape.
fn events_page(srv: &Server, access: &str, before: Option<&str>) -> Value {
    let path = match before {
        Some(cursor) => format!("/account/events/?before={cursor}"),
        None => "/account/events/".to_string(),
    };
    let resp = srv.get(&path).bearer(access).send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_keys(&body, &["events", "next"]);
    for e in body["events"].as_array().expect("events") {
        assert_keys(
            e,
            &["address", "at", "event", "id", "session_id", "user_agent"],
        );
        assert!(is_uuid(e["id"].as_str().unwrap()), "{e}");
        assert!(is_rfc3339_utc(e["at"].as_str().unwrap()), "{e}");
    }
    body
}

/// Every event of the caller, following `next` to the last page.
fn all_events(srv: &Server, access: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = events_page(srv, access, before.as_deref());
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => before = Some(next.to_string()),
            None => return events,
        }
    }
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// The event named `name` (the newest, as events come newest first).
fn find<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:#?}"))
}

#[test]
fn each_action_records_its_event_with_its_request() {
    let srv = proxied_server(&["--rotate-refresh-tokens"]);
    let account = sign_up_via_proxy(&srv, "audited");
    let user_id = account.user["id"].as_str().unwrap().to_string();
    let wrong = log_in_via_proxy(&srv, &account.email, "not the password at all");
    assert_error(&wrong, 401, "invalid_credentials");

    // Private tokens: created, rotated, revoked (by id and by RFC 7009).
    let main = session_via_proxy(&srv, &account);
    let create = |name: &str| {
        let resp = via_proxy(srv.post("/tokens/"))
            .bearer(&main.access)
            .json(&json!({"name": name, "expires_in": 3600}))
            .send();
        assert_eq!(resp.status, 201, "{}", resp.text());
        let body = resp.json();
        let text = |k: &str| body[k].as_str().unwrap().to_string();
        (text("id"), text("token"))
    };
    let (first, _) = create("ci");
    let resp = via_proxy(srv.post(&format!("/tokens/{first}/rotate")))
        .bearer(&main.access)
        .send();
    assert_eq!(resp.status, 201, "{}", resp.text());
    let rotated = resp.json()["id"].as_str().unwrap().to_string();
    let resp = via_proxy(srv.request("DELETE", &format!("/tokens/{rotated}")))
        .bearer(&main.access)
        .send();
    assert_eq!(resp.status, 204);
    let (_, leaked) = create("leaked");
    assert_eq!(post_revoke(&srv, &leaked).status, 200);

    // Refresh-token reuse: A → B → C, then A again ends the session.
    let reused = session_via_proxy(&srv, &account);
    let b = refresh(&srv, &reused.refresh).json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(refresh(&srv, &b).status, 200);
    let resp = via_proxy(srv.post("/refresh/"))
        .json(&json!({"refresh_token": reused.refresh}))
        .send();
    assert_error(&resp, 400, "invalid_refresh_token");

    // Sessions: one deleted from another, one logged out, then all.
    let other = session_via_proxy(&srv, &account);
    let resp = via_proxy(srv.request("DELETE", &format!("/sessions/{}", other.session_id)))
        .bearer(&main.access)
        .send();
    assert_eq!(resp.status, 204);
    let leaving = session_via_proxy(&srv, &account);
    let resp = via_proxy(srv.post("/logout/"))
        .json(&json!({"refresh_token": leaving.refresh}))
        .send();
    assert_eq!(resp.status, 204);
    let resp = via_proxy(srv.post("/logout/all/"))
        .bearer(&main.access)
        .send();
    assert_eq!(resp.status, 204);

    // The password, from a fresh session (the change ends every session).
    let changing = session_via_proxy(&srv, &account);
    let resp = via_proxy(srv.post("/password/"))
        .bearer(&changing.access)
        .json(&json!({"current_password": PASSWORD, "new_password": "a new and long passphrase 9"}))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let account = Account {
        password: "a new and long passphrase 9".into(),
        ..account
    };
    let reader = session_via_proxy(&srv, &account);

    let events = all_events(&srv, &reader.access);
    assert_eq!(
        names(&events),
        [
            "login_succeeded",
            "password_changed",
            "login_succeeded",
            "session_ended",
            "logout",
            "login_succeeded",
            "session_ended",
            "login_succeeded",
            "refresh_reuse_detected",
            "login_succeeded",
            "private_token_revoked",
            "private_token_created",
            "private_token_revoked",
            "private_token_rotated",
            "private_token_created",
            "login_succeeded",
            "login_failed",
            "sign_up",
        ],
        "{events:#?}"
    );
    for e in &events {
        // Every event but the RFC 7009 revocation (sent without the proxy
        // headers) comes from the client behind the trusted proxy.
        if e["event"] == "private_token_revoked" && e["session_id"].is_null() {
            assert_eq!(e["address"], "127.0.0.1", "{e}");
            continue;
        }
        assert_eq!(e["address"], CLIENT, "{e}");
        assert_eq!(e["user_agent"], AGENT, "{e}");
    }
    let session_of = |name: &str| find(&events, name)["session_id"].clone();
    assert_eq!(session_of("login_succeeded"), reader.session_id.as_str());
    assert_eq!(session_of("password_changed"), changing.session_id.as_str());
    assert_eq!(session_of("logout"), leaving.session_id.as_str());
    assert_eq!(
        session_of("refresh_reuse_detected"),
        reused.session_id.as_str()
    );
    assert_eq!(
        session_of("private_token_rotated"),
        main.session_id.as_str()
    );
    assert_eq!(session_of("sign_up"), Value::Null);
    assert_eq!(session_of("login_failed"), Value::Null);
    let ended: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "session_ended")
        .map(|e| &e["session_id"])
        .collect();
    assert_eq!(ended, [&json!(main.session_id), &json!(other.session_id)]);

    // The operator's view has what the user's leaves out: outcome, token, detail.
    let lines = audit_json(&srv, &["--user", &account.email]);
    assert_eq!(lines.len(), events.len());
    let line = |name: &str| lines.iter().rev().find(|l| l["event"] == name).unwrap();
    assert_eq!(line("login_failed")["outcome"], "failure");
    assert_eq!(line("login_failed")["user_id"], user_id.as_str());
    assert_eq!(line("private_token_rotated")["token_id"], rotated.as_str());
    assert_eq!(
        line("private_token_rotated")["detail"]["replaces"],
        first.as_str()
    );
    assert_eq!(line("session_ended")["detail"]["reason"], "logout_all");

    // Account deletion: the user can no longer read it, the operator can.
    let resp = via_proxy(srv.request("DELETE", "/profile/"))
        .bearer(&reader.access)
        .json(&json!({"password": account.password}))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let lines = audit_json(&srv, &[]);
    let deleted = lines.last().unwrap();
    assert_eq!(deleted["event"], "account_deleted");
    assert_eq!(deleted["user_id"], user_id.as_str());
    assert_eq!(deleted["session_id"], reader.session_id.as_str());

    let exposition = scrape(&srv);
    assert_eq!(
        metric(
            &exposition,
            r#"latchkey_audit_events_total{event="login_succeeded"}"#
        ),
        6.0
    );
    assert_eq!(
        metric(
            &exposition,
            r#"latchkey_audit_events_total{event="account_deleted"}"#
        ),
        1.0
    );
}

#[test]
fn refused_logins_are_recorded_once_per_block_and_strangers_only_as_a_hash() {
    let srv = proxied_server(&["--login-max-failures", "2", "--login-window", "600"]);
    let account = sign_up_via_proxy(&srv, "guessed");
    for _ in 0..2 {
        let resp = log_in_via_proxy(&srv, &account.email, "wrong wrong wrong");
        assert_error(&resp, 401, "invalid_credentials");
    }
    // A flood of refusals writes one event, not one per request.
    for _ in 0..5 {
        assert_error(
            &log_in_via_proxy(&srv, &account.email, PASSWORD),
            429,
            "too_many_requests",
        );
    }
    let stranger = unique_email("Stranger");
    let resp = srv
        .post("/login/")
        .header("X-Forwarded-For", "198.51.100.20")
        .json(&json!({"email": stranger, "password": "whatever it is"}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");

    let mine = audit_json(&srv, &["--user", &account.email]);
    let mine: Vec<&str> = mine.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        mine,
        ["sign_up", "login_failed", "login_failed", "login_throttled"]
    );
    // The stranger's attempt names no user; the operator finds it by the
    // address, in any case, through its keyed hash.
    let theirs = audit_json(&srv, &["--user", &stranger.to_uppercase()]);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["event"], "login_failed");
    assert_eq!(theirs[0]["user_id"], Value::Null);
    assert_eq!(theirs[0]["email"], Value::Null);
    assert_eq!(theirs[0]["email_hmac"].as_str().map(str::len), Some(64));
    assert_eq!(theirs[0]["address"], "198.51.100.20");
}

#[test]
fn a_user_sees_only_their_own_events() {
    let srv = Server::start();
    let (ada, ada_tokens) = new_session(&srv, "ada");
    let (bob, bob_tokens) = new_session(&srv, "bob");
    let ada_events = all_events(&srv, &ada_tokens.access);
    let bob_events = all_events(&srv, &bob_tokens.access);
    assert_eq!(names(&ada_events), ["login_succeeded", "sign_up"]);
    assert_eq!(names(&bob_events), ["login_succeeded", "sign_up"]);
    assert_eq!(ada_events[0]["session_id"], ada_tokens.session_id.as_str());
    assert_eq!(bob_events[0]["session_id"], bob_tokens.session_id.as_str());
    // Bob's failed login is Bob's, whoever typed it.
    let resp = srv
        .post("/login/")
        .json(&json!({"email": bob.email, "password": ada.password + "x"}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    assert_eq!(all_events(&srv, &ada_tokens.access).len(), 2);
    assert_eq!(all_events(&srv, &bob_tokens.access).len(), 3);
}

#[test]
fn pages_have_no_gaps_or_repeats_even_with_equal_times() {
    let srv = Server::start();
    let (account, tokens) = new_session(&srv, "pager");
    let user_id = account.user["id"].as_str().unwrap();
    // 120 more events in the same second, interleaved with another user's
    // (the test owns the file).
    let conn = srv.sql_conn();
    let at = now();
    for i in 0..120 {
        for user in [user_id, "someone-else"] {
            conn.execute(
                "INSERT INTO audit_events (id, at, event, outcome, user_id)
                 VALUES (lower(hex(randomblob(4))) || '-0000-4000-8000-' || ?1, ?2, 'logout', 'success', ?3)",
                rusqlite::params![format!("{i:012}"), at, user],
            )
            .unwrap();
        }
    }
    let first = events_page(&srv, &tokens.access, None);
    assert_eq!(first["events"].as_array().unwrap().len(), 50);
    let next = first["next"].as_str().expect("a next page").to_string();
    // An event written between two page reads lands before the first page,
    // never shifting the pages already under way.
    let resp = srv.post("/logout/all/").bearer(&tokens.access).send();
    assert_eq!(resp.status, 204);
    let tokens = log_in(&srv, &account.email, PASSWORD);
    let second = events_page(&srv, &tokens.access, Some(&next));
    assert_eq!(second["events"].as_array().unwrap().len(), 50);
    let third = events_page(&srv, &tokens.access, second["next"].as_str());
    assert_eq!(third["events"].as_array().unwrap().len(), 22);
    assert_eq!(third["next"], Value::Null);
    let mut ids: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["events"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 122);
    let stored: i64 = srv
        .sql_i64(
            "SELECT count(*) FROM audit_events WHERE user_id = ?1",
            [user_id],
        )
        .unwrap();
    assert_eq!(stored, 124, "two more since the first page");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 122, "an event was repeated");
    // The newest page now starts with the events written meanwhile.
    let newest = events_page(&srv, &tokens.access, None);
    assert_eq!(
        names(newest["events"].as_array().unwrap())[..2],
        ["login_succeeded", "session_ended"]
    );
    // A cursor is only what `next` gave.
    for junk in ["abc", "-1", "e", "e1%20OR%201=1"] {
        let resp = srv
            .get(&format!("/account/events/?before={junk}"))
            .bearer(&tokens.access)
            .send();
        assert_validation_error(&resp, &["before"]);
    }
}

#[test]
fn only_a_login_access_token_reads_events() {
    let srv = Server::start();
    let (_, tokens) = new_session(&srv, "scripted");
    let private = issue_private_token(&srv, &tokens.access, "script", 3600);
    let resp = srv.get("/account/events/").bearer(&private.token).send();
    assert_error(&resp, 403, "permission_denied");
    assert_error(&srv.get("/account/events").send(), 401, "not_authenticated");
    let resp = srv.post("/account/events/").bearer(&tokens.access).send();
    assert_error(&resp, 405, "method_not_allowed");
}

#[test]
fn no_password_token_or_strangers_email_is_stored_or_logged() {
    let srv = Server::with_args(&["--rotate-refresh-tokens"]);
    let password = "Zebra-Quartz-Mnemonic-4417";
    let account = new_account(&srv, "secretive");
    let resp = srv
        .post("/password/")
        .bearer(&log_in(&srv, &account.email, PASSWORD).access)
        .json(&json!({"current_password": PASSWORD, "new_password": password}))
        .send();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let tokens = log_in(&srv, &account.email, password);
    let wrong = "Wrong-Horse-Unlikely-9931";
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": wrong}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    let stranger = "nobody-knows-me-7731@stranger.test";
    let resp = srv
        .post("/login/")
        .json(&json!({"email": stranger, "password": wrong}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    let private = issue_private_token(&srv, &tokens.access, "secret-holder", 3600);
    let successor = refresh(&srv, &tokens.refresh).json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post_revoke(&srv, &private.token).status, 200);
    let resp = srv
        .post("/logout/")
        .json(&json!({"refresh_token": successor}))
        .send();
    assert_eq!(resp.status, 204);
    assert!(all_events_in_db(&srv) >= 8);

    let device = tokens.body["device_token"]
        .as_str()
        .expect("a device token");
    let secrets = [
        password,
        wrong,
        PASSWORD,
        stranger,
        &tokens.access,
        &tokens.refresh,
        &successor,
        &private.token,
        device,
    ];
    // The WAL holds the recent writes before a checkpoint: search both files
    // while the service runs, then the log once it has stopped.
    let wal = srv.db.with_extension("db-wal");
    assert!(wal.exists(), "no WAL beside {}", srv.db.display());
    // The search finds what is meant to be stored: the account's address.
    let holds = |needle: &str| {
        [&srv.db, &wal].iter().any(|f| {
            let bytes = std::fs::read(f).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
    };
    assert!(
        holds(&account.email),
        "the search cannot find a stored email"
    );
    for file in [&srv.db, &wal] {
        let bytes = std::fs::read(file).unwrap();
        for secret in secrets {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|w| w.eq_ignore_ascii_case(secret.as_bytes())),
                "{} holds {secret:?}",
                file.display()
            );
        }
    }
    let log = srv.stop();
    for secret in secrets {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
}

fn all_events_in_db(srv: &Server) -> i64 {
    srv.sql_i64("SELECT count(*) FROM audit_events", [])
        .unwrap()
}

#[test]
fn retention_prunes_old_events() {
    let srv = Server::with_args(&["--audit-retention", "86400"]);
    let (account, tokens) = new_session(&srv, "retained");
    let user_id = account.user["id"].as_str().unwrap();
    // The sign-up is two days old now, the login an hour.
    srv.sql_execute(
        "UPDATE audit_events SET at = at - 172800 WHERE event = 'sign_up' AND user_id = ?1",
        [user_id],
    );
    srv.sql_execute(
        "UPDATE audit_events SET at = at - 3600 WHERE event = 'login_succeeded' AND user_id = ?1",
        [user_id],
    );
    // `latchkey cleanup` keeps events as long as the service last started does.
    let out = admin_ok(&srv.db, &["cleanup"], "");
    assert!(out.contains("audit_events: 1 removed"), "{out}");
    assert_eq!(
        names(&all_events(&srv, &tokens.access)),
        ["login_succeeded"]
    );
    // A retention given to the command wins.
    let out = admin_ok(&srv.db, &["cleanup", "--audit-retention", "60"], "");
    assert!(out.contains("audit_events: 1 removed"), "{out}");
    assert!(all_events(&srv, &tokens.access).is_empty());
    let bad = admin(&srv.db, &["cleanup", "--audit-retention", "0"], "");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_cleanup_thread_prunes_old_events() {
    let srv = Server::with_args(&["--audit-retention", "3600", "--cleanup-interval", "1"]);
    let (account, _) = new_session(&srv, "swept");
    let user_id = account.user["id"].as_str().unwrap().to_string();
    srv.sql_execute(
        "UPDATE audit_events SET at = at - 7200 WHERE event = 'sign_up' AND user_id = ?1",
        [&user_id],
    );
    let count = || {
        srv.sql_i64(
            "SELECT count(*) FROM audit_events WHERE user_id = ?1",
            [&user_id],
        )
        .unwrap()
    };
    let removed = || {
        metric(
            &scrape(&srv),
            r#"latchkey_cleanup_rows_removed_total{table="audit_events"}"#,
        )
    };
    assert!(
        poll_until(std::time::Duration::from_secs(10), || removed() >= 1.0),
        "the old event was not pruned"
    );
    assert_eq!(count(), 1);
}

/// `latchkey audit --json ARGS` on the server's live database: one JSON
/// object per line.
fn audit_json(srv: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    admin_ok(&srv.db, &all, "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_audit_command_reads_a_live_database() {
    let srv = Server::start();
    let (ada, _) = new_session(&srv, "ada");
    let (_bob, _) = new_session(&srv, "bob");
    let lines = audit_json(&srv, &[]);
    assert_eq!(lines.len(), 4);
    for l in &lines {
        assert_keys(
            l,
            &[
                "address",
                "at",
                "detail",
                "email",
                "email_hmac",
                "event",
                "id",
                "outcome",
                "session_id",
                "token_id",
                "user_agent",
                "user_id",
            ],
        );
    }
    let ada_lines = audit_json(&srv, &["--user", &ada.email]);
    assert_eq!(ada_lines.len(), 2);
    assert!(ada_lines.iter().all(|l| l["email"] == ada.email.as_str()));
    assert_eq!(ada_lines[0]["event"], "sign_up", "oldest first");
    // --since: nothing is newer than a minute from now.
    let later = rfc3339_in(60);
    assert!(audit_json(&srv, &["--since", &later]).is_empty());
    let earlier = rfc3339_in(-60);
    assert_eq!(audit_json(&srv, &["--since", &earlier]).len(), 4);
    // The readable table names the columns and each event.
    let table = admin_ok(&srv.db, &["audit"], "");
    assert!(table.starts_with("AT"), "{table}");
    assert!(
        table.contains("login_succeeded") && table.contains(&ada.email),
        "{table}"
    );
    assert!(table.trim_end().ends_with("4 event(s)"), "{table}");
    let bad = admin(&srv.db, &["audit", "--since", "yesterday"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));
}

fn rfc3339_in(seconds: i64) -> String {
    rfc3339_of(now() + seconds)
}

#[test]
fn the_operators_changes_are_recorded() {
    let srv = Server::start();
    let (account, _) = new_session(&srv, "administered");
    let user_id = account.user["id"].as_str().unwrap().to_string();
    admin_ok(
        &srv.db,
        &["users", "set-password", &account.email],
        "an operator chose this one 5\n",
    );
    let rotated = admin_ok(&srv.db, &["keys", "rotate"], "");
    let kid = srv
        .sql_conn()
        .query_row(
            "SELECT kid FROM signing_keys ORDER BY created_at DESC, rowid DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert!(rotated.contains(&kid), "{rotated} vs {kid}");
    admin_ok(&srv.db, &["keys", "revoke", &kid], "");
    admin_ok(&srv.db, &["users", "delete", &account.email], "");
    let lines = audit_json(&srv, &[]);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "sign_up",
            "login_succeeded",
            "admin_password_set",
            "admin_key_rotated",
            "admin_key_revoked",
            "admin_user_deleted"
        ]
    );
    assert_eq!(lines[2]["user_id"], user_id.as_str());
    assert_eq!(lines[2]["detail"]["sessions_ended"], 1);
    assert_eq!(lines[3]["detail"]["kid"], kid.as_str());
    assert_eq!(lines[4]["detail"]["kid"], kid.as_str());
    assert_eq!(lines[5]["user_id"], user_id.as_str());
    for l in &lines[2..] {
        assert_eq!(l["address"], Value::Null, "{l}");
    }
    // The service never wrote these, so only what it wrote is counted.
    let exposition = scrape(&srv);
    assert_eq!(
        metric(
            &exposition,
            r#"latchkey_audit_events_total{event="admin_user_deleted"}"#
        ),
        0.0
    );
}
