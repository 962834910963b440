//! What the account-lifecycle and operations tests share: the test's own view
//! of the server's database file (to count rows or move an expiry into the
//! past), the admin subcommands run as subprocesses, private tokens, and
//! reading `/metrics`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::http::Response;
use super::jwt::now;
use super::server::{BIN, Server};

/// How long an admin command may run before the test gives up on it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// Opens the database a server (or a backup) lives in, beside the service;
/// a write waits for the service's lock as the admin commands do.
pub fn open_db(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open the test's database file");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// `SELECT count(*)` of a table's rows matching `filter` (an SQL condition
/// with one `?1`).
pub fn count_rows(conn: &Connection, table: &str, filter: &str, value: &str) -> i64 {
    conn.query_row(
        &format!("SELECT count(*) FROM {table} WHERE {filter}"),
        params![value],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("count {table} where {filter}: {e}"))
}

/// Moves the expiry of a session and its refresh tokens an hour into the past.
pub fn expire_session(conn: &Connection, session_id: &str) {
    let past = now() - 3600;
    let n = conn
        .execute(
            "UPDATE sessions SET expires_at = ?2 WHERE id = ?1",
            params![session_id, past],
        )
        .unwrap();
    assert_eq!(n, 1, "no session {session_id}");
    conn.execute(
        "UPDATE refresh_tokens SET expires_at = ?2 WHERE session_id = ?1",
        params![session_id, past],
    )
    .unwrap();
}

/// Moves a private token's expiry an hour into the past (beyond any leeway).
pub fn expire_private_token(conn: &Connection, token_id: &str) {
    let n = conn
        .execute(
            "UPDATE private_tokens SET expires_at = ?2 WHERE id = ?1",
            params![token_id, now() - 3600],
        )
        .unwrap();
    assert_eq!(n, 1, "no private token {token_id}");
}

/// Runs `latchkey ARGS` to completion with `stdin` as its standard input and
/// a clean `LATCHKEY_*` environment; kills it after a deadline.
pub fn run_latchkey(args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn latchkey");
    let pid = child.id();
    let mut input = child.stdin.take().expect("stdin");
    // A command that never reads its input must not block the test.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_DEADLINE) {
        Ok(output) => output.expect("wait for latchkey"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("latchkey {args:?} did not exit within {COMMAND_DEADLINE:?}");
        }
    }
}

/// Runs an admin subcommand against `db`; asserts exit 0 and returns stdout.
pub fn admin_ok(db: &Path, args: &[&str], stdin: &str) -> String {
    let output = admin(db, args, stdin);
    assert_eq!(
        output.status.code(),
        Some(0),
        "latchkey {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs `latchkey ARGS --db DB`.
pub fn admin(db: &Path, args: &[&str], stdin: &str) -> Output {
    let mut all = args.to_vec();
    all.extend(["--db", db.to_str().expect("UTF-8 path")]);
    run_latchkey(&all, stdin)
}

/// The value of one series of a `/metrics` exposition (`name{labels}` exactly
/// as written there), or 0 when the series is absent (a counter not yet
/// incremented).
pub fn metric(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            value.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0.0)
}

/// `GET /metrics`; asserts 200 and the OpenMetrics content type.
pub fn scrape(srv: &Server) -> String {
    let resp: Response = srv.get("/metrics").send();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let content_type = resp.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text")
            || content_type.starts_with("text/plain"),
        "/metrics Content-Type {content_type:?}"
    );
    let text = resp.text();
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics text: {text}");
    text
}
