//! Unit tests of `domain::audit`, and the timing of a login's audit row.

use super::*;
use crate::db::{audit_events, test_connection};

#[test]
fn names_are_unique_snake_case() {
    let mut names: Vec<&str> = ALL.iter().map(|e| e.name()).collect();
    assert!(
        names
            .iter()
            .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    );
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ALL.len());
}

#[test]
fn an_entry_is_stored_with_every_field() {
    let conn = test_connection();
    let origin = Client {
        address: Some("10.0.0.7".parse().unwrap()),
        user_agent: Some("x".repeat(1000)),
    };
    let entry = Entry::new(Event::PrivateTokenCreated, 42, &origin)
        .user("u1")
        .session("s1")
        .token("t1")
        .detail(serde_json::json!({"name": "ci"}));
    record(&conn, &entry).unwrap();
    let stored = audit_events::list(&conn, &Default::default())
        .unwrap()
        .remove(0);
    assert_eq!(stored.event, "private_token_created");
    assert_eq!(stored.outcome, "success");
    assert_eq!(stored.at, 42);
    assert_eq!(stored.user_id.as_deref(), Some("u1"));
    assert_eq!(stored.session_id.as_deref(), Some("s1"));
    assert_eq!(stored.token_id.as_deref(), Some("t1"));
    assert_eq!(stored.address.as_deref(), Some("10.0.0.7"));
    assert_eq!(stored.user_agent.map(|u| u.len()), Some(USER_AGENT_CHARS));
    assert_eq!(stored.detail.as_deref(), Some(r#"{"name":"ci"}"#));
    assert!(ids::is_uuid(&stored.id));
}

#[test]
fn unknown_emails_are_kept_only_as_a_keyed_hash() {
    let conn = test_connection();
    let origin = Client::default();
    let entry = Entry::new(Event::LoginFailed, 1, &origin).unknown_email(b"secret", "who@x.io");
    record(&conn, &entry).unwrap();
    let stored = audit_events::list(&conn, &Default::default())
        .unwrap()
        .remove(0);
    assert_eq!(stored.outcome, "failure");
    assert_eq!(stored.user_id, None);
    assert_eq!(
        stored.email_hmac.as_deref(),
        Some(&email_hmac(b"secret", "who@x.io")[..])
    );
    assert_ne!(
        email_hmac(b"secret", "who@x.io"),
        email_hmac(b"other", "who@x.io")
    );
}

#[test]
fn one_throttled_event_per_email_and_network_per_window() {
    let notes = ThrottleNotes::new(900);
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "2001:db8::1".parse().unwrap();
    let b_neighbour: IpAddr = "2001:db8::2".parse().unwrap();
    assert!(notes.first("ada@x.io", Some(a), 0));
    assert!(!notes.first("ada@x.io", Some(a), 10));
    // A blocked email from new addresses, a blocked address with new emails.
    assert!(!notes.first("ada@x.io", Some(b), 20));
    assert!(!notes.first("bob@x.io", Some(a), 30));
    assert!(!notes.first("eve@x.io", Some(b_neighbour), 40));
    assert!(notes.first("ada@x.io", Some(a), 2000));
}

#[test]
fn refused_logins_are_recorded_within_a_daily_budget() {
    let budget = FailureBudget::default();
    let burst = (0..20_000).filter(|_| budget.take(0)).count();
    assert_eq!(burst, FAILURE_BURST as usize);
    // The budget refills at the daily rate: about 1.16 a second.
    assert!(!budget.take(0));
    let hour = (0..20_000).filter(|_| budget.take(3600)).count();
    assert_eq!(hour, (FAILURES_PER_DAY as usize * 3600) / 86_400);
    // A clock that steps back refills nothing.
    assert!(!budget.take(10));
}

#[test]
fn throttle_notes_stay_bounded() {
    let notes = ThrottleNotes::new(900);
    for i in 0..MAX_NOTES as u32 {
        notes.first(&i.to_string(), None, 0);
    }
    assert!(!notes.first("late@x.io", None, 1));
    assert!(notes.noted.lock().unwrap().len() <= MAX_NOTES);
    // Once the notes expire there is room again.
    assert!(notes.first("late@x.io", None, 1000));
}

/// What issue 12 asks: a login with its audit event costs at most 1.05
/// times a login without. A login is one argon2 verification plus one
/// write transaction (session, refresh token, and now the event); the event
/// adds to the transaction only, so this times the transaction with and
/// without it on a real file (WAL, `synchronous=FULL`: each commit is an
/// fsync), interleaved in blocks so drift hits both alike, and sets the
/// difference against a verification at the production parameters.
///
/// `cargo test --release -- --ignored --nocapture timing_login`
#[test]
#[ignore = "timing; run in release"]
fn timing_login_with_and_without_its_event() {
    use crate::db::{self, refresh_tokens, sessions};
    use crate::domain::password::Hasher;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let pool = db::open(&dir.path().join("timing.db"), 1).unwrap();
    let mut conn = pool.get().unwrap();
    db::migrate(&mut conn).unwrap();
    conn.execute(
        "INSERT INTO users (id, email, email_key, password_hash, name, created_at, updated_at)
         VALUES ('u1', 'a@x.io', 'a@x.io', 'h', 'Ada', 0, 0)",
        [],
    )
    .unwrap();
    let origin = Client {
        address: Some("203.0.113.9".parse().unwrap()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".into()),
    };
    let mut login = |audited: bool| {
        let session_id = ids::uuid();
        let refresh = ids::Secret::generate();
        db::write(&mut conn, |tx| {
            let session = sessions::NewSession {
                id: &session_id,
                user_id: "u1",
                user_agent: origin.user_agent.as_deref(),
                amr: "pwd",
                now: 100,
                expires_at: 1000,
            };
            sessions::insert(tx, &session)?;
            refresh_tokens::insert(tx, &refresh.hash(), &session_id, 100, 1000)?;
            if audited {
                let entry = Entry::new(Event::LoginSucceeded, 100, &origin)
                    .user("u1")
                    .session(&session_id);
                record(tx, &entry)?;
            }
            Ok::<_, crate::db::Error>(())
        })
        .unwrap();
    };
    let (mut without, mut with) = (Duration::ZERO, Duration::ZERO);
    let (blocks, per_block) = (10, 50);
    for _ in 0..blocks {
        for (audited, total) in [(false, &mut without), (true, &mut with)] {
            let start = Instant::now();
            for _ in 0..per_block {
                login(audited);
            }
            *total += start.elapsed();
        }
    }
    let n = blocks * per_block;
    let (without, with) = (without / n, with / n);

    let hasher = Hasher::new(1, 0);
    let stored = hasher.hash("correct horse battery staple").unwrap();
    let rounds = 10;
    let start = Instant::now();
    for _ in 0..rounds {
        hasher
            .verify("correct horse battery staple", Some(&stored))
            .unwrap();
    }
    let verify = start.elapsed() / rounds;

    let ratio = (verify + with).as_secs_f64() / (verify + without).as_secs_f64();
    println!("login transaction without its event: {without:?}");
    println!("login transaction with its event:    {with:?}");
    println!("one argon2 verification:             {verify:?}");
    println!("login with / without its event:      {ratio:.4} (target <= 1.05)");
    assert!(ratio <= 1.05, "{ratio}");
}
