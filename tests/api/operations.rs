//! Operations: the cleanup sweep (expiry moved into the past in the test's own
//! database file, swept by `--cleanup-interval 1` or `latchkey cleanup`), the
//! admin subcommands against a database a running server is using, an online
//! backup taken during a stream of signups, `/metrics` counters, the systemd
//! readiness message, and `/openapi.json`.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::lifecycle::*;
use crate::harness::tokens::issue_private_token;
use crate::harness::*;

/// How long a sweep every second may take to show.
const SWEEP_DEADLINE: Duration = Duration::from_secs(15);

#[test]
fn the_cleanup_thread_sweeps_expired_rows() {
    let srv = Server::with_args(&["--cleanup-interval", "1"]);
    let (_, expiring) = new_session(&srv, "sweep");
    let (_, living) = new_session(&srv, "live");
    let old_private = issue_private_token(&srv, &living.access, "old", 86_400);
    let live_private = issue_private_token(&srv, &living.access, "live", 86_400);
    let conn = open_db(&srv.db);
    let count = |table: &str, filter: &str, value: &str| count_rows(&conn, table, filter, value);
    assert_eq!(count("sessions", "id = ?1", &expiring.session_id), 1);

    expire_session(&conn, &expiring.session_id);
    expire_private_token(&conn, &old_private.id);
    let swept = poll_until(SWEEP_DEADLINE, || {
        count("sessions", "id = ?1", &expiring.session_id) == 0
            && count("refresh_tokens", "session_id = ?1", &expiring.session_id) == 0
            && count("private_tokens", "id = ?1", &old_private.id) == 0
    });
    assert!(swept, "expired rows were not swept\n{}", srv.log());
    assert_eq!(count("sessions", "id = ?1", &living.session_id), 1);
    assert_eq!(
        count("refresh_tokens", "session_id = ?1", &living.session_id),
        1
    );
    assert_eq!(count("private_tokens", "id = ?1", &live_private.id), 1);

    assert_error(
        &refresh(&srv, &expiring.refresh),
        400,
        "invalid_refresh_token",
    );
    assert_error(
        &get_profile(&srv, &old_private.token),
        401,
        "token_not_valid",
    );
    assert_eq!(refresh(&srv, &living.refresh).status, 200);
    assert_eq!(get_profile(&srv, &live_private.token).status, 200);

    let counted = poll_until(SWEEP_DEADLINE, || {
        let text = scrape(&srv);
        ["sessions", "private_tokens"].iter().all(|table| {
            let series = format!("latchkey_cleanup_rows_removed_total{{table=\"{table}\"}}");
            metric(&text, &series) >= 1.0
        })
    });
    assert!(counted, "cleanup counters: {}", scrape(&srv));
}

#[test]
fn the_cleanup_command_prints_what_it_removed() {
    let srv = Server::start();
    let (account, expiring) = new_session(&srv, "cleanupcmd");
    let living = log_in(&srv, &account.email, PASSWORD);
    let old_private = issue_private_token(&srv, &living.access, "old", 86_400);
    let conn = open_db(&srv.db);
    expire_session(&conn, &expiring.session_id);
    expire_private_token(&conn, &old_private.id);

    let out = admin_ok(&srv.db, &["cleanup"], "");
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "sessions: 1 removed",
        "private_tokens: 1 removed",
        "signing_keys: 0 removed",
    ] {
        assert!(lines.contains(&want), "no {want:?} in:\n{out}");
    }
    // The session's refresh token went with it (directly or by cascade).
    assert!(
        out.contains("refresh_tokens: 1 removed") || out.contains("refresh_tokens: 0 removed"),
        "{out}"
    );
    assert_eq!(
        count_rows(
            &conn,
            "refresh_tokens",
            "session_id = ?1",
            &expiring.session_id
        ),
        0
    );
    assert_eq!(
        count_rows(&conn, "sessions", "id = ?1", &living.session_id),
        1
    );
    let out = admin_ok(&srv.db, &["cleanup"], "");
    for line in out.lines() {
        assert!(
            line.ends_with(": 0 removed"),
            "a second pass removed: {out}"
        );
    }
    assert_eq!(refresh(&srv, &living.refresh).status, 200);
}

#[test]
fn admin_commands_work_beside_a_running_server() {
    let srv = Server::start();
    let db = &srv.db;
    let (account, tokens) = new_session(&srv, "admin");
    let other = new_account(&srv, "other");

    let out = admin_ok(db, &["migrate"], "");
    assert!(out.contains("schema version"), "{out}");
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);

    let out = admin_ok(db, &["keys", "list"], "");
    for key in jwks_keys(&srv) {
        let kid = key["kid"].as_str().unwrap();
        let line = out.lines().find(|l| l.contains(kid));
        assert!(
            line.is_some_and(|l| l.contains("signing")),
            "kid {kid} not listed as signing:\n{out}"
        );
    }

    let out = admin_ok(db, &["users", "list"], "");
    for email in [&account.email, &other.email] {
        assert!(out.contains(email.as_str()), "{email} not listed:\n{out}");
    }
    let out = admin_ok(db, &["users", "list", "--json"], "");
    let users: Value = serde_json::from_str(&out).expect("users list --json is JSON");
    let users = users.as_array().expect("a JSON array");
    assert_eq!(users.len(), 2, "{out}");
    let listed = users
        .iter()
        .find(|u| u["email"] == account.email.as_str())
        .unwrap_or_else(|| panic!("{} not in {out}", account.email));
    assert_eq!(listed["id"], account.user["id"]);
    assert_eq!(listed["name"], NAME);
    assert!(is_rfc3339_utc(listed["created_at"].as_str().unwrap()));
    assert!(!out.contains("argon2"), "users list shows a hash: {out}");

    // set-password: the password comes from standard input, by the same rules.
    let weak = admin(
        db,
        &["users", "set-password", &account.email],
        "password1\n",
    );
    assert_eq!(weak.status.code(), Some(1), "a common password was set");
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("common"), "{stderr}");
    assert!(
        !stderr.contains("password1"),
        "echoes the password: {stderr}"
    );
    let unknown = admin(
        db,
        &["users", "set-password", "nobody@example.test"],
        "a fine new password 1\n",
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(get_profile(&srv, &tokens.access).status, 200);
    log_in(&srv, &account.email, PASSWORD);

    let new_password = "set by the operator 2";
    let out = admin_ok(
        db,
        &["users", "set-password", &account.email],
        &format!("{new_password}\n"),
    );
    assert!(out.contains("2 session(s) ended"), "{out}");
    assert_error(&get_profile(&srv, &tokens.access), 401, "token_not_valid");
    assert_error(
        &refresh(&srv, &tokens.refresh),
        400,
        "invalid_refresh_token",
    );
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": PASSWORD}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    let fresh = log_in(&srv, &account.email, new_password);

    // delete: the user and their sessions are gone, the other user stays.
    let out = admin_ok(db, &["users", "delete", &account.email], "");
    assert!(out.contains(&account.email), "{out}");
    assert_error(&get_profile(&srv, &fresh.access), 401, "token_not_valid");
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": new_password}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    let gone = admin(db, &["users", "delete", &account.email], "");
    assert_eq!(gone.status.code(), Some(1), "deleting twice");
    let out = admin_ok(db, &["users", "list", "--json"], "");
    let users: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(users[0]["email"], other.email.as_str());
    log_in(&srv, &other.email, PASSWORD);
}

#[test]
fn a_backup_during_signups_is_whole_and_serves_logins() {
    let srv = Server::start();
    let before: Vec<Account> = (0..3)
        .map(|i| new_account(&srv, &format!("b{i}")))
        .collect();
    let backup_dir = tempfile::tempdir().unwrap();
    let dest = backup_dir.path().join("latchkey.db");

    let stop = AtomicBool::new(false);
    let during = AtomicUsize::new(0);
    let output = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                new_account(&srv, "during");
                during.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Let the stream get going, so the backup really overlaps writes.
        assert!(poll_until(Duration::from_secs(10), || {
            during.load(Ordering::Relaxed) >= 2
        }));
        let output = run_latchkey(
            &[
                "backup",
                dest.to_str().unwrap(),
                "--db",
                srv.db.to_str().unwrap(),
            ],
            "",
        );
        stop.store(true, Ordering::Relaxed);
        output
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "backup failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("integrity ok"), "{stdout}");

    let copy = open_db(&dest);
    let verdict: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    let users: i64 = copy
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(
        users >= before.len() as i64 + 2,
        "{users} users in the copy"
    );
    drop(copy);

    let restored = Server::builder().db_dir(backup_dir.path()).start();
    for account in &before {
        let tokens = log_in(&restored, &account.email, PASSWORD);
        assert_eq!(tokens.user["id"], account.user["id"]);
        assert!(verify_against_jwks(&restored, &tokens.access));
    }
    assert_eq!(
        jwks_keys(&restored),
        jwks_keys(&srv),
        "the keys were copied"
    );
}

#[test]
fn metrics_count_requests_logins_and_tokens() {
    let srv = Server::start();
    let series = |name: &str, labels: &str| format!("latchkey_{name}{{{labels}}}");
    let signups = series("http_requests_total", r#"route="sign_up",status="201""#);
    let logins_ok = series("http_requests_total", r#"route="log_in",status="200""#);
    let logins_401 = series("http_requests_total", r#"route="log_in",status="401""#);
    let success = series("logins_total", r#"outcome="success""#);
    let failure = series("logins_total", r#"outcome="failure""#);
    let access = series("tokens_issued_total", r#"kind="access""#);
    let refreshes = series("tokens_issued_total", r#"kind="refresh""#);
    let private = series("tokens_issued_total", r#"kind="private""#);
    let all = [
        &signups,
        &logins_ok,
        &logins_401,
        &success,
        &failure,
        &access,
        &refreshes,
        &private,
    ];
    let read = |text: &str| all.map(|s| metric(text, s));

    let start = scrape(&srv);
    assert!(start.contains("latchkey_password_hash_queue"), "{start}");
    assert_eq!(metric(&start, "latchkey_password_hash_queue"), 0.0);
    let before = read(&start);

    let (account, tokens) = new_session(&srv, "metrics");
    let resp = srv
        .post("/login/")
        .json(&json!({"email": account.email, "password": "wrong password 55"}))
        .send();
    assert_error(&resp, 401, "invalid_credentials");
    assert_eq!(refresh(&srv, &tokens.refresh).status, 200);
    issue_private_token(&srv, &tokens.access, "metrics", 86_400);

    let text = scrape(&srv);
    let after = read(&text);
    let moved: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    // sign_up 201, log_in 200, log_in 401, success, failure, access (login +
    // refresh), refresh, private.
    assert_eq!(
        moved,
        [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0],
        "for {all:?}\n{text}"
    );
    assert!(
        text.contains(r#"latchkey_http_request_duration_seconds_bucket{"#),
        "{text}"
    );
    // Labels are route names, never raw paths.
    assert!(!text.contains("/login"), "{text}");
    let scrapes = series("http_requests_total", r#"route="metrics",status="200""#);
    let again = scrape(&srv);
    assert!(metric(&again, &scrapes) >= 2.0, "{again}");
}

#[test]
fn readiness_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let receive = || {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification in time");
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8 notification")
    };
    let srv = Server::builder()
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start();
    let ready = receive();
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "no READY=1 in {ready:?}"
    );
    assert!(ready.contains(&srv.addr.to_string()), "{ready:?}");
    // Ready means serving.
    assert_eq!(srv.get("/healthz").send().status, 200);
    srv.stop();
    let stopping = receive();
    assert!(
        stopping.lines().any(|l| l == "STOPPING=1"),
        "no STOPPING=1 in {stopping:?}"
    );
}

#[test]
fn the_openapi_document_is_served() {
    let srv = Server::start();
    {
        let resp = srv.get("/openapi.json").send();
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(
            resp.header("Content-Type")
                .unwrap_or_default()
                .starts_with("application/json")
        );
        let doc = resp.json();
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1."), "openapi: {version:?}");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/signup/", "post"),
            ("/api/auth/register", "post"),
            ("/login/", "post"),
            ("/refresh/", "post"),
            ("/logout/", "post"),
            ("/logout/all/", "post"),
            ("/sessions/", "get"),
            ("/sessions/{id}", "delete"),
            ("/account/events/", "get"),
            ("/revoke", "post"),
            ("/tokens/", "post"),
            ("/tokens/{id}/rotate", "post"),
            ("/profile/", "put"),
            ("/profile/", "delete"),
            ("/profile/image", "delete"),
            ("/password/", "post"),
            ("/login/mfa/", "post"),
            ("/mfa/totp/", "post"),
            ("/mfa/totp/", "delete"),
            ("/mfa/totp/confirm/", "post"),
            ("/mfa/recovery-codes/", "post"),
            ("/media/avatars/{id}", "get"),
            ("/.well-known/jwks.json", "get"),
            ("/healthz", "get"),
            ("/metrics", "get"),
            ("/openapi.json", "get"),
            ("/email/verify/", "post"),
            ("/email/verify/resend/", "post"),
            ("/email/confirm/", "post"),
            ("/password/forgot/", "post"),
            ("/password/reset/", "post"),
            ("/account/verify-email", "get"),
            ("/account/reset-password", "post"),
            ("/account/confirm-email", "get"),
        ] {
            let operation = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"))[method];
            assert!(
                operation["operationId"].is_string(),
                "{method} {path}: {operation}"
            );
        }
    }
}
