//! Mail delivery against a real SMTP server in the test process
//! (`harness::smtp`), and the `.eml` files of the default delivery:
//! `latchkey mail-test`, and the outbox sender under a relay that is down,
//! refuses, or comes back.

use crate::harness::lifecycle::{admin, metric, scrape};
use crate::harness::smtp::{Mode, SmtpServer, free_port};
use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn mail_test_delivers_through_smtp_and_prints_the_answer() {
    let smtp = SmtpServer::start(Mode::Accept);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let out = admin(
        &db,
        &["mail-test", "ops@example.com", "--smtp-url", &smtp.url()],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ops@example.com") && stdout.contains("250"),
        "{stdout}"
    );
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, ["ops@example.com"]);
    let data = &received[0].data;
    for needle in [
        "Subject: latchkey: test mail",
        "From: latchkey <latchkey@localhost>",
    ] {
        assert!(data.contains(needle), "{needle} in {data}");
    }
}

#[test]
fn mail_test_reports_a_permanent_refusal() {
    let smtp = SmtpServer::start(Mode::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let out = admin(
        &dir.path().join("l.db"),
        &["mail-test", "nobody@example.com", "--smtp-url", &smtp.url()],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("550") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(smtp.received().is_empty());
}

#[test]
fn plain_smtp_is_refused_when_the_server_offers_no_starttls() {
    // Without ?tls=none, smtp:// requires STARTTLS; this server has none, so
    // nothing may be sent in clear text.
    let smtp = SmtpServer::start(Mode::Accept);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("smtp://ops:hunter2222@{}", smtp.addr);
    let out = admin(
        &dir.path().join("l.db"),
        &["mail-test", "ops@example.com", "--smtp-url", &url],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(smtp.received().is_empty());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("hunter2222"), "{all}");
}

#[test]
fn clear_text_smtp_to_a_remote_relay_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = admin(
        &dir.path().join("l.db"),
        &[
            "mail-test",
            "ops@example.com",
            "--smtp-url",
            "smtp://u:hunter2222@mail.example.com:25?tls=none",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--smtp-url") && !stderr.contains("hunter2222"),
        "{stderr}"
    );
}

#[test]
fn mail_test_without_smtp_writes_an_owner_only_eml_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = admin(
        &dir.path().join("l.db"),
        &["mail-test", "ops@example.com"],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let files = eml_files(&dir.path().join("latchkey-mail"));
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mail = std::fs::read_to_string(&files[0]).unwrap();
    assert!(mail.contains("To: ops@example.com\r\n"), "{mail}");
    assert!(text(&out.stdout).contains(files[0].to_str().unwrap()));
}

/// The `.eml` files in `dir`, oldest first (their names start with the time).
pub fn eml_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Signs up with the relay down: the answer is prompt; the verification
/// mail arrives once the relay is up, even though latchkey was restarted in
/// between (the outbox is in the database).
#[test]
fn a_mail_queued_while_the_relay_is_down_arrives_after_a_restart() {
    let relay = free_port();
    let url = format!("smtp://{relay}?tls=none");
    let dir = tempfile::tempdir().unwrap();
    let email = unique_email("down");
    {
        let srv = Server::builder()
            .db_dir(dir.path())
            .args(&["--smtp-url", &url])
            .start();
        let started = std::time::Instant::now();
        sign_up(&srv, &email, PASSWORD, NAME);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "sign-up waited on the relay: {:?}",
            started.elapsed()
        );
        // The sender has tried and failed at least once.
        assert!(poll_until(Duration::from_secs(10), || srv
            .log()
            .contains("not delivered")));
        let exposition = scrape(&srv);
        assert_eq!(
            metric(&exposition, "latchkey_mails_queued"),
            1.0,
            "{exposition}"
        );
        srv.stop();
    }
    let smtp = SmtpServer::start_on(relay, Mode::Accept);
    let srv = Server::builder()
        .db_dir(dir.path())
        .args(&["--smtp-url", &url])
        .start();
    assert!(
        poll_until(Duration::from_secs(20), || !smtp.received().is_empty()),
        "the queued mail never arrived\n{}",
        srv.log()
    );
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec![email]);
    assert!(received[0].data.contains("/account/verify-email?token="));
    // The relay has it; the sender records that just after the relay's answer.
    assert!(poll_until(Duration::from_secs(5), || {
        let exposition = scrape(&srv);
        metric(&exposition, "latchkey_mails_queued") == 0.0
            && metric(&exposition, r#"latchkey_mails_total{outcome="sent"}"#) == 1.0
    }));
}

/// A relay that answers 5xx is not asked again: the mail is marked failed
/// and counted.
#[test]
fn a_permanent_refusal_marks_the_mail_failed_without_retrying() {
    let smtp = SmtpServer::start(Mode::Refuse);
    let srv = Server::with_args(&["--smtp-url", &smtp.url()]);
    sign_up(&srv, &unique_email("refused"), PASSWORD, NAME);
    assert!(poll_until(Duration::from_secs(10), || {
        metric(&scrape(&srv), r#"latchkey_mails_total{outcome="failed"}"#) == 1.0
    }));
    // Several sender polls later, the relay has still been asked only once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.recipients_seen(), 1);
    assert_eq!(metric(&scrape(&srv), "latchkey_mails_queued"), 0.0);
    let conn = crate::harness::lifecycle::open_db(&srv.db);
    let (attempts, failed_at, error): (i64, Option<i64>, String) = conn
        .query_row(
            "SELECT attempts, failed_at, last_error FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(attempts, 1);
    assert!(failed_at.is_some());
    assert!(error.contains("550"), "{error}");
}
