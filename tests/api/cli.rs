//! The command line: `--help`, `--version`, exit status 2 with a one-line message
//! naming a bad flag or value, `LATCHKEY_*` variables (a flag beats its variable),
//! `latchkey` without `serve`, SIGINT and SIGTERM, and a restart on the same
//! database that keeps accounts, keys and sessions.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::*;

/// Runs the binary to completion (at most 10 s) with a clean `LATCHKEY_*`
/// environment plus `envs`.
fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd.envs(envs.iter().copied());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn latchkey");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(output) => output.expect("wait for latchkey"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("latchkey {args:?} did not exit within 10 s");
        }
    }
}

/// Asserts exit status 2 and one line on stderr that contains `names`.
fn assert_usage_error(output: &Output, names: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit status for a bad flag; stderr: {stderr}"
    );
    let message = stderr.trim();
    assert_eq!(message.lines().count(), 1, "not one line: {message:?}");
    assert!(
        names.iter().any(|name| message.contains(name)),
        "{message:?} does not name any of {names:?}"
    );
    assert!(
        output.stdout.is_empty()
            || !String::from_utf8_lossy(&output.stdout).contains("listening on"),
        "a bad flag still started the service"
    );
}

#[test]
fn help_and_version() {
    let output = run(&["--help"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "serve",
        "--listen",
        "--db",
        "--access-ttl",
        "--max-connections",
        "--jwks-max-age",
        "keys revoke KID",
        "[3600]",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let output = run(&["--version"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "--version: {version:?}"
    );
}

#[test]
fn a_bad_flag_or_value_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    let db = db.to_str().unwrap();
    let base = ["serve", "--listen", "127.0.0.1:0", "--db", db];
    let cases: &[(&[&str], &[&str])] = &[
        (&["--no-such-flag"], &["--no-such-flag"]),
        (&["--access-ttl", "soon"], &["--access-ttl"]),
        (&["--access-ttl", "-5"], &["--access-ttl"]),
        (&["--leeway", "61"], &["--leeway"]),
        (
            &["--expired-token-status", "418"],
            &["--expired-token-status"],
        ),
        (&["--threads", "many"], &["--threads"]),
        (&["--idle-timeout", "x"], &["--idle-timeout"]),
        (&["--request-timeout", ""], &["--request-timeout"]),
        (&["--max-connections", "-1"], &["--max-connections"]),
        (&["--refresh-ttl", "1.5"], &["--refresh-ttl"]),
        (&["--access-ttl"], &["--access-ttl"]),
        // Out of range: once wrapped negative, now refused (issue 10).
        (
            &["--refresh-ttl", "9223372036854775807"],
            &["--refresh-ttl"],
        ),
        (
            &["--refresh-ttl", "99999999999999999999"],
            &["--refresh-ttl"],
        ),
        (&["--refresh-ttl", "315360001"], &["--refresh-ttl"]),
        (
            &["--max-private-token-ttl", "1000000000000"],
            &["--max-private-token-ttl"],
        ),
        (&["--jwks-max-age", "-1"], &["--jwks-max-age"]),
        (&["--idle-timeout", "0"], &["--idle-timeout"]),
        (&["--threads", "100000"], &["--threads"]),
        (&["--trusted-proxy", "10.0.0.0/33"], &["--trusted-proxy"]),
        (&["--trusted-proxy", "::/129"], &["--trusted-proxy"]),
        (&["--trusted-proxy", "proxy"], &["--trusted-proxy"]),
    ];
    for (extra, names) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let output = run(&args, &[]);
        assert_usage_error(&output, names);
    }
    let output = run(&["serve", "--listen", "not-an-address", "--db", db], &[]);
    assert_usage_error(&output, &["--listen"]);
    let output = run(&["no-such-command", "--db", db], &[]);
    assert_usage_error(&output, &["no-such-command"]);
}

#[test]
fn a_bad_environment_value_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        db.to_str().unwrap(),
    ];
    let output = run(&args, &[("LATCHKEY_ACCESS_TTL", "soon")]);
    assert_usage_error(&output, &["LATCHKEY_ACCESS_TTL", "--access-ttl"]);
    let output = run(&args, &[("LATCHKEY_REFRESH_TTL", "9223372036854775807")]);
    assert_usage_error(&output, &["LATCHKEY_REFRESH_TTL"]);
    let output = run(&args, &[("LATCHKEY_EXPIRED_TOKEN_STATUS", "500")]);
    assert_usage_error(
        &output,
        &["LATCHKEY_EXPIRED_TOKEN_STATUS", "--expired-token-status"],
    );
}

#[test]
fn environment_variables_configure_and_flags_beat_them() {
    let srv = Server::builder()
        .env("LATCHKEY_ACCESS_TTL", "120")
        .env("LATCHKEY_ISSUER", "https://env.example.test")
        .start();
    let (_, tokens) = new_session(&srv, "env");
    assert_eq!(tokens.body["expires_in"], 120);
    assert_eq!(
        decode_jwt(&tokens.access).claims["iss"],
        "https://env.example.test"
    );
    drop(srv);

    let srv = Server::builder()
        .env("LATCHKEY_ACCESS_TTL", "120")
        .env("LATCHKEY_ISSUER", "https://env.example.test")
        .args(&[
            "--access-ttl",
            "300",
            "--issuer",
            "https://flag.example.test",
        ])
        .start();
    let (_, tokens) = new_session(&srv, "flag");
    assert_eq!(tokens.body["expires_in"], 300);
    assert_eq!(
        decode_jwt(&tokens.access).claims["iss"],
        "https://flag.example.test"
    );
}

#[test]
fn listen_and_db_come_from_the_environment_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-env.db");
    let srv = Server::builder()
        .without_listen_flag()
        .without_db_flag()
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env("LATCHKEY_DB", db.to_str().unwrap())
        .start();
    assert_ne!(srv.addr.port(), 0, "the real port is announced");
    assert!(srv.addr.ip().is_loopback());
    new_session(&srv, "envdb");
    assert!(db.exists(), "LATCHKEY_DB was not used");
}

#[test]
fn serve_is_the_default_command() {
    let srv = Server::builder().without_serve_word().start();
    assert_eq!(srv.get("/healthz").send().status, 200);
}

#[test]
fn sigint_stops_the_service_with_exit_0() {
    let srv = Server::start();
    new_session(&srv, "sigint");
    let (status, log) = srv.stop_with("INT");
    assert_eq!(status.code(), Some(0), "SIGINT exit: {status:?}\n{log}");
}

#[test]
fn sigterm_finishes_a_request_in_flight() {
    let srv = Server::start();
    let account = new_account(&srv, "inflight");
    let body = serde_json::json!({"email": account.email, "password": PASSWORD}).to_string();
    let head = format!(
        "POST /login/ HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    let mut conn = Conn::open(srv.addr);
    conn.set_read_timeout(Duration::from_secs(5));
    conn.write_raw(head.as_bytes()).unwrap();
    // The interim answer proves the server is reading this request.
    let interim = conn.read_one().expect("100 Continue");
    assert_eq!(interim.status, 100);
    srv.signal("TERM");
    conn.write_raw(body.as_bytes()).unwrap();
    let resp = conn
        .read_response()
        .expect("the request in flight is answered");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.json()["access_token"].is_string());
    assert!(
        conn.closed_within(Duration::from_secs(5)),
        "not closed while stopping"
    );
    let (status, log) = srv.stop_after_signal();
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn a_restart_on_the_same_database_keeps_accounts_keys_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::builder().db_dir(dir.path()).start();
    let (account, tokens) = new_session(&srv, "restart");
    let keys = jwks_keys(&srv);
    srv.stop();

    let srv = Server::builder().db_dir(dir.path()).start();
    assert_eq!(jwks_keys(&srv), keys, "the signing key survives a restart");
    let again = log_in(&srv, &account.email, &account.password);
    assert_eq!(again.user["id"], account.user["id"]);
    assert_eq!(
        get_profile(&srv, &tokens.access).status,
        200,
        "old access token"
    );
    let resp = refresh(&srv, &tokens.refresh);
    assert_eq!(resp.status, 200, "old refresh token: {}", resp.text());
    let resp = srv
        .post("/signup/")
        .json(&serde_json::json!({"email": account.email, "password": PASSWORD, "name": NAME}))
        .send();
    assert_error(&resp, 409, "email_exists");
}

#[test]
fn the_largest_leeway_is_accepted() {
    let srv = Server::with_args(&["--leeway", "60", "--expired-token-status", "401"]);
    assert_eq!(srv.get("/healthz").send().status, 200);
}
